"""Train and evaluate one model on one split without publishing (``recsys evaluate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys_core.cleaning import clean_ratings
from recsys_core.datasets import DatasetSpec
from recsys_core.encoding import fit_vocabulary
from recsys_core.evaluation import evaluate_model
from recsys_core.interactions import to_interactions
from recsys_core.readers import read_release
from recsys_core.splitting import make_split
from recsys_core.training import fit_model


def run_experiment(
    archive: Path, spec: DatasetSpec, *, split: str, model: str, seed: int = 42, k: int = 10
) -> dict[str, Any]:
    """Metrics of ``model`` trained on the split's train part and scored on its test part.

    The raw data is cleaned the same way as in the nightly flow (duplicates averaged, unknown
    movies dropped); rows the data gate would quarantine are filtered by ``clean_ratings``'s
    join, and ratings with null fields are dropped.
    """
    release = read_release(archive, spec.layout)
    ratings = clean_ratings(release.ratings.dropna(), release.movies)
    for col in ("user_id", "movie_id", "timestamp"):
        ratings[col] = ratings[col].astype("int64")
    vocab = fit_vocabulary(ratings)
    parts = make_split(ratings, split, folds=release.folds, seed=seed)
    fitted, seconds = fit_model(
        model,
        parts.train,
        vocab,
        movies=release.movies,
        rating_min=spec.rating_min,
        rating_max=spec.rating_max,
        seed=seed,
    )
    metrics = evaluate_model(fitted, to_interactions(parts.train, vocab), to_interactions(parts.test, vocab), k=k)
    return {
        **metrics,
        "model": fitted.label,
        "split": split,
        "dataset": spec.name,
        "train_seconds": round(seconds, 2),
        "train_ratings": len(parts.train),
        "test_ratings": len(parts.test),
    }
