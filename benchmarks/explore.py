"""Exploration slots: catalogue coverage against NDCG@10, per setting, on the quality slices.

For each slice and seed the model is trained once, as ``benchmarks.quality`` trains it (the
pipeline's ``train``: 95% of the slice's training part, choices on the other 5%), and its
test users' lists are then evaluated with each exploration setting by ``evaluate_model``, the
code the nightly evaluation runs. Nothing is chosen on the test part: exploration has no
learned parameter, and a coverage goal is a property of the lists themselves (it stops as soon
as they cover that share of the catalogue), not of the test ratings.

    python -m benchmarks.explore [--model combined] [--slices mls,mlt,ua] [--seeds 0,1,2]
        [--output FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.quality import DEFAULT_DATASETS, SLICES, load_slice

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "explore.md"
# (slots, depth, coverage goal); (0, ...) is the model's own ranking
SETTINGS: tuple[tuple[int, int, float | None], ...] = (
    (0, 100, None),
    *((s, d, None) for d in (100, 200) for s in (1, 2, 3, 5)),
    *((s, d, 0.15) for s, d in ((3, 100), (3, 200), (5, 200), (9, 200))),
)


def default_setting(top_n: int = 10) -> tuple[int, int, float | None]:
    """The nightly default's exploration (``NightlyConfig``'s defaults) for lists of ``top_n``."""
    from recsys_core.config import NightlyConfig

    policy = NightlyConfig(top_n=top_n).explore
    return policy.slots, policy.depth, policy.coverage


def label(setting: tuple[int, int, float | None]) -> str:
    slots, depth, goal = setting
    if slots == 0:
        return "none (the model's ranking)"
    text = f"{slots} slots, depth {depth}"
    text += f", stop at coverage {goal:g}" if goal is not None else ""
    return text + (" **(the default)**" if setting == default_setting() else "")


def run(model: str, slices: list[str], seeds: list[int], datasets: Path) -> list[dict[str, Any]]:
    """One row per (slice, setting): NDCG@10 and coverage per seed."""
    from recsys_core import pipeline
    from recsys_core.evaluation.evaluate import evaluate_model
    from recsys_core.prep.interactions import to_interactions
    from recsys_core.serving.explore import ExplorePolicy

    cache: dict[str, Any] = {}
    rows: dict[tuple[str, tuple], dict[str, Any]] = {}
    for slice_name in slices:
        for seed in seeds:
            fold = load_slice(datasets, slice_name, seed, cache)
            options = {"spec": fold.spec, "scale": fold.scale, "movies": fold.movies, "seed": seed}
            trained = pipeline.train(model, fold.split.train, fold.vocab, **options)
            train, test = (to_interactions(df, fold.vocab) for df in (fold.split.train, fold.split.test))
            held = validation_candidates(trained.model, fold, seed, max(d for _, d, _ in SETTINGS))
            for setting in SETTINGS:
                slots, depth, goal = setting
                started = time.perf_counter()
                policy = ExplorePolicy(slots, depth, seed, goal)
                metrics = evaluate_model(trained.model, train, test, k=10, explore=policy)
                seconds = time.perf_counter() - started
                val_ndcg, val_coverage = validation_metrics(held, policy, train.n_movies)
                row = rows.setdefault(
                    (slice_name, setting), {"slice": slice_name, "setting": label(setting), "key": list(setting)}
                )
                for key, value in (
                    ("ndcg", metrics["ndcg_at_k"]),
                    ("coverage", metrics["coverage"]),
                    ("val_ndcg", val_ndcg),
                    ("val_coverage", val_coverage),
                    ("seconds", seconds),
                ):
                    row.setdefault(key, []).append(value)
                print(
                    f"{slice_name} seed {seed} {label(setting)}: validation NDCG@10 {val_ndcg:.4f} coverage "
                    f"{val_coverage:.4f}; test NDCG@10 {metrics['ndcg_at_k']:.4f} coverage {metrics['coverage']:.4f}",
                    flush=True,
                )
    return list(rows.values())


def validation_candidates(model: Any, fold: Any, seed: int, depth: int) -> tuple[Any, Any]:
    """Every user's top ``depth`` from the state that never saw the validation slice (the ranker's
    ``validation_scores`` on the 95% it was fitted on), and that slice: what choices may look at."""
    from recsys_core.prep.interactions import to_interactions
    from recsys_core.prep.splitting import holdout_validation
    from recsys_core.serving.topn import TopN

    fit_df, val_df = holdout_validation(fold.split.train, 0.05, seed=seed)  # the pipeline's own cut
    fit, val = to_interactions(fit_df, fold.vocab), to_interactions(val_df, fold.vocab)
    seen = fit.to_csr()
    scores = getattr(model, "ranker", model).validation_scores(seen).astype(np.float64)
    scores[seen.nonzero()] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :depth].astype(np.int32)
    top = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    candidates = TopN(np.arange(seen.shape[0], dtype=np.int32), np.where(np.isfinite(top), order, -1), top)
    return candidates, val


def validation_metrics(held: tuple[Any, Any], policy: Any, n_movies: int) -> tuple[float, float]:
    """NDCG@10 on the validation slice and coverage of every user's list, under ``policy``."""
    from recsys_core.evaluation.metrics import catalogue_coverage, ranking_metrics
    from recsys_core.serving.explore import explore_top_n

    candidates, val = held
    lists = explore_top_n(candidates, 10, policy, n_movies).movie_idx
    users = np.unique(val.user_idx)
    ndcg = ranking_metrics(lists[users], users, val.to_csr(), 10)["ndcg_at_k"]
    return ndcg, catalogue_coverage(lists, n_movies)


def render(rows: list[dict[str, Any]], model: str, seeds: list[int], command: str, run_s: float) -> str:
    lines = [
        "# Exploration slots: coverage against NDCG@10",
        "",
        f"Machine: 2-core CPU ({platform.machine()}), no GPU. Python {platform.python_version()}. "
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {run_s:.0f} s by `{command}`.",
        "",
        f"Model `{model}`, trained once per slice and seed ({', '.join(map(str, seeds))}) as in `quality.md`; "
        "each setting re-ranks the same model's lists (`recsys_core/serving/explore.py`) and is scored by "
        "`evaluate_model`, the nightly evaluation. Slices as in `quality.md` (`mls`: ml-latest-small, "
        "stratified 20%; `mlt`: its per-user temporal split; `ua`: ml-100k). Mean ± standard deviation "
        "over the seeds; seconds are the re-ranking and evaluation of one setting (not the training). "
        "Validation columns: the same setting on the lists of the state that never saw the 5% validation "
        "slice (the ranker's `validation_scores`), NDCG@10 on that slice (about one rating per user on "
        "ml-latest-small, so far below test) and the coverage of every user's list: what a choice may look at.",
        "",
        "| slice | exploration | validation NDCG@10 | validation coverage | NDCG@10 | coverage | ΔNDCG@10 | "
        "coverage x | s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r["slice"]: r for r in rows if r["setting"].startswith("none")}
    for r in rows:
        ref = base[r["slice"]]
        delta = np.mean(r["ndcg"]) - np.mean(ref["ndcg"])
        ratio = np.mean(r["coverage"]) / np.mean(ref["coverage"])
        lines.append(
            f"| {r['slice']} | {r['setting']} | {np.mean(r['val_ndcg']):.4f} | {np.mean(r['val_coverage']):.3f} | "
            f"{np.mean(r['ndcg']):.4f} ± {np.std(r['ndcg']):.4f} | "
            f"{np.mean(r['coverage']):.3f} ± {np.std(r['coverage']):.3f} | {delta:+.4f} | {ratio:.2f} | "
            f"{np.median(r['seconds']):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="combined")
    parser.add_argument("--slices", default="mls,mlt,ua")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--from-json", type=Path, default=None, help="re-render an earlier run's rows (no training)")
    args = parser.parse_args(argv)
    slices = [s.strip() for s in args.slices.split(",") if s.strip()]
    bad = [s for s in slices if s not in SLICES or not SLICES[s][4]]
    if bad:
        parser.error(f"not ranking slices: {bad}; choose from {[s for s in SLICES if SLICES[s][4]]}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    started = time.perf_counter()
    command = "python -m benchmarks.explore " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        rows, command, run_s = saved["rows"], saved["command"], saved["run_s"]
        for row in rows:  # labels as this code writes them (the default's mark)
            row["setting"] = label(tuple(row["key"]))
    else:
        rows = run(args.model, slices, seeds, args.datasets)
        run_s = time.perf_counter() - started
    text = render(rows, args.model, seeds, command.strip(), run_s)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    if args.json is not None:
        args.json.write_text(json.dumps({"command": command.strip(), "run_s": run_s, "rows": rows}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
