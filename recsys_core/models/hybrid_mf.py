"""Hybrid biased MF: collaborative factors plus genre and release-year features.

r = mu + b_u + b_i + w . f_i + p_u . (q_i + E f_i), where f_i are the movie's side features
(``recsys_core.prep.features.build_item_features``). Rarely rated movies borrow strength from
movies of the same genres and era through w and E. Folding E f_i and w . f_i into the movie
factors and bias after training keeps ranking a single matrix product.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys_core.errors import ModelError
from recsys_core.models.factor_tables import BiasedFactorTables, layer_weights
from recsys_core.models.pair_net import PairNetModel, embedding, l2
from recsys_core.prep.interactions import Interactions


class HybridMF(BiasedFactorTables, PairNetModel):
    name = "hybrid_mf"
    uses_item_features = True
    description = "Keras biased MF whose movie factors and bias add learned genre/year terms."

    def fit(self, train: Interactions, validation: Interactions | None = None) -> HybridMF:
        if self.item_features is None or len(self.item_features) != train.n_movies:
            raise ModelError(
                f"The model {self.name!r} needs movie features for all {train.n_movies} movies: call "
                "set_item_features(build_item_features(movies, vocab)) before fit."
            )
        return super().fit(train, validation)  # type: ignore[return-value]

    def _inputs(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> dict[str, np.ndarray]:
        inputs = super()._inputs(user_idx, movie_idx)
        inputs["features"] = self.item_features[inputs["movie"]]
        return inputs

    def _build(self, n_users: int, n_movies: int) -> Any:
        import keras
        from keras import layers

        dim = int(self.params.get("dim", 64))
        reg = float(self.params.get("l2", 0.1))
        n_features = self.item_features.shape[1]
        user = keras.Input(shape=(), dtype="int32", name="user")
        movie = keras.Input(shape=(), dtype="int32", name="movie")
        feats = keras.Input(shape=(n_features,), dtype="float32", name="features")
        per_example = bool(self.params.get("per_example_l2", True))
        p = embedding(n_users, dim, "user_factors", reg, self.seed, stddev=0.01, per_example=per_example)(user)
        q = embedding(n_movies, dim, "movie_factors", reg, self.seed + 1, stddev=0.01, per_example=per_example)(movie)
        bu = embedding(n_users, 1, "user_bias", reg, self.seed + 2, stddev=0.0, per_example=per_example)(user)
        bi = embedding(n_movies, 1, "movie_bias", reg, self.seed + 3, stddev=0.0, per_example=per_example)(movie)
        # The feature kernel keeps whole-table L2 (strong): with weaker shrinkage the genre/year
        # terms overfit on the validation slice.
        q_feat = layers.Dense(
            dim,
            use_bias=False,
            name="feature_factors",
            kernel_regularizer=l2(float(self.params.get("l2_features", 0.1))),
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=self.seed + 4),
        )(feats)
        b_feat = layers.Dense(1, use_bias=False, name="feature_bias", kernel_initializer="zeros")(feats)
        dot = layers.Dot(axes=1)([p, layers.Add()([q, q_feat])])
        out = layers.Add()([dot, layers.Reshape((1,))(bu), layers.Reshape((1,))(bi), b_feat])
        model = keras.Model([user, movie, feats], layers.Flatten()(out), name="hybrid_mf")
        return self.compile_net(model, "mse", 2e-3, rmse=True)

    def _after_fit(self) -> None:
        """Fold the feature terms into the movie tables: inference is plain biased MF."""
        w = layer_weights(self.net)
        self.set_tables(
            w["user_factors"][0],
            w["movie_factors"][0] + self.item_features @ w["feature_factors"][0],
            w["user_bias"][0][:, 0],
            w["movie_bias"][0][:, 0] + (self.item_features @ w["feature_bias"][0])[:, 0],
        )
