"""Dot product plus biases through a scaled sigmoid (seed 002).

rating = min + (max - min) * sigmoid(p_u . q_i + b_u + b_i + b). The sigmoid keeps every
prediction on the scale without clipping; it is monotone, so ranking by the logit (a dot
product of augmented factors) gives the same order and uses the fast matrix-product path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys_core.models.factor_tables import layer_weights
from recsys_core.models.pair_net import PairNetModel, embedding


class DotBias(PairNetModel):
    name = "dot_bias"
    description = "Keras dot product + user/movie biases, sigmoid scaled to the rating range."

    def _targets(self, rating: np.ndarray) -> np.ndarray:
        return rating.astype(np.float32)

    def _to_rating(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.reshape(-1)

    def _build(self, n_users: int, n_movies: int) -> Any:
        import keras
        from keras import layers

        dim = int(self.params.get("dim", 32))
        reg = float(self.params.get("l2", 1e-4))
        user = keras.Input(shape=(), dtype="int32", name="user")
        movie = keras.Input(shape=(), dtype="int32", name="movie")
        p = embedding(n_users, dim, "user_factors", reg, self.seed, stddev=0.01)(user)
        q = embedding(n_movies, dim, "movie_factors", reg, self.seed + 1, stddev=0.01)(movie)
        bu = embedding(n_users, 1, "user_bias", reg, self.seed + 2, stddev=0.0)(user)
        bi = embedding(n_movies, 1, "movie_bias", reg, self.seed + 3, stddev=0.0)(movie)
        logit = layers.Add()([layers.Dot(axes=1)([p, q]), layers.Reshape((1,))(bu), layers.Reshape((1,))(bi)])
        logit = layers.Dense(1, name="offset", kernel_initializer="ones", trainable=True)(logit)
        prob = layers.Activation("sigmoid")(logit)
        low, span = self.rating_min, self.rating_max - self.rating_min
        out = layers.Rescaling(scale=span, offset=low)(prob)
        model = keras.Model([user, movie], layers.Flatten()(out), name="dot_bias")
        return self.compile_net(model, "mse", 2e-3, rmse=True)

    def _after_fit(self) -> None:
        w = layer_weights(self.net)
        self._p, self._q = w["user_factors"][0], w["movie_factors"][0]
        self._bu, self._bi = w["user_bias"][0][:, 0], w["movie_bias"][0][:, 0]
        self._scale, self._offset = float(w["offset"][0][0, 0]), float(w["offset"][1][0])

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """Augmented factors whose dot product is the logit (same order as the rating)."""
        ones_u = np.ones((self.n_users, 1), np.float32)
        ones_m = np.ones((self.n_movies, 1), np.float32)
        users = self._scale * np.hstack([self._p, self._bu[:, None], ones_u])
        movies = np.hstack([self._q, ones_m, self._bi[:, None]])
        return users.astype(np.float32), movies.astype(np.float32)
