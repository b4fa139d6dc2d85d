"""Biased matrix factorisation in Keras: r = mu + b_u + b_i + p_u . q_i.

The network learns the residual around the training mean (mean normalisation), with L2 on
factors and biases, Adam, and early stopping on validation RMSE. Scoring uses the learned
factors directly, so ranking every movie for a user is one matrix product.
"""

from __future__ import annotations

from recsys_core.models.factor_tables import BiasedFactorTables, layer_weights
from recsys_core.models.pair_net import PairNetModel, embedding


class BiasedMF(BiasedFactorTables, PairNetModel):
    name = "biased_mf"
    default_epochs = 40
    description = "Keras biased matrix factorisation (global mean, user/movie biases, L2), MSE."

    def _build(self, n_users: int, n_movies: int):
        import keras
        from keras import layers

        dim = int(self.params.get("dim", 64))
        l2 = float(self.params.get("l2", 1e-4))
        l2_bias = float(self.params.get("l2_bias", l2))
        user = keras.Input(shape=(), dtype="int32", name="user")
        movie = keras.Input(shape=(), dtype="int32", name="movie")
        # per_example_l2: L2 on the looked-up rows only (mean over the batch): no dense gradient
        # over the whole tables each step, which is what makes large releases slow.
        per_example = bool(self.params.get("per_example_l2", False))
        movie_seed = self.seed + 1 if per_example else self.seed
        p = embedding(n_users, dim, "user_factors", l2, self.seed, stddev=0.01, per_example=per_example)(user)
        q = embedding(n_movies, dim, "movie_factors", l2, movie_seed, stddev=0.01, per_example=per_example)(movie)
        bu = embedding(n_users, 1, "user_bias", l2_bias, self.seed, stddev=0.0, per_example=per_example)(user)
        bi = embedding(n_movies, 1, "movie_bias", l2_bias, self.seed, stddev=0.0, per_example=per_example)(movie)
        dot = layers.Dot(axes=1)([p, q])
        out = layers.Add()([dot, layers.Reshape((1,))(bu), layers.Reshape((1,))(bi)])
        model = keras.Model([user, movie], layers.Flatten()(out), name="biased_mf")
        return self.compile_net(model, "mse", 2e-3, rmse=True)

    def _after_fit(self) -> None:
        """Keep the learned tables as numpy: predict and factors() need no Keras call."""
        w = layer_weights(self.net)
        self.set_tables(w["user_factors"][0], w["movie_factors"][0], w["user_bias"][0][:, 0], w["movie_bias"][0][:, 0])
