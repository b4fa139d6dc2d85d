"""Quality benchmark: every registered model on four fixed test slices, over several seeds.

- ``u1`` (ml-100k predefined fold): rating metrics (RMSE, MAE) of rating models;
- ``ua`` (ml-100k, 10 test ratings per user): ranking at k=10 (precision, recall, NDCG, MAP
  over every movie the user has not rated in training; every test movie counts as relevant)
  and catalogue coverage;
- ``mls`` (ml-latest-small, the nightly default split: per-user stratified 20%, split seed 42):
  NDCG@10 and coverage, where the catalogue (9,742 movies, most rated once or twice) is long;
- ``mlt`` (ml-latest-small, per-user temporal split: each user's latest 20% by time): NDCG@10,
  coverage and, for rating models, RMSE: predicting a user's next movies, not random ones.

Each model trains on the slice's training part minus a 5% per-user validation slice cut with
the run's seed (early stopping and every hyper-parameter choice look only at that slice); the
test part is only evaluated. The seed also seeds the model. Rows report mean and standard
deviation over the seeds a model ran with.

``--refit MODE`` scores the model the night publishes instead of the candidate: the candidate's
validation-chosen settings (epochs, lambda, blend weights) refit on the slice's whole training
part with ``pipeline.refit`` (the nightly default mode is ``warm``). ``fixed`` and ``warm`` choose
nothing more (``search``, and a model that cannot fix its choices, searches again on a hold-out);
the test part is still unseen, and the train seconds are the candidate's plus the refit's.

``--params JSON`` overrides a model's parameters, e.g. ``'{"session_ease": {"rating_weights": [0.1]}}'``
(its rows say so): settings a model has but the night does not use yet.

    python -m benchmarks.quality [--models a,b] [--seeds 0,1,2] [--all-seeds-for a,b]
        [--slices u1,ua,mls,mlt] [--refit warm|fixed|search] [--params JSON] [--datasets DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "quality.md"
SLICES = {
    # name: (release, split, split seed, rating metrics?, ranking metrics?)
    "u1": ("ml-100k", "u1", 0, True, False),
    "ua": ("ml-100k", "ua", 0, False, True),
    "mls": ("ml-latest-small", "stratified", 42, False, True),
    "mlt": ("ml-latest-small", "temporal", 0, True, True),
}
RANKING_KEYS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")


@dataclass
class FoldData:
    """One test slice: the split's train and test frames, the release's vocabulary and movies."""

    split: Any
    vocab: Any
    movies: Any
    spec: Any
    scale: Any


def load_slice(datasets: Path, name: str, seed: int, cache: dict[str, Any]) -> FoldData:
    """Read and prepare the release once per process (as the nightly run does), then split it."""
    from recsys_core import pipeline
    from recsys_core.data.datasets import get_dataset
    from recsys_core.data.readers import read_release

    release_name, split_name, split_seed, _, _ = SLICES[name]
    if release_name not in cache:
        spec = get_dataset(release_name)
        release = read_release(datasets / f"{release_name}.zip", spec.layout)
        ratings = pipeline.merge_and_average(release.ratings, release.movies)
        vocab = pipeline.fit_vocabulary(ratings)
        cache[release_name] = (release, ratings, vocab, spec, pipeline.decide_scale(ratings, vocab))
    release, ratings, vocab, spec, scale = cache[release_name]
    split = pipeline.split_ratings(ratings, release, split_name, split_seed)
    return FoldData(split, vocab, release.movies, spec, scale)


def run_model(
    name: str, fold: FoldData, seed: int, params: dict[str, Any] | None = None, refit_mode: str | None = None
) -> tuple[dict[str, Any], float]:
    """Fit with the pipeline's ``train`` (5% validation slice cut with ``seed``; ``params``
    override the model's), evaluate on the test part.

    With ``refit_mode`` the evaluated model is the candidate refit on the whole training part
    (what the night publishes); the seconds are then both fits together, and the metrics'
    ``refit_mode`` is the mode the refit really used (a model that cannot fix its choices searches).
    """
    from recsys_core import pipeline
    from recsys_core.evaluation.evaluate import evaluate_model
    from recsys_core.prep.interactions import to_interactions

    options = {"spec": fold.spec, "scale": fold.scale, "movies": fold.movies, "seed": seed}
    trained = pipeline.train(name, fold.split.train, fold.vocab, params=params, **options)
    model, seconds, mode_used = trained.model, trained.seconds, None
    if refit_mode is not None:
        published = pipeline.refit(model, fold.split.train, fold.vocab, mode=refit_mode, **options)
        model, seconds, mode_used = published.model, seconds + published.seconds, published.refit_mode
    train, test = (to_interactions(df, fold.vocab) for df in (fold.split.train, fold.split.test))
    metrics = evaluate_model(model, train, test, k=10)
    if mode_used is not None:
        metrics["refit_mode"] = mode_used
    return metrics, seconds


def benchmark(
    names: list[str],
    datasets: Path,
    seeds: list[int],
    all_seeds_for: set[str],
    slices: list[str],
    refit_mode: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per model: per slice and seed its metrics and train seconds, then mean and std.
    ``params`` maps a model name to parameters that override its own."""
    from recsys_core.models import MODELS

    cache: dict[str, Any] = {}
    rows = []
    for name in names:
        cls = MODELS[name]
        model_seeds = seeds if name in all_seeds_for else seeds[:1]
        runs: dict[str, list[float]] = {}
        used_modes: set[str] = set()
        for slice_name in slices:
            _, _, _, rating, ranking = SLICES[slice_name]
            if not ((rating and cls.predicts_ratings) or (ranking and cls.ranks)):
                continue
            for seed in model_seeds:
                fold = load_slice(datasets, slice_name, seed, cache)
                metrics, seconds = run_model(name, fold, seed, (params or {}).get(name), refit_mode=refit_mode)
                if refit_mode is not None:
                    used_modes.add(metrics["refit_mode"])
                runs.setdefault(f"{slice_name}_seconds", []).append(seconds)
                if rating and cls.predicts_ratings:
                    for key in ("rmse", "mae"):
                        runs.setdefault(f"{slice_name}_{key}", []).append(metrics[key])
                if ranking and cls.ranks:
                    for key in RANKING_KEYS:
                        runs.setdefault(f"{slice_name}_{key}", []).append(metrics[key])
        row: dict[str, Any] = {"model": name, "kind": _kind(cls), "seeds": model_seeds, "runs": runs}
        if used_modes:
            row["refit_mode"] = "/".join(sorted(used_modes))
        if (params or {}).get(name):
            row["params"] = params[name]
        for key, values in runs.items():
            row[key], row[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
        print(_format_row(row), flush=True)
        rows.append(row)
    return rows


def _kind(cls: Any) -> str:
    return "+".join(k for k, on in (("rating", cls.predicts_ratings), ("ranking", cls.ranks)) if on)


COLUMNS = (
    ("u1_rmse", "u1 RMSE", "{:.4f}"),
    ("u1_mae", "u1 MAE", "{:.4f}"),
    ("ua_precision_at_k", "ua P@10", "{:.4f}"),
    ("ua_ndcg_at_k", "ua NDCG@10", "{:.4f}"),
    ("ua_map_at_k", "ua MAP@10", "{:.4f}"),
    ("ua_coverage", "ua cov", "{:.3f}"),
    ("mls_ndcg_at_k", "mls NDCG@10", "{:.4f}"),
    ("mls_coverage", "mls cov", "{:.3f}"),
    ("mlt_ndcg_at_k", "mlt NDCG@10", "{:.4f}"),
    ("mlt_coverage", "mlt cov", "{:.3f}"),
    ("mlt_rmse", "mlt RMSE", "{:.4f}"),
    ("u1_seconds", "train s u1", "{:.1f}"),
    ("ua_seconds", "train s ua", "{:.1f}"),
    ("mls_seconds", "train s mls", "{:.1f}"),
    ("mlt_seconds", "train s mlt", "{:.1f}"),
)
STD_SHOWN = {"u1_rmse", "ua_ndcg_at_k", "mls_ndcg_at_k", "mlt_ndcg_at_k", "mlt_rmse", "ua_coverage", "mls_coverage"}


PUBLISHED_NOTE = (
    " Rows marked *published* score the model the night publishes: the model's candidate (its "
    "unmarked row, where it ran), its validation-chosen settings then refit on the slice's whole "
    "training part (validation slice included) with `pipeline.refit` in the named mode. `fixed` "
    "and `warm` choose nothing again; `search` (and a model that cannot fix its choices, which "
    "falls back to it) chooses again on a 5% hold-out of the whole training part. Their train "
    "seconds are the candidate's fit plus the refit's."
)


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    if row.get(key) is None:
        return "-"
    text = fmt.format(row[key])
    if key in STD_SHOWN and len(row["seeds"]) > 1:
        text += " ± " + fmt.format(row[f"{key}_std"])
    return text


def _format_row(row: dict[str, Any]) -> str:
    label = row["model"] + (f" *(published: {row['refit_mode']} refit)*" if row.get("refit_mode") else "")
    if row.get("params"):
        label += f" *(params {json.dumps(row['params'], separators=(',', ':'))})*"
    cells = [label, row["kind"], str(len(row["seeds"]))]
    cells += [_cell(row, key, fmt) for key, _, fmt in COLUMNS]
    return "| " + " | ".join(cells) + " |"


def render_table(rows: list[dict[str, Any]], datasets: Path, seeds: list[int], slices: list[str]) -> str:
    """The markdown report: machine, protocol, one row per model."""
    titles = ["model", "kind", "seeds", *(title for _, title, _ in COLUMNS)]
    header = "| " + " | ".join(titles) + " |"
    rule = "|" + "|".join("---" for _ in titles) + "|"
    lines = [
        "# Model quality on MovieLens 100k and ml-latest-small",
        "",
        f"Machine: {os.cpu_count()}-core CPU ({platform.machine()}), no GPU, shared with another "
        f"engineer's test runs (train seconds are wall time and noisy); generated "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m benchmarks.quality` from "
        f"`{datasets}`; slices {', '.join(slices)}; seeds {', '.join(map(str, seeds))}.",
        "",
        "Protocol: `u1` = ml-100k fold u1 (RMSE, MAE of rating models); `ua` = ml-100k fold ua "
        "(10 test ratings per user; ranking at k=10, so R@10 equals P@10); `mls` = ml-latest-small "
        "with the nightly default split (per-user stratified 20%, split seed 42); `mlt` = "
        "ml-latest-small with a per-user temporal split (each user's latest 20% of ratings by time "
        "are the test). Each model trains on the slice's training part minus a 5% per-user "
        "validation slice cut with the run's seed; early stopping and every hyper-parameter, epoch "
        "and blend weight are chosen on that slice; the test part is used only here. Ranking ranks "
        "every movie the user has not rated in training; every test movie counts as relevant, "
        "whatever its rating. Coverage (cov) is the share of the catalogue that appears in at least "
        "one user's top-10. `seeds` is how many seeds (validation slice and model seed) the row "
        "averages; `±` is the standard deviation over them. Train seconds are the mean wall time of "
        "`fit` (no evaluation)." + (PUBLISHED_NOTE if any(r.get("refit_mode") for r in rows) else ""),
        "",
        header,
        rule,
        *(_format_row(r) for r in rows),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from recsys_core.models import MODELS
    from recsys_core.pipeline import REFIT_MODES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated registry names (default: all)")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="folder with the release zips")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file to write")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--all-seeds-for", default="", help="models that run every seed (default: all)")
    parser.add_argument("--slices", default=",".join(SLICES), help=f"subset of {', '.join(SLICES)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw rows as JSON")
    parser.add_argument(
        "--refit",
        choices=REFIT_MODES,
        default=None,
        help="score the published model: the candidate refit on the whole training part in this mode",
    )
    parser.add_argument("--params", default="{}", help="JSON object: model name -> parameters that override its own")
    args = parser.parse_args(argv)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        parser.error(f'--params is not JSON ({exc}); give an object such as \'{{"ease": {{"lambdas": [400]}}}}\'')
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        parser.error("--params must be a JSON object mapping model names to objects of parameters")
    names = [n.strip() for n in args.models.split(",") if n.strip()] or list(MODELS)
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(sorted(MODELS))}")
    if set(params) - set(names):
        parser.error(f"--params names models not in --models: {sorted(set(params) - set(names))}")
    slices = [s.strip() for s in args.slices.split(",") if s.strip()]
    if set(slices) - set(SLICES):
        parser.error(f"unknown slices {sorted(set(slices) - set(SLICES))}; known: {', '.join(SLICES)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    all_seeds_for = {n.strip() for n in args.all_seeds_for.split(",") if n.strip()} or set(names)
    for release in {SLICES[s][0] for s in slices}:
        if not (args.datasets / f"{release}.zip").is_file():
            parser.error(f"{args.datasets / (release + '.zip')} not found (pass --datasets)")
    rows = benchmark(names, args.datasets, seeds, all_seeds_for, slices, args.refit, params)
    table = render_table(rows, args.datasets, seeds, slices)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    print(table)


if __name__ == "__main__":
    main()
