"""EASE (Steck 2019): a linear item-to-item autoencoder with a closed-form solution.

Implicit signal only. B = argmin ||X - X B||^2 + lambda ||B||^2 with diag(B) = 0 has the
solution B = I - P / diag(P), P = (X^T X + lambda I)^-1: one inverse of a movies x movies
matrix per lambda. That costs O(m^3): about 0.3 s for ml-100k's 1,682 movies but ~20 s for
ml-latest-small's 9,724 on two cores, so B covers only the ``max_movies`` most-rated movies
(default 5,000; every ml-100k and ml-1m movie); the rest, rated a handful of times, score 0.
lambda is chosen on the validation slice from a small grid, then B is refitted on train
plus validation. A user's scores are their binary row times B, a dot product, so
``factors()`` is (rows, B^T) over the covered movies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.interaction_utils import (
    restrict_to_users,
    sample_validation_users,
    union_interactions,
    validation_ndcg,
)
from recsys_core.prep.interactions import Interactions

DEFAULT_GRID = (100.0, 200.0, 400.0, 800.0, 1600.0)
MAX_MOVIES = 5_000  # movies covered by B (most rated first); the inverse is O(MAX_MOVIES^3)
# Above these sizes (ml-25m scale) dense per-user matrices no longer fit: lambda is chosen on a
# seeded sample of validation users, and scoring multiplies the sparse rows by B per block
# instead of exposing dense user factors (162k x 5,000 floats, and a 5,000-wide matmul).


def invert_spd(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix via Cholesky (about twice as fast as LU)."""
    factor, info = lapack.dpotrf(matrix, lower=False, overwrite_a=True)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"EASE: the regularised Gram matrix is not positive definite (LAPACK info {info}).")
    return np.triu(inverse) + np.triu(inverse, 1).T


def gram_matrix(rows: sp.csr_matrix, *, blocked: bool = False, block_rows: int = 16_384) -> np.ndarray:
    """X^T X (float64, dense) of binary user rows; computed once per matrix, reused per lambda.

    Large matrices go through dense float32 blocks and BLAS (both cores): scipy's sparse
    product is single-threaded and slow when heavy users rate thousands of movies. The counts
    are integers below 2^24, so float32 accumulation is exact and both paths agree.
    """
    n_rows, n_cols = rows.shape
    if not blocked:
        return (rows.T @ rows).toarray().astype(np.float64)
    gram = np.zeros((n_cols, n_cols), np.float32)
    for start in range(0, n_rows, block_rows):
        block = rows[start : start + block_rows].toarray().astype(np.float32, copy=False)
        gram += block.T @ block
    return gram.astype(np.float64)


def solve_ease(rows: sp.csr_matrix | np.ndarray, lam: float, *, blocked: bool = False) -> np.ndarray:
    """The EASE weight matrix (float32, zero diagonal) for binary user rows (or their Gram)."""
    gram = np.array(rows, dtype=np.float64) if isinstance(rows, np.ndarray) else gram_matrix(rows, blocked=blocked)
    gram[np.diag_indices_from(gram)] += lam
    p = invert_spd(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


class EASE(Recommender):
    name = "ease"
    needs_tensorflow = False
    predicts_ratings = False
    description = "EASE closed-form linear item autoencoder on implicit rows (lambda from validation)."

    def fit(self, train: Interactions, validation: Interactions | None = None) -> EASE:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        counts = np.bincount(train.movie_idx, minlength=train.n_movies)
        limit = int(self.params.get("max_movies", MAX_MOVIES))
        self._active = np.sort(np.argsort(-counts, kind="stable")[:limit]).astype(np.int32)
        seen = train.to_csr()
        grid = [float(v) for v in self.params.get("lambdas", DEFAULT_GRID)]
        self.history = {"lambda": grid, "val_ndcg": []}
        self.lam = grid[len(grid) // 2]
        self._b_train = None
        blocked = bool(self.params.get("blocked_gram", False))  # large profile: dense float32 blocks + BLAS
        if validation is not None and len(validation) and len(grid) > 1:
            k = int(self.params.get("k", 10))
            gram = gram_matrix(seen[:, self._active], blocked=blocked)
            for lam in grid:
                b = solve_ease(gram, lam)
                ndcg = self._validation_ndcg(seen, b, validation, k)
                if not self.history["val_ndcg"] or ndcg > max(self.history["val_ndcg"]):
                    self.lam, self._b_train = lam, b
                self.history["val_ndcg"].append(ndcg)
        self._rows = union_interactions(train, validation).to_csr()
        self._b = solve_ease(self._rows[:, self._active], self.lam, blocked=blocked)
        if self._b_train is None:  # no grid search ran: the training rows' weights, once
            has_validation = validation is not None and len(validation) > 0
            self._b_train = solve_ease(seen[:, self._active], self.lam, blocked=blocked) if has_validation else self._b
        return self

    def fixed_settings(self) -> dict[str, Any]:
        """The lambda the grid chose: a refit solves once, for that lambda only."""
        return {**self.params, "lambdas": [self.lam]}

    def _validation_ndcg(self, seen: sp.csr_matrix, b: np.ndarray, validation: Interactions, k: int) -> float:
        """Validation NDCG@k; over a seeded sample of ``validation_users`` users when the scale profile sets it."""
        sample = sample_validation_users(validation, self.params.get("validation_users"), self.seed)
        if sample is None:
            return validation_ndcg(self._scatter(seen, b), seen, validation, k)
        rows = seen[sample]
        return validation_ndcg(self._scatter(rows, b), rows, restrict_to_users(validation, sample, self.n_users), k)

    def _scatter(self, rows: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
        """Full-catalogue scores: covered movies from B, the others 0."""
        out = np.zeros((rows.shape[0], self.n_movies), np.float32)
        out[:, self._active] = rows[:, self._active] @ b
        return out

    def validation_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Scores for the training rows from the weights fitted before the validation refit.

        The refitted weights have seen the validation slice; a blend that tunes on that slice
        needs these instead. Available right after ``fit`` only (not saved)."""
        return self._scatter(rows, self._b_train)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scatter(self._rows[np.asarray(user_idx)], self._b)

    def factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.params.get("dense_factors", True):
            return None  # large profile: score_users multiplies sparse rows by B per block instead
        movies = np.zeros((self.n_movies, len(self._active)), np.float32)
        movies[self._active] = self._b.T
        return self._rows[:, self._active].toarray().astype(np.float32), movies

    def _json_state(self) -> dict[str, Any]:
        return {"lambda": self.lam}

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "weights.npz", b=self._b, active=self._active)
        sp.save_npz(directory / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.lam = float(state["lambda"])
        with np.load(directory / "weights.npz", allow_pickle=False) as data:
            self._b, self._active = data["b"], data["active"]
        self._rows = sp.load_npz(directory / "rows.npz").tocsr()
