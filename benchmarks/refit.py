"""Benchmark: does training once per night change the published lists? Refit modes side by side.

    python -m benchmarks.refit [--model combined] [--seeds 0,1,2] [--modes search,fixed,warm]
        [--datasets DIR] [--output FILE]

The nightly run trains a candidate on its split's train part (to evaluate and gate it), then
refits on every rating and publishes the refit. This benchmark replays that on ml-100k with a
held-out test the night never sees: the fold's base file (``u1`` for ratings, ``ua`` for
ranking) plays "all ratings"; the night's own split (per-user stratified 20%, as the flow does)
trains the candidate; each refit mode then trains on the whole base file and the published
model is scored on the fold's test file:

- ``search``: the refit searches again (early stopping, lambda grid, blend weights) on a 5%
  holdout of all ratings: the behaviour before train-once, the reference;
- ``fixed``: the candidate's choices on all ratings, no holdout, no search;
- ``warm``: ``fixed`` starting from the candidate's weights, a quarter of its epochs.

Every mode runs in the same process on the same candidate; seconds are wall time of the
refit's ``fit`` (the candidate's are reported once). Writes benchmarks/results/refit.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.quality import DEFAULT_DATASETS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "refit.md"
MACHINE = "2-core x86_64 VM, 24 GB RAM, no GPU (the project's CI/dev machine size)"
FOLDS = {"u1": ("rmse", "mae"), "ua": ("ndcg_at_k", "precision_at_k", "coverage")}
FOLD_KIND = {"u1": "predicted ratings", "ua": "ranking"}


def fold_applies(fold: str, model: str) -> bool:
    """Whether ``model`` produces the fold's metrics (a ranker has no RMSE on ``u1``)."""
    from recsys_core.models.registry import model_class

    cls = model_class(model)
    return bool(cls.predicts_ratings) if fold == "u1" else bool(cls.ranks)


def run_fold(fold: str, model: str, seed: int, modes: list[str], datasets: Path, cache: dict[str, Any]) -> dict:
    """One candidate on the night's split of the fold's base file, then each refit mode, scored on the test file."""
    from recsys_core import pipeline
    from recsys_core.data.datasets import get_dataset
    from recsys_core.data.readers import read_release
    from recsys_core.evaluation.evaluate import evaluate_model
    from recsys_core.prep.interactions import to_interactions

    if "release" not in cache:
        spec = get_dataset("ml-100k")
        release = read_release(datasets / "ml-100k.zip", spec.layout)
        ratings = pipeline.merge_and_average(release.ratings, release.movies)
        vocab = pipeline.fit_vocabulary(ratings)
        cache["release"] = (spec, release, ratings, vocab, pipeline.decide_scale(ratings, vocab))
    spec, release, ratings, vocab, scale = cache["release"]
    folded = pipeline.split_ratings(ratings, release, fold, seed)  # base = "all ratings" of the night
    night = pipeline.make_split(folded.train, "stratified", seed=seed)
    options = {"spec": spec, "scale": scale, "movies": release.movies, "seed": seed}
    candidate = pipeline.train(model, night.train, vocab, **options)
    base, test = to_interactions(folded.train, vocab), to_interactions(folded.test, vocab)
    result: dict[str, Any] = {"fold": fold, "seed": seed, "candidate_s": candidate.seconds, "modes": {}}
    for mode in modes:
        published = pipeline.refit(candidate.model, folded.train, vocab, mode=mode, **options)
        metrics = evaluate_model(published.model, base, test, k=10)
        result["modes"][mode] = {"seconds": published.seconds, **{m: metrics[m] for m in FOLDS[fold]}}
        print(fold, seed, mode, json.dumps(result["modes"][mode]), flush=True)
    return result


def summarise(results: list[dict], modes: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """(mean, std) over seeds per fold, mode and metric, plus the candidate's seconds."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for fold, metrics in FOLDS.items():
        rows = [r for r in results if r["fold"] == fold]
        if not rows:
            continue
        cand = [r["candidate_s"] for r in rows]
        table[f"{fold}/candidate"] = {"seconds": (statistics.median(cand), statistics.pstdev(cand))}
        for mode in modes:
            cells = {}
            for key in ("seconds", *metrics):
                values = [r["modes"][mode][key] for r in rows]
                centre = statistics.median(values) if key == "seconds" else statistics.fmean(values)
                cells[key] = (centre, statistics.pstdev(values))
            table[f"{fold}/{mode}"] = cells
    return table


def render(table: dict[str, dict[str, tuple[float, float]]], command: str, seeds: list[int]) -> str:
    lines = [
        "# Refit modes: the published model's quality and training time",
        "",
        f"Machine: {MACHINE}; Python {platform.python_version()}. Command: `{command}`; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Seeds {', '.join(map(str, seeds))} "
        "(the night's split, the validation slice and the model seed). Metrics are means ± std over "
        "the seeds; seconds are medians of the refit's `fit` wall time (other jobs shared the machine).",
        "",
        "Protocol: the fold's base file is the night's \"all ratings\"; the candidate trains on the "
        "night's stratified 80% (minus a 5% validation slice); each mode refits on the whole base "
        "file and the refit is scored on the fold's test file, which nothing saw.",
        "",
        "| fold | model | seconds | metrics |",
        "| --- | --- | ---: | --- |",
    ]
    for key, cells in table.items():
        fold, mode = key.split("/")
        metric_cells = ", ".join(f"{m} {c[0]:.4f} ± {c[1]:.4f}" for m, c in cells.items() if m != "seconds")
        seconds = cells["seconds"][0]
        lines.append(f"| {fold} | {mode} | {seconds:.1f} | {metric_cells or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from recsys_core.pipeline import REFIT_MODES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="combined")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--modes", default=",".join(REFIT_MODES))
    parser.add_argument("--folds", default=",".join(FOLDS))
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - set(REFIT_MODES):
        parser.error(f"unknown modes {sorted(set(modes) - set(REFIT_MODES))}; known: {', '.join(REFIT_MODES)}")
    folds = [f for f in args.folds.split(",") if f]
    if set(folds) - set(FOLDS):
        parser.error(f"unknown folds {sorted(set(folds) - set(FOLDS))}; known: {', '.join(FOLDS)}")
    unfit = [f for f in folds if not fold_applies(f, args.model)]
    if unfit:
        parser.error(
            f"--model {args.model} has no {' or '.join(FOLD_KIND[f] for f in unfit)} to measure on fold(s) "
            f"{', '.join(unfit)}; pass --folds {','.join(f for f in folds if f not in unfit) or 'FOLD'}"
        )
    if not (args.datasets / "ml-100k.zip").is_file():
        parser.error(f"{args.datasets / 'ml-100k.zip'} not found (pass --datasets)")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    cache: dict[str, Any] = {}
    results = [run_fold(fold, args.model, seed, modes, args.datasets, cache) for fold in folds for seed in seeds]
    command = "python -m benchmarks.refit " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(summarise(results, modes), command.strip(), seeds)
    args.output.write_text(text)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
