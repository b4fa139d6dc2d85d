"""Stage 7: train the chosen model (seeded, early stopping on a validation slice)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task

from recsys_core.datasets import get_dataset
from recsys_core.encoding import IdVocabulary
from recsys_core.failures import converts_storage_errors
from recsys_core.models import DEFAULT_MODEL
from recsys_core.models.base import Recommender
from recsys_core.training import fit_model
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage

__all__ = ["DEFAULT_MODEL", "decide_refit", "train_model"]


@task(name="train", on_failure=[remember_failed_stage])
@converts_storage_errors
def train_model(
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    model_name: str,
    dataset: str,
    seed: int,
    save_to: Path | None = None,
    work_dir: Path | None = None,
) -> Recommender:
    """Fit on ``ratings``; with ``save_to`` the model is saved there for serving and audits.

    ``work_dir`` (the run folder) receives the Parquet training pairs that large pair models
    stream through tf.data; they are deleted after the fit."""
    spec = get_dataset(dataset)
    model, seconds = fit_model(
        model_name,
        ratings,
        vocab,
        movies=movies,
        rating_min=spec.rating_min,
        rating_max=spec.rating_max,
        seed=seed,
        work_dir=work_dir,
    )
    model.train_seconds = seconds
    if save_to is not None:
        model.save(save_to)
        vocab.save(save_to / "vocabulary.json")
    epochs = {k: len(v) for k, v in model.history.items()}
    logger().info("trained %s in %.1f s on %s ratings (history %s)", model.label, seconds, f"{len(ratings):,}", epochs)
    return model


@task(name="decide-refit", on_failure=[remember_failed_stage])
def decide_refit(n_ratings: int, refit_full: bool, refit_max_ratings: int | None) -> bool:
    """Refit on all ratings unless disabled or the release is larger than ``refit_max_ratings``.

    Training twice at ml-25m size does not fit the nightly budget on this machine; above the
    limit the candidate (trained on the split's train part) is published. Scoring still masks
    every rating as seen, so nobody is offered a movie they rated.
    """
    if not refit_full:
        logger().info("refit on all ratings: off (refit_full=False); publishing the candidate")
        return False
    if refit_max_ratings is not None and n_ratings > refit_max_ratings:
        logger().warning(
            "refit on all ratings: skipped, %s ratings > refit_max_ratings=%s; publishing the candidate "
            "trained on the split's train part",
            f"{n_ratings:,}",
            f"{refit_max_ratings:,}",
        )
        return False
    return True
