"""Neural collaborative filtering (seeds 001/003): concatenated embeddings, dense ReLU stack, MSE.

The MLP can learn interactions a dot product cannot; it learns the residual around the
training mean so the output layer starts near a sensible rating.
"""

from __future__ import annotations

from typing import Any

from recsys_core.models.pair_net import PairNetModel, build_pair_tower


class NCF(PairNetModel):
    name = "ncf"
    description = "Keras NCF: user and movie embeddings concatenated, dense ReLU stack, MSE."

    def _build(self, n_users: int, n_movies: int) -> Any:
        import keras
        from keras import layers

        user, movie, x = build_pair_tower(n_users, n_movies, self.params, self.seed, [64, 32, 16])
        out = layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 99))(x)
        model = keras.Model([user, movie], layers.Flatten()(out), name="ncf")
        return self.compile_net(model, "mse", 1e-3, rmse=True)
