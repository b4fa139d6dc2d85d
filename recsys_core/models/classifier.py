"""Rating as classification (seed 000): softmax over the rating values, expectation as rating.

Treating each star value as a class lets the network express "either 2 or 5" for polarising
movies; the expected value turns the class distribution back into a rating, and ranking uses
that expectation too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys_core.models.pair_net import PairNetModel, build_pair_tower


def rating_values(rating_min: float, rating_max: float, step: float | None = None) -> np.ndarray:
    """The rating grid; half stars when the scale starts at 0.5 (CSV releases), else whole stars."""
    if step is None:
        step = 1.0 if float(rating_min).is_integer() else 0.5
    n = int(round((rating_max - rating_min) / step)) + 1
    return (rating_min + step * np.arange(n)).astype(np.float32)


class RatingClassifier(PairNetModel):
    name = "classifier"
    description = "Keras user/movie embeddings + dense ReLU layers, softmax over rating values."
    monitor = "loss"

    @property
    def values(self) -> np.ndarray:
        given = self.params.get("rating_values")
        if given:
            return np.asarray(given, np.float32)
        return rating_values(self.rating_min, self.rating_max, self.params.get("rating_step"))

    def _targets(self, rating: np.ndarray) -> np.ndarray:
        """Index of the nearest rating value (averaged duplicates snap to the grid)."""
        return np.abs(rating[:, None] - self.values[None, :]).argmin(axis=1).astype(np.int32)

    def _to_rating(self, outputs: np.ndarray) -> np.ndarray:
        return outputs @ self.values

    def _build(self, n_users: int, n_movies: int) -> Any:
        import keras
        from keras import layers

        user, movie, x = build_pair_tower(n_users, n_movies, self.params, self.seed, [64, 32])
        out = layers.Dense(
            len(self.values),
            activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 99),
        )(x)
        model = keras.Model([user, movie], out, name="classifier")
        return self.compile_net(model, "sparse_categorical_crossentropy", 1e-3, rmse=False)
