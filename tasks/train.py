"""Stage 7: train the chosen model (seeded, early stopping on a validation slice)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task

from recsys_core.datasets import get_dataset
from recsys_core.encoding import IdVocabulary
from recsys_core.models import DEFAULT_MODEL
from recsys_core.models.base import Recommender
from recsys_core.training import fit_model
from tasks.artifacts import logger

__all__ = ["DEFAULT_MODEL", "train_model"]


@task(name="train")
def train_model(
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    model_name: str,
    dataset: str,
    seed: int,
    save_to: Path | None = None,
) -> Recommender:
    """Fit on ``ratings``; with ``save_to`` the model is saved there for serving and audits."""
    spec = get_dataset(dataset)
    model, seconds = fit_model(
        model_name, ratings, vocab, movies=movies,
        rating_min=spec.rating_min, rating_max=spec.rating_max, seed=seed,
    )
    model.train_seconds = seconds
    if save_to is not None:
        model.save(save_to)
        vocab.save(save_to / "vocabulary.json")
    epochs = {k: len(v) for k, v in model.history.items()}
    logger().info("trained %s in %.1f s on %s ratings (history %s)", model.label, seconds, f"{len(ratings):,}", epochs)
    return model
