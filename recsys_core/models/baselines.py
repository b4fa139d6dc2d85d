"""Baselines every model is measured against: global mean, user+movie bias, popularity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.models.base import Recommender
from recsys_core.prep.interactions import Interactions


class _ArrayModel(Recommender):
    """Persists its numpy arrays in one ``arrays.npz``."""

    _arrays: tuple[str, ...] = ()
    needs_tensorflow = False

    def fixed_settings(self) -> dict[str, Any]:
        """Baselines choose nothing on the validation slice: the same parameters refit alike."""
        return dict(self.params)

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "arrays.npz", **{k: getattr(self, k) for k in self._arrays})

    def _load_state(self, directory: Path, state: dict) -> None:
        with np.load(directory / "arrays.npz") as data:
            for k in self._arrays:
                setattr(self, k, data[k])


class GlobalMean(_ArrayModel):
    """Predicts the training mean for every pair; has no ranking."""

    name = "global_mean"
    ranks = False
    description = "Baseline: the global mean rating for every pair (no ranking)."
    _arrays = ("mu",)

    def fit(self, train: Interactions, validation: Interactions | None = None) -> GlobalMean:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.mu = np.float32(train.rating.mean())
        return self

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        return np.full(len(user_idx), self.mu, np.float32)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full((self.n_users, 1), self.mu, np.float32), np.ones((self.n_movies, 1), np.float32)


class BiasBaseline(_ArrayModel):
    """mu + b_u + b_i with shrinkage (Koren 2010, eq. 2), fitted by alternating averages."""

    name = "bias"
    description = "Baseline: global mean plus regularised user and movie biases."
    _arrays = ("mu", "user_bias", "movie_bias")

    def fit(self, train: Interactions, validation: Interactions | None = None) -> BiasBaseline:
        reg_u = float(self.params.get("reg_user", 15.0))
        reg_i = float(self.params.get("reg_movie", 10.0))
        self.n_users, self.n_movies = train.n_users, train.n_movies
        u, i, r = train.user_idx, train.movie_idx, train.rating.astype(np.float64)
        self.mu = np.float32(r.mean())
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_movies)
        n_u = np.bincount(u, minlength=train.n_users)
        n_i = np.bincount(i, minlength=train.n_movies)
        for _ in range(int(self.params.get("iterations", 10))):
            bi = np.bincount(i, r - self.mu - bu[u], train.n_movies) / (reg_i + n_i)
            bu = np.bincount(u, r - self.mu - bi[i], train.n_users) / (reg_u + n_u)
        self.user_bias, self.movie_bias = bu.astype(np.float32), bi.astype(np.float32)
        return self

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        return self.clip(self.mu + self.user_bias[user_idx] + self.movie_bias[movie_idx])

    def shared_ranking(self) -> np.ndarray:
        """The user's bias shifts all of a user's scores alike: movies rank by their bias."""
        return self.movie_bias

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        users = np.stack([self.user_bias + self.mu, np.ones(self.n_users, np.float32)], axis=1)
        movies = np.stack([np.ones(self.n_movies, np.float32), self.movie_bias], axis=1)
        return users, movies


class Popularity(_ArrayModel):
    """Ranks movies by how many training ratings they have; predicts no rating."""

    name = "popularity"
    predicts_ratings = False
    description = "Baseline: the most-rated movies the user has not seen."
    _arrays = ("counts",)

    def fit(self, train: Interactions, validation: Interactions | None = None) -> Popularity:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.counts = np.bincount(train.movie_idx, minlength=train.n_movies).astype(np.float32)
        return self

    def shared_ranking(self) -> np.ndarray:
        return self.counts

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return np.ones((self.n_users, 1), np.float32), self.counts[:, None]
