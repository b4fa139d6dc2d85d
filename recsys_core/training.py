"""Fit a registry model on a ratings frame: validation slice, side features, timing."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.encoding import IdVocabulary
from recsys_core.interactions import to_interactions
from recsys_core.models import create_model
from recsys_core.models.base import Recommender
from recsys_core.splitting import holdout_validation

log = logging.getLogger(__name__)


def fit_model(
    name: str,
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    *,
    movies: pd.DataFrame | None = None,
    rating_min: float = 1.0,
    rating_max: float = 5.0,
    seed: int = 0,
    validation_fraction: float = 0.05,
    params: dict[str, Any] | None = None,
    work_dir: Path | None = None,
) -> tuple[Recommender, float]:
    """Train ``name`` on ``ratings``; early stopping uses a slice cut from these ratings only.

    ``work_dir`` (the run folder) is where large pair models write their Parquet training
    pairs for tf.data streaming. Returns the fitted model and the training wall time in seconds.
    """
    model = create_model(name, rating_min=rating_min, rating_max=rating_max, seed=seed, **(params or {}))
    model.set_work_dir(work_dir)
    if getattr(model, "uses_item_features", False):
        from recsys_core.features import build_item_features

        if movies is None:
            raise ValueError(f"model {name} needs the movies table for its item features")
        model.set_item_features(build_item_features(movies, vocab))
    fit_part, val_part = holdout_validation(ratings, validation_fraction, seed=seed)
    start = time.perf_counter()
    model.fit(to_interactions(fit_part, vocab), to_interactions(val_part, vocab) if len(val_part) else None)
    seconds = time.perf_counter() - start
    log.info("trained %s on %s ratings in %.1f s", model.label, f"{len(fit_part):,}", seconds)
    return model, seconds
