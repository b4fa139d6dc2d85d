"""Picklable scorers: what a scoring shard needs from a model, without the model.

Dask workers receive their task's arguments by pickling. A dot-product model only needs
its two factor matrices to rank, so shards get a ``FactorScorer`` (plain numpy, cheap to
ship, no TensorFlow on the worker); other models travel whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FactorScorer:
    """score(user, movie) = users[user] . movies[movie]."""

    users: np.ndarray
    movies: np.ndarray

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.users, self.movies

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self.users[np.asarray(user_idx)] @ self.movies.T


def to_portable_scorer(model: Any) -> Any:
    """A FactorScorer for dot-product models, else the model itself."""
    factors = model.factors()
    if factors is None:
        return model
    users, movies = factors
    return FactorScorer(np.ascontiguousarray(users, np.float32), np.ascontiguousarray(movies, np.float32))
