"""Item-based kNN on baseline residuals (Koren 2010, "KNNBaseline"), a blend member.

r(u, i) = b(u, i) + sum_j s_ij (r_uj - b_uj) / sum_j s_ij over the k movies j the user rated
that are most similar to i (positive similarities only); b is the regularised bias baseline
and s the shrunk Pearson-baseline correlation of the movies' residuals over common users.
Neighbourhood models err differently from factor models and autoencoders, which is what a
blend needs. No epochs: the validation slice is not used, so its predictions are honest.
Work is vectorised per user (all of a user's query movies against all their rated movies).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.models.base import Recommender
from recsys_core.models.baselines import BiasBaseline
from recsys_core.models.interaction_utils import check_dense_size
from recsys_core.prep.interactions import Interactions


def pearson_baseline(residuals: sp.csr_matrix, shrinkage: float) -> np.ndarray:
    """Shrunk correlation of movie residual columns over the users who rated both."""
    rated = residuals.copy()
    rated.data = np.ones_like(rated.data)
    num = (residuals.T @ residuals).toarray()
    squares = residuals.multiply(residuals).tocsr()
    sq = (squares.T @ rated).toarray()  # [i, j] = sum over users rating both of e_ui^2
    support = (rated.T @ rated).toarray()
    with np.errstate(divide="ignore", invalid="ignore"):
        sim = num / np.sqrt(sq * sq.T)
    sim = np.nan_to_num(sim) * support / (support + shrinkage)
    np.fill_diagonal(sim, 0.0)
    return sim.astype(np.float32)


class ItemKNN(Recommender):
    name = "item_knn"
    needs_tensorflow = False
    description = "Item kNN on bias-baseline residuals (shrunk Pearson-baseline), numpy."

    def fixed_settings(self) -> dict[str, Any]:
        """Nothing is chosen on the validation slice: the same parameters refit alike."""
        return dict(self.params)

    def fit(self, train: Interactions, validation: Interactions | None = None) -> ItemKNN:
        check_dense_size(self.name, train.n_movies, train.n_movies, limit=20_000**2)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.baseline = BiasBaseline(
            rating_min=self.rating_min,
            rating_max=self.rating_max,
            reg_user=self.params.get("reg_user", 15.0),
            reg_movie=self.params.get("reg_movie", 10.0),
        ).fit(train)
        base = self._baseline(train.user_idx, train.movie_idx)
        self._residuals = sp.csr_matrix(
            ((train.rating - base).astype(np.float32), (train.user_idx, train.movie_idx)),
            shape=(train.n_users, train.n_movies),
        )
        self._sim = pearson_baseline(self._residuals, float(self.params.get("shrinkage", 100.0)))
        return self

    def _baseline(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        b = self.baseline
        return (b.mu + b.user_bias[user_idx] + b.movie_bias[movie_idx]).astype(np.float32)

    def _neighbour_offsets(self, user: int, movies: np.ndarray) -> np.ndarray:
        """Weighted residual of the user's k most similar rated movies, per query movie."""
        row = self._residuals[user]
        rated, res = row.indices, row.data
        if len(rated) == 0:
            return np.zeros(len(movies), np.float32)
        sims = np.maximum(self._sim[np.ix_(movies, rated)], 0.0)
        k = int(self.params.get("k", 40))
        if len(rated) > k:
            drop = np.argpartition(-sims, k - 1, axis=1)[:, k:]
            np.put_along_axis(sims, drop, 0.0, axis=1)
        total = sims.sum(axis=1)
        return np.where(total > 0, (sims @ res) / np.maximum(total, 1e-9), 0.0).astype(np.float32)

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        user_idx, movie_idx = np.asarray(user_idx), np.asarray(movie_idx)
        out = self._baseline(user_idx, movie_idx)
        order = np.argsort(user_idx, kind="stable")
        users, starts = np.unique(user_idx[order], return_index=True)
        for user, pos in zip(users, np.split(order, starts[1:]), strict=True):
            out[pos] += self._neighbour_offsets(int(user), movie_idx[pos])
        return self.clip(out)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Predicted rating of every movie, one vectorised pass per user of the block."""
        movies = np.arange(self.n_movies)
        return np.stack([self.predict(np.full(self.n_movies, u), movies) for u in np.asarray(user_idx)]).astype(
            np.float32
        )

    def _save_state(self, directory: Path) -> None:
        b = self.baseline
        np.savez(directory / "knn.npz", sim=self._sim, mu=b.mu, user_bias=b.user_bias, movie_bias=b.movie_bias)
        sp.save_npz(directory / "residuals.npz", self._residuals)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.baseline = BiasBaseline(rating_min=self.rating_min, rating_max=self.rating_max)
        with np.load(directory / "knn.npz") as data:
            self._sim = data["sim"]
            self.baseline.mu, self.baseline.user_bias, self.baseline.movie_bias = (
                data["mu"],
                data["user_bias"],
                data["movie_bias"],
            )
        self._residuals = sp.load_npz(directory / "residuals.npz").tocsr()
