"""Quality benchmark: train every registered model on ml-100k u1 and ua, one table.

u1 gives the rating metrics (RMSE, MAE), ua the ranking metrics at k=10 (precision, recall,
NDCG, MAP over every movie the user has not rated in training; every test movie counts as
relevant) and catalogue coverage. Each model trains on the fold's base file minus a 5%
per-user validation slice that drives early stopping; the test file is only evaluated.

    python -m benchmarks.quality [--models a,b] [--dataset-path PATH] [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k.zip"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "quality.md"
RATING_SPLIT, RANKING_SPLIT = "u1", "ua"


@dataclass
class FoldData:
    """One predefined fold, encoded: train (minus validation), validation, full train, test."""

    fit_train: Any
    validation: Any
    train: Any
    test: Any


def load_folds(archive: Path, seed: int) -> tuple[dict[str, FoldData], Any]:
    """Read the release once and encode u1 and ua; also return the item features."""
    from recsys_core.data.readers import read_release
    from recsys_core.prep.cleaning import clean_ratings
    from recsys_core.prep.encoding import fit_vocabulary
    from recsys_core.prep.features import build_item_features
    from recsys_core.prep.interactions import to_interactions
    from recsys_core.prep.splitting import holdout_validation, make_split

    release = read_release(archive, "ml-100k")
    ratings = clean_ratings(release.ratings, release.movies)
    vocab = fit_vocabulary(ratings)
    folds = {}
    for name in (RATING_SPLIT, RANKING_SPLIT):
        split = make_split(ratings, name, folds=release.folds)
        fit_train, validation = holdout_validation(split.train, 0.05, seed=seed)
        folds[name] = FoldData(*(to_interactions(df, vocab) for df in (fit_train, validation, split.train, split.test)))
    return folds, build_item_features(release.movies, vocab)


def run_model(name: str, fold: FoldData, features: Any, seed: int) -> tuple[dict[str, Any], float]:
    """Fit on the fold (timed) and evaluate on its test file."""
    from recsys_core.evaluation.evaluate import evaluate_model
    from recsys_core.models import create_model

    model = create_model(name, seed=seed)
    if model.uses_item_features:
        model.set_item_features(features)
    start = time.perf_counter()
    model.fit(fold.fit_train, fold.validation)
    seconds = time.perf_counter() - start
    return evaluate_model(model, fold.train, fold.test, k=10), seconds


def benchmark(names: list[str], archive: Path, seed: int) -> list[dict[str, Any]]:
    """One row per model: u1 rating metrics, ua ranking metrics, train seconds on each."""
    from recsys_core.models import MODELS

    folds, features = load_folds(archive, seed)
    rows = []
    for name in names:
        cls = MODELS[name]
        row: dict[str, Any] = {"model": name, "kind": _kind(cls)}
        if cls.predicts_ratings:
            metrics, row["u1_seconds"] = run_model(name, folds[RATING_SPLIT], features, seed)
            row.update(rmse=metrics["rmse"], mae=metrics["mae"])
        if cls.ranks:
            metrics, row["ua_seconds"] = run_model(name, folds[RANKING_SPLIT], features, seed)
            row.update({k: metrics[k] for k in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")})
        print(_format_row(row), flush=True)
        rows.append(row)
    return rows


def _kind(cls: Any) -> str:
    return "+".join(k for k, on in (("rating", cls.predicts_ratings), ("ranking", cls.ranks)) if on)


COLUMNS = (
    ("model", "model", "{}"),
    ("kind", "kind", "{}"),
    ("rmse", "u1 RMSE", "{:.4f}"),
    ("mae", "u1 MAE", "{:.4f}"),
    ("precision_at_k", "ua P@10", "{:.4f}"),
    ("recall_at_k", "ua R@10", "{:.4f}"),
    ("ndcg_at_k", "ua NDCG@10", "{:.4f}"),
    ("map_at_k", "ua MAP@10", "{:.4f}"),
    ("coverage", "ua coverage", "{:.3f}"),
    ("u1_seconds", "train s (u1)", "{:.1f}"),
    ("ua_seconds", "train s (ua)", "{:.1f}"),
)


def _format_row(row: dict[str, Any]) -> str:
    cells = [fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in COLUMNS]
    return "| " + " | ".join(cells) + " |"


def render_table(rows: list[dict[str, Any]], archive: Path, seed: int) -> str:
    """The markdown report: machine, protocol, one row per model."""
    header = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [
        "# Model quality on MovieLens 100k",
        "",
        f"Machine: {os.cpu_count()}-core CPU ({platform.machine()}), no GPU; "
        f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m benchmarks.quality` "
        f"from `{archive.name}`, seed {seed}.",
        "",
        "Protocol: rating metrics on the `u1` fold, ranking metrics on the `ua` fold (10 test ratings "
        "per user). Each model trains on the fold's base file minus a 5% per-user validation slice "
        "(early stopping and tuning only ever look at that slice); the test file is used only here. "
        "Ranking ranks every movie the user has not rated in training; every test movie counts as "
        "relevant, whatever its rating. On ua every user has exactly 10 test movies, so R@10 equals "
        "P@10. Train seconds are wall time of `fit` (no evaluation) on a shared machine.",
        "",
        header,
        rule,
        *(_format_row(r) for r in rows),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from recsys_core.models import MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated registry names (default: all)")
    parser.add_argument("--dataset-path", type=Path, default=DEFAULT_ARCHIVE, help="ml-100k.zip")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()] or list(MODELS)
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(sorted(MODELS))}")
    if not args.dataset_path.is_file():
        parser.error(f"{args.dataset_path} not found (pass --dataset-path to ml-100k.zip)")
    rows = benchmark(names, args.dataset_path, args.seed)
    table = render_table(rows, args.dataset_path, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
