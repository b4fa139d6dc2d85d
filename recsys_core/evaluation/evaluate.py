"""Evaluate a trained model on a test split, and the baselines the same way."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from recsys_core.evaluation.metrics import catalogue_coverage, mae, ranking_metrics, rmse
from recsys_core.models import BASELINES, create_model
from recsys_core.models.base import Recommender
from recsys_core.prep.interactions import Interactions
from recsys_core.serving.topn import recommend_top_n

log = logging.getLogger(__name__)

METRIC_KEYS = ("rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")


def evaluate_model(model: Recommender, train: Interactions, test: Interactions, *, k: int = 10) -> dict[str, Any]:
    """RMSE/MAE on test pairs; top-k metrics ranking every movie the user has not rated in train."""
    out: dict[str, Any] = {key: None for key in METRIC_KEYS}
    out["k"] = k
    if model.predicts_ratings and len(test):
        pred = model.predict(test.user_idx, test.movie_idx)
        out["rmse"], out["mae"] = rmse(test.rating, pred), mae(test.rating, pred)
    if model.ranks and len(test):
        users = np.unique(test.user_idx)
        top = recommend_top_n(model, train.to_csr(), k, user_idx=users)
        out.update(ranking_metrics(top.movie_idx, users, test.to_csr(), k))
        out["coverage"] = catalogue_coverage(top.movie_idx, train.n_movies)
    return out


def evaluate_baselines(
    train: Interactions,
    test: Interactions,
    *,
    k: int = 10,
    rating_min: float = 1.0,
    rating_max: float = 5.0,
    names: tuple[str, ...] = BASELINES,
) -> dict[str, dict[str, Any]]:
    """Fit and evaluate each baseline on the same split."""
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        start = time.perf_counter()
        model = create_model(name, rating_min=rating_min, rating_max=rating_max).fit(train)
        results[name] = {**evaluate_model(model, train, test, k=k), "train_seconds": time.perf_counter() - start}
        log.info("baseline %s: %s", name, _short(results[name]))
    return results


def _short(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
