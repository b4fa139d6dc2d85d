"""EASE (Steck 2019): a linear item-to-item autoencoder with a closed-form solution.

Implicit signal only. B = argmin ||X - X B||^2 + lambda ||B||^2 with diag(B) = 0 has the
solution B = I - P / diag(P), P = (X^T X + lambda I)^-1: one n_movies x n_movies inverse, a
second on CPU for MovieLens-sized catalogues. It is a strong ranking baseline for neural
models. lambda is chosen on the validation slice from a small grid, then B is refitted on
train plus validation (the closed form makes the refit free). A user's scores are their
binary row times B, a dot product, so ``factors()`` is (rows, B^T).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.interactions import Interactions
from recsys_core.models.base import Recommender
from recsys_core.models.interaction_utils import check_dense_size, union_interactions, validation_ndcg

DEFAULT_GRID = (100.0, 200.0, 400.0, 800.0, 1600.0)
MAX_MOVIES = 20_000  # the inverse is n_movies^2 float64: 3.2 GB and minutes of CPU at 20k


def solve_ease(rows: sp.csr_matrix, lam: float) -> np.ndarray:
    """The EASE weight matrix (float32, zero diagonal) for binary user rows."""
    gram = (rows.T @ rows).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


class EASE(Recommender):
    name = "ease"
    predicts_ratings = False
    description = "EASE closed-form linear item autoencoder on implicit rows (lambda from validation)."

    def fit(self, train: Interactions, validation: Interactions | None = None) -> EASE:
        check_dense_size(self.name, train.n_movies, train.n_movies, limit=MAX_MOVIES**2)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        seen = train.to_csr()
        grid = [float(v) for v in self.params.get("lambdas", DEFAULT_GRID)]
        self.history = {"lambda": grid, "val_ndcg": []}
        self.lam = grid[len(grid) // 2]
        if validation is not None and len(validation) and len(grid) > 1:
            k = int(self.params.get("k", 10))
            for lam in grid:
                scores = seen @ solve_ease(seen, lam)
                self.history["val_ndcg"].append(validation_ndcg(np.asarray(scores), seen, validation, k))
            self.lam = grid[int(np.argmax(self.history["val_ndcg"]))]
        self._b_train = solve_ease(seen, self.lam)
        self._rows = union_interactions(train, validation).to_csr()
        self._b = solve_ease(self._rows, self.lam)
        return self

    def validation_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Scores for the training rows from the weights fitted before the validation refit.

        The refitted weights have seen the validation slice; a blend that tunes on that slice
        needs these instead. Available right after ``fit`` only (not saved)."""
        return np.asarray(rows @ self._b_train, dtype=np.float32)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self._rows[np.asarray(user_idx)] @ self._b, dtype=np.float32)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self._rows.toarray().astype(np.float32), np.ascontiguousarray(self._b.T)

    def _json_state(self) -> dict[str, Any]:
        return {"lambda": self.lam}

    def _save_state(self, directory: Path) -> None:
        np.save(directory / "weights.npy", self._b)
        sp.save_npz(directory / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.lam = float(state["lambda"])
        self._b = np.load(directory / "weights.npy", allow_pickle=False)
        self._rows = sp.load_npz(directory / "rows.npz").tocsr()
