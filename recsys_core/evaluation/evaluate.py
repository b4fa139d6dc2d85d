"""Evaluate a trained model on a test split, and the baselines the same way."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.evaluation.metrics import catalogue_coverage, mae, ranking_metrics, rmse
from recsys_core.models import BASELINES, create_model
from recsys_core.models.base import Recommender
from recsys_core.prep.interactions import Interactions
from recsys_core.serving.explore import ExplorePolicy, explore_top_n
from recsys_core.serving.topn import TopN, recommend_top_n

log = logging.getLogger(__name__)

METRIC_KEYS = ("rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")


def evaluate_model(
    model: Recommender,
    train: Interactions,
    test: Interactions,
    *,
    k: int = 10,
    explore: ExplorePolicy | None = None,
    top_n: int | None = None,
) -> dict[str, Any]:
    """RMSE/MAE on test pairs; top-k metrics ranking every movie the user has not rated in train.

    With an active ``explore`` policy the top-k metrics are those of each test user's list of
    max(k, ``top_n``) movies explored as the night explores the published lists, cut at k. Exposure
    and the coverage goal count the test users' lists only (the candidate's, seen = train), so
    these are the night's exploration measured on the test users, not the published rows.
    ``out["explore"]`` then also holds the policy and the metrics of the model's own ranking, so
    the cost of exploring is visible.
    """
    out: dict[str, Any] = {key: None for key in METRIC_KEYS}
    out["k"] = k
    if model.predicts_ratings and len(test):
        pred = model.predict(test.user_idx, test.movie_idx)
        out["rmse"], out["mae"] = rmse(test.rating, pred), mae(test.rating, pred)
    if model.ranks and len(test):
        users = np.unique(test.user_idx)
        seen = train.to_csr()
        exploring = explore is not None and explore.active
        if exploring:  # lists of the longer of k and top_n, explored like the published ones
            length = max(k, top_n or k)
            explore = replace(explore, depth=max(explore.depth, length + 1))
        depth = explore.candidates(length) if exploring else k
        shared = model.shared_ranking()
        if shared is not None:  # one order for everyone (popularity, biases): no users x movies scores
            top = shared_order_top_n(shared, seen, depth, users)
        else:
            top = recommend_top_n(model, seen, depth, user_idx=users)
        relevant = test.to_csr()
        if exploring:
            ranked = top.movie_idx[:, :k]
            out["explore"] = {
                **explore.summary(),
                "ndcg_at_k_ranked": ranking_metrics(ranked, users, relevant, k)["ndcg_at_k"],
                "coverage_ranked": catalogue_coverage(ranked, train.n_movies),
            }
            top = explore_top_n(top, length, explore, train.n_movies)
        out.update(ranking_metrics(top.movie_idx[:, :k], users, relevant, k))
        out["coverage"] = catalogue_coverage(top.movie_idx[:, :k], train.n_movies)
    return out


def shared_order_top_n(scores: np.ndarray, seen: sp.csr_matrix, k: int, user_idx: np.ndarray, window: int = 64) -> TopN:
    """``recommend_top_n`` for a model whose scores are the same for every user (``scores`` per
    movie), exactly: each user's top-k is the first k unseen movies in one order (score
    descending, lower movie index first on ties, as ``recommend_top_n`` breaks them). Users are
    looked up in the first ``k + window`` movies of that order, and those with fewer than k
    unseen there again in a window twice as wide, until the whole catalogue is searched."""
    scores = np.asarray(scores, np.float32)
    order = np.argsort(-scores, kind="stable").astype(np.int32)
    user_idx = np.asarray(user_idx, np.int32)
    movie_idx = np.full((len(user_idx), k), -1, np.int32)
    rows, pending, width = seen.tocsr()[user_idx], np.arange(len(user_idx)), k + window
    while len(pending):
        width = min(width, len(order))
        candidates = order[:width]
        unseen = rows[pending][:, candidates].toarray() == 0
        rank = np.cumsum(unseen, axis=1)
        done = (rank[:, -1] >= k) | (width == len(order))
        r, c = np.nonzero(unseen[done] & (rank[done] <= k))
        movie_idx[pending[done][r], rank[done][r, c] - 1] = candidates[c]
        pending, width = pending[~done], width * 2
    top_scores = np.where(movie_idx >= 0, scores[np.maximum(movie_idx, 0)], -np.inf).astype(np.float32)
    return TopN(user_idx, movie_idx, top_scores)


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
