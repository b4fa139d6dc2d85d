"""Neural collaborative filtering (seeds 001/003): concatenated embeddings, dense ReLU stack, MSE.

The MLP can learn interactions a dot product cannot; it learns the residual around the
training mean so the output layer starts near a sensible rating.
"""

from __future__ import annotations

from typing import Any

from recsys_core.models.pair_net import PairNetModel, embedding, l2


class NCF(PairNetModel):
    name = "ncf"
    description = "Keras NCF: user and movie embeddings concatenated, dense ReLU stack, MSE."

    def _build(self, n_users: int, n_movies: int) -> Any:
        import keras
        from keras import layers

        dim = int(self.params.get("dim", 32))
        reg = float(self.params.get("l2", 1e-5))
        user = keras.Input(shape=(), dtype="int32", name="user")
        movie = keras.Input(shape=(), dtype="int32", name="movie")
        x = layers.Concatenate()(
            [
                embedding(n_users, dim, "user_embedding", reg, self.seed)(user),
                embedding(n_movies, dim, "movie_embedding", reg, self.seed + 1)(movie),
            ]
        )
        x = layers.Dropout(float(self.params.get("dropout", 0.2)), seed=self.seed)(x)
        for j, units in enumerate(self.params.get("hidden", [64, 32, 16])):
            x = layers.Dense(
                units,
                activation="relu",
                kernel_regularizer=l2(reg),
                kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 10 + j),
            )(x)
        out = layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 99))(x)
        model = keras.Model([user, movie], layers.Flatten()(out), name="ncf")
        model.compile(
            optimizer=keras.optimizers.Adam(float(self.params.get("learning_rate", 1e-3))),
            loss="mse",
            metrics=[keras.metrics.RootMeanSquaredError(name="rmse")],
        )
        return model
