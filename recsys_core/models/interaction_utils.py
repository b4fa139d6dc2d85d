"""Small helpers over Interactions that several models share."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.evaluation.metrics import ranking_metrics
from recsys_core.prep.interactions import Interactions
from recsys_core.prep.splitting import mask_holdout_per_user


def union_interactions(a: Interactions, b: Interactions | None) -> Interactions:
    """Train plus validation: what a model may use once early stopping has been decided.

    Timestamps are kept when both parts have them (else the union has none)."""
    if b is None or not len(b):
        return a
    both = a.timestamp is not None and b.timestamp is not None
    return Interactions(
        np.concatenate([a.user_idx, b.user_idx]),
        np.concatenate([a.movie_idx, b.movie_idx]),
        np.concatenate([a.rating, b.rating]),
        a.n_users,
        a.n_movies,
        np.concatenate([a.timestamp, b.timestamp]) if both else None,
    )


def validation_ndcg(scores: np.ndarray, seen: sp.csr_matrix, validation: Interactions, k: int = 10) -> float:
    """NDCG@k of full-catalogue scores against the validation slice, seen movies excluded."""
    users = np.unique(validation.user_idx)
    block = np.array(scores[users], dtype=np.float32, copy=True)
    sub = seen[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    block[rows, sub.indices] = -np.inf
    top = np.argpartition(-block, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return ranking_metrics(top, users, validation.to_csr(), k)["ndcg_at_k"]


MAX_DENSE_CELLS = 250_000_000  # ~1 GB of float32: the dense users x movies matrix autoencoders use


def check_dense_size(model: str, n_rows: int, n_cols: int, limit: int = MAX_DENSE_CELLS) -> None:
    """Fail early with advice instead of running out of memory on a large release."""
    if n_rows * n_cols > limit:
        raise ModelError(
            f"The model {model!r} holds a dense {n_rows:,} x {n_cols:,} matrix, too large for this "
            f"machine (limit {limit:,} cells). Use it on ml-100k, ml-1m or ml-latest-small, or choose "
            "a pair model such as --model biased_mf for larger releases."
        )


def sample_validation_users(validation: Interactions, cap: int | None, seed: int) -> np.ndarray | None:
    """The scale profile's seeded sample of validation users, or None to use every user."""
    users = np.unique(validation.user_idx)
    if cap is None or len(users) <= int(cap):
        return None
    return np.sort(np.random.default_rng(seed).choice(users, size=int(cap), replace=False))


def restrict_to_users(validation: Interactions, users: np.ndarray, n_users: int) -> Interactions:
    """``validation`` for ``users`` only, re-indexed 0..len(users)-1 (rows of ``seen[users]``)."""
    position = np.full(n_users, -1, np.int64)
    position[users] = np.arange(len(users))
    keep = position[validation.user_idx] >= 0
    return Interactions(
        position[validation.user_idx[keep]],
        validation.movie_idx[keep],
        validation.rating[keep],
        len(users),
        validation.n_movies,
    )


def select_rows(data: Interactions, mask: np.ndarray) -> Interactions:
    """The rows of ``data`` where ``mask`` is true (same vocabulary sizes)."""
    ts = None if data.timestamp is None else data.timestamp[mask]
    return Interactions(data.user_idx[mask], data.movie_idx[mask], data.rating[mask], data.n_users, data.n_movies, ts)


def cut_per_user(data: Interactions, fraction: float, seed: int) -> tuple[Interactions, Interactions]:
    """(kept, held out): per user, a seeded random ``fraction`` of their rows (rounded down, each
    user keeping one), by the rule of ``prep.splitting.split_stratified``."""
    order = np.random.default_rng(seed).permutation(len(data))
    held = mask_holdout_per_user(data.user_idx, fraction, order)
    return select_rows(data, ~held), select_rows(data, held)


MIN_ROW_WEIGHT = 0.05  # floor of a centred row weight: a rated movie never drops out of a user's row


def centred_weights(ratings: np.ndarray, user_mean: np.ndarray, weight: float) -> np.ndarray:
    """``1 + weight x (rating - the user's mean)``, floored at ``MIN_ROW_WEIGHT`` (float64).

    A movie rated above the user's own mean counts a little more in their row, one below it a
    little less; ``weight`` 0 gives the binary row. The floor keeps every rated movie in the row,
    so the row's pattern (what is masked as seen) does not depend on ``weight``."""
    values = 1.0 + weight * (np.asarray(ratings, np.float64) - np.asarray(user_mean, np.float64))
    return np.maximum(values, MIN_ROW_WEIGHT)


def weighted_rows(data: Interactions, weight: float) -> sp.csr_matrix:
    """Users x movies rows (float32) of ``centred_weights``, each user's mean over their own ratings
    here; cast to float64 before a Gram matrix is formed from them."""
    counts = np.bincount(data.user_idx, minlength=data.n_users)
    means = np.bincount(data.user_idx, weights=data.rating, minlength=data.n_users) / np.maximum(counts, 1)
    values = centred_weights(data.rating, means[data.user_idx], weight).astype(np.float32)
    return sp.csr_matrix((values, (data.user_idx, data.movie_idx)), shape=(data.n_users, data.n_movies))
