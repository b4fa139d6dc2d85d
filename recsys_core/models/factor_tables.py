"""The biased-MF family's shared inference: r = mu + b_u + b_i + p_u . q_i from numpy tables.

``biased_mf`` (seed 004's model in Keras) and ``hybrid_mf`` (the same with genre/year terms
folded into q_i and b_i) train different networks but, once fitted, are the same four tables.
Predicting and exposing factors from those tables needs no Keras call, and ranking a user is
one matrix product over the augmented factors [p_u, mu + b_u, 1] . [q_i, 1, b_i].
"""

from __future__ import annotations

from typing import Any

import numpy as np


def layer_weights(net: Any) -> dict[str, list[np.ndarray]]:
    """Every weighted Keras layer's weights by layer name."""
    return {layer.name: layer.get_weights() for layer in net.layers if layer.get_weights()}


class BiasedFactorTables:
    """Mixin for fitted biased factor models holding ``_p``, ``_q``, ``_bu``, ``_bi`` and ``mu``."""

    _p: np.ndarray
    _q: np.ndarray
    _bu: np.ndarray
    _bi: np.ndarray
    mu: float
    n_users: int
    n_movies: int

    def set_tables(self, p: np.ndarray, q: np.ndarray, bu: np.ndarray, bi: np.ndarray) -> None:
        self._p, self._q, self._bu, self._bi = p, q, bu, bi

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
        """Row-wise dot products in chunks: millions of test pairs stay within bounded memory."""
        user_idx, movie_idx = np.asarray(user_idx), np.asarray(movie_idx)
        dots = np.empty(len(user_idx), np.float32)
        for start in range(0, len(user_idx), chunk):
            u, m = user_idx[start : start + chunk], movie_idx[start : start + chunk]
            dots[start : start + chunk] = np.einsum("ij,ij->i", self._p[u], self._q[m])
        return self.clip(self.mu + self._bu[user_idx] + self._bi[movie_idx] + dots)  # type: ignore[attr-defined]

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        ones_u = np.ones((self.n_users, 1), np.float32)
        ones_m = np.ones((self.n_movies, 1), np.float32)
        users = np.hstack([self._p, (self._bu + self.mu)[:, None], ones_u]).astype(np.float32)
        movies = np.hstack([self._q, ones_m, self._bi[:, None]]).astype(np.float32)
        return users, movies
