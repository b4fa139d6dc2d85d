"""EASE on the head of the catalogue plus ridge-regressed tail columns: every rated movie scores.

``ease`` inverts a movies x movies matrix, O(m^3), so B covers only the ``max_movies`` most
rated movies; ``ease`` scores the rest with a rank-64 approximation of the same ridge tail
(``tail_factors.py``). Here the tail is exact (a dense head x tail matrix, for small
catalogues) and a validated popularity discount can lift it into lists. The ``head_movies`` most-rated movies
are the inputs and EASE targets, exactly as in ``ease``; every other movie rated at least
once in training is a target too, predicted from the same head inputs by ridge regression:

    B_head = I - P / diag(P)          (EASE, diag(B) = 0),  P = (X_h^T X_h + lambda I)^-1
    W_tail = P X_h^T X_t              (ridge regression of each tail column on the head rows)

Both parts come from the same inverse P, so the tail costs one (head x head) @ (head x tail)
product and no larger inverse, and the tail scores are on the same scale as the head's (each
is a least-squares prediction of "the user rated this movie"). Then each column is divided by
(count + 1)^beta (count = ratings of the movie in training), which trades popularity for
catalogue coverage; beta = 0 is plain EASE order.

lambda is chosen on the validation slice from ``lambdas`` (head only, as ``ease``), then beta
from ``betas`` with the full catalogue; both are refitted on train plus validation. A user's
scores are their binary head row times W, W = [B_head | W_tail] scaled per column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.models.base import Recommender
from recsys_core.models.ease import DEFAULT_GRID, MAX_MOVIES, gram_matrix, invert_spd
from recsys_core.models.interaction_utils import (
    restrict_to_users,
    sample_validation_users,
    union_interactions,
    validation_ndcg,
)
from recsys_core.prep.interactions import Interactions

DEFAULT_BETAS = (0.0, 0.05, 0.1, 0.2)


def head_and_tail(counts: np.ndarray, head_movies: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (sorted) of the ``head_movies`` most-rated movies, and of every other rated movie."""
    order = np.argsort(-counts, kind="stable")
    head = np.sort(order[:head_movies])
    rated = np.flatnonzero(counts > 0)
    tail = np.setdiff1d(rated, head)
    return head.astype(np.int32), tail.astype(np.int32)


def solve_head_tail(
    rows: sp.csr_matrix, head: np.ndarray, tail: np.ndarray, lam: float, block: int = 4096, blocked: bool = False
) -> np.ndarray:
    """W (len(head) x n_movies, float32): EASE weights on the head, ridge weights on the tail, 0 elsewhere."""
    x_head = rows[:, head].tocsr()
    gram = gram_matrix(x_head, blocked=blocked)
    gram[np.diag_indices_from(gram)] += lam
    p = invert_spd(gram)
    w = np.zeros((len(head), rows.shape[1]), np.float32)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    w[:, head] = b
    p32 = p.astype(np.float32)
    x_tail = rows[:, tail].tocsc()
    for start in range(0, len(tail), block):  # bounded memory: one block of tail columns at a time
        cols = tail[start : start + block]
        cross = (x_head.T @ x_tail[:, start : start + block]).toarray().astype(np.float32)
        w[:, cols] = p32 @ cross
    return w


def popularity_scale(counts: np.ndarray, beta: float) -> np.ndarray:
    return np.power(counts.astype(np.float64) + 1.0, -beta).astype(np.float32)


class EASETail(Recommender):
    name = "ease_tail"
    needs_tensorflow = False
    predicts_ratings = False
    description = "EASE on the most-rated movies plus ridge-regressed tail columns (every rated movie scores)."

    def fit(self, train: Interactions, validation: Interactions | None = None) -> EASETail:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        head_movies = int(self.params.get("head_movies", MAX_MOVIES))
        lambdas = [float(v) for v in self.params.get("lambdas", DEFAULT_GRID)]
        betas = [float(v) for v in self.params.get("betas", DEFAULT_BETAS)]
        k = int(self.params.get("k", 10))
        seen = train.to_csr()
        counts = np.bincount(train.movie_idx, minlength=train.n_movies)
        head, tail = head_and_tail(counts, head_movies)
        self.lam, self.beta = lambdas[len(lambdas) // 2], betas[0]
        self.history = {"lambda": lambdas, "val_ndcg": [], "beta": betas, "val_ndcg_beta": []}
        has_val = validation is not None and len(validation) > 0
        if has_val:
            sample = self._validation_users(validation)
            if len(lambdas) > 1:  # lambda on the head alone (as ``ease``)
                no_tail = np.zeros(0, np.int32)
                for lam in lambdas:
                    w = solve_head_tail(seen, head, no_tail, lam, blocked=self._blocked)
                    self.history["val_ndcg"].append(self._val(seen, head, w, validation, sample, k))
                self.lam = lambdas[int(np.argmax(self.history["val_ndcg"]))]
            w = solve_head_tail(seen, head, tail, self.lam, blocked=self._blocked)
            for beta in betas:
                scaled = w * popularity_scale(counts, beta)
                self.history["val_ndcg_beta"].append(self._val(seen, head, scaled, validation, sample, k))
            self.beta = betas[int(np.argmax(self.history["val_ndcg_beta"]))]
        full = union_interactions(train, validation)
        self._rows = full.to_csr()
        counts = np.bincount(full.movie_idx, minlength=full.n_movies)
        self._head, tail = head_and_tail(counts, head_movies)
        self._w = solve_head_tail(self._rows, self._head, tail, self.lam, blocked=self._blocked)
        self._w *= popularity_scale(counts, self.beta)
        self._head_rows = self._rows[:, self._head].tocsr()
        return self

    @property
    def _blocked(self) -> bool:
        """Large scale profile: the Gram matrix in dense float32 blocks (recsys_core/scale.py)."""
        return bool(self.params.get("blocked_gram", False))

    def _validation_users(self, validation: Interactions) -> np.ndarray:
        """Validation users to score: all, or the scale profile's seeded sample (``validation_users``)."""
        sample = sample_validation_users(validation, self.params.get("validation_users"), self.seed)
        return np.unique(validation.user_idx) if sample is None else sample

    def _val(
        self, seen: sp.csr_matrix, head: np.ndarray, w: np.ndarray, validation: Interactions, users: np.ndarray, k: int
    ) -> float:
        part = restrict_to_users(validation, users, self.n_users)
        rows = seen[users]
        scores = np.asarray(rows[:, head] @ w, np.float32)
        return validation_ndcg(scores, rows, part, k)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self._head_rows[np.asarray(user_idx)] @ self._w, np.float32)

    def _json_state(self) -> dict[str, Any]:
        return {"lambda": self.lam, "beta": self.beta}

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "weights.npz", w=self._w, head=self._head)
        sp.save_npz(directory / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.lam, self.beta = float(state["lambda"]), float(state["beta"])
        with np.load(directory / "weights.npz", allow_pickle=False) as data:
            self._w, self._head = data["w"], data["head"]
        self._rows = sp.load_npz(directory / "rows.npz").tocsr()
        self._head_rows = self._rows[:, self._head].tocsr()
