"""Scores for the movies EASE leaves out, as a low-rank factor model, from sparse products only.

EASE inverts a head x head matrix, so it covers the ``max_movies`` most-rated movies and every
other movie would score 0 and never be recommended. The ridge regression of each tail column on
the same head rows has weights ``W_t = P X_h^T X_t`` (``P`` the EASE inverse, head x head): the
tail scores are then on the scale of the head's (see ``ease_tail``). At ml-25m size ``W_t`` is
5,000 x 54,000 (1 GB), and scoring every user against it costs 80x a rank-64 product, so it is
kept as a rank-r factorisation found by a randomized SVD (Halko, Martinsson and Tropp 2011)
that never forms it: ``W_t Y`` and ``W_t^T Z`` are sparse products with r + 10 columns.

A user's tail scores are ``(x_h A) V^T``: user vectors ``x_h A`` (rank r) against movie vectors
``V``, so all-user top-N treats the tail as a factor model and merges it with the head's list.
A movie with no ratings has an all-zero ``V`` row and scores 0, as under EASE.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

OVERSAMPLE = 10  # extra random directions: the usual choice for a stable top-r range
POWER_ITERATIONS = 2  # each sharpens the range where singular values decay slowly


def inverse_from_ease(
    b: np.ndarray, diag_p: np.ndarray, column_scale: np.ndarray | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """``Y -> P Y`` from EASE's weights, without a second inverse.

    Off the diagonal ``B = -P diag(s)``: ``s = 1 / diag(P)`` for EASE (the default) and
    ``s = Lambda`` for DLAE's penalty (``solve_penalised_parts``). So
    ``P = diag(P) - B diag(1 / s)``; ``column_scale`` is that ``1 / s`` (``diag(P)`` for EASE)."""

    def apply(y: np.ndarray) -> np.ndarray:
        scaled = (diag_p[:, None] * y).astype(np.float32)
        if column_scale is None:
            return scaled - b @ scaled
        return scaled - b @ (column_scale[:, None] * y).astype(np.float32)

    return apply


def fit_tail_factors(
    x_head: sp.csr_matrix,
    x_tail: sp.csr_matrix,
    b: np.ndarray,
    diag_p: np.ndarray,
    rank: int,
    seed: int,
    power_iterations: int = POWER_ITERATIONS,
    column_scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(A, V): head x r and tail x r float32 with ``A V^T`` the best rank-r approximation of
    ``W_t = P X_h^T X_t`` that the randomized range finder reaches.

    ``x_head`` / ``x_tail`` are the binary user rows restricted to the head / tail movies;
    ``b`` and ``diag_p`` come from the same EASE solve (``solve_ease_parts``); a penalised solve
    also gives ``column_scale`` (``inverse_from_ease``).
    """
    n_tail = x_tail.shape[1]
    width = min(rank + OVERSAMPLE, n_tail, x_head.shape[1])
    if n_tail == 0 or width == 0:
        return np.zeros((x_head.shape[1], 0), np.float32), np.zeros((n_tail, 0), np.float32)
    p_apply = inverse_from_ease(b, diag_p, column_scale)
    x_head_t = x_head.T.tocsr()
    x_tail_t = x_tail.T.tocsr()

    def w_times(y: np.ndarray) -> np.ndarray:  # W_t y: tail-sized input, head-sized output
        return p_apply(np.asarray(x_head_t @ (x_tail @ y), np.float32))

    def wt_times(z: np.ndarray) -> np.ndarray:  # W_t^T z (P is symmetric)
        return np.asarray(x_tail_t @ (x_head @ p_apply(z)), np.float32)

    omega = np.random.default_rng(seed).standard_normal((n_tail, width)).astype(np.float32)
    q, _ = np.linalg.qr(w_times(omega))
    for _ in range(power_iterations):  # re-orthonormalise each half step: float32 loses the small directions
        q, _ = np.linalg.qr(wt_times(q))
        q, _ = np.linalg.qr(w_times(q))
    small = wt_times(q).T  # (width x tail) = Q^T W_t
    u, s, vt = np.linalg.svd(small.astype(np.float64), full_matrices=False)
    r = min(rank, len(s))
    a = (q.astype(np.float64) @ (u[:, :r] * s[:r])).astype(np.float32)
    return a, np.ascontiguousarray(vt[:r].T, np.float32)
