"""Biased matrix factorisation in Keras: r = mu + b_u + b_i + p_u . q_i.

The network learns the residual around the training mean (mean normalisation), with L2 on
factors and biases, Adam, and early stopping on validation RMSE. Scoring uses the learned
factors directly, so ranking every movie for a user is one matrix product.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys_core.interactions import Interactions
from recsys_core.models.base import Recommender
from recsys_core.models.keras_utils import fit_keras, load_keras, save_keras, seed_everything
from recsys_core.models.pair_net import embedding
from recsys_core.models.pair_training import fit_streamed
from recsys_core.models.streaming import should_stream


class BiasedMF(Recommender):
    name = "biased_mf"
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
        model.compile(
            optimizer=keras.optimizers.Adam(float(self.params.get("learning_rate", 2e-3))),
            loss="mse",
            metrics=[keras.metrics.RootMeanSquaredError(name="rmse")],
        )
        return model

    def fit(self, train: Interactions, validation: Interactions | None = None) -> BiasedMF:
        seed_everything(self.seed)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.mu = float(train.rating.mean())
        self.net = self._build(train.n_users, train.n_movies)
        if should_stream(len(train), self.params):
            self.history = fit_streamed(
                self,
                self.net,
                train,
                validation,
                self._pairs,
                epochs=int(self.params.get("epochs", 40)),
                batch_size=int(self.params.get("batch_size", 512)),
                patience=int(self.params.get("patience", 3)),
                monitor="rmse",
            )
            self._cache_factors()
            return self
        val = None
        if validation is not None:
            val = ({"user": validation.user_idx, "movie": validation.movie_idx}, validation.rating - self.mu)
        self.history = fit_keras(
            self.net,
            {"user": train.user_idx, "movie": train.movie_idx},
            train.rating - self.mu,
            validation=val,
            epochs=int(self.params.get("epochs", 40)),
            batch_size=int(self.params.get("batch_size", 512)),
            patience=int(self.params.get("patience", 3)),
            monitor="rmse",
            seed=self.seed,
        )
        self._cache_factors()
        return self

    def _pairs(self, user_idx: np.ndarray, movie_idx: np.ndarray, rating: np.ndarray) -> tuple[dict, np.ndarray]:
        """(inputs, targets) for one batch: ids as int32, the rating's residual around mu."""
        inputs = {"user": np.asarray(user_idx, np.int32), "movie": np.asarray(movie_idx, np.int32)}
        return inputs, (np.asarray(rating, np.float32) - np.float32(self.mu)).astype(np.float32)

    def _cache_factors(self) -> None:
        w = {layer.name: layer.get_weights()[0] for layer in self.net.layers if layer.get_weights()}
        self._p, self._q = w["user_factors"], w["movie_factors"]
        self._bu, self._bi = w["user_bias"][:, 0], w["movie_bias"][:, 0]

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
        """Row-wise dot products in chunks: millions of test pairs stay within bounded memory."""
        user_idx, movie_idx = np.asarray(user_idx), np.asarray(movie_idx)
        dots = np.empty(len(user_idx), np.float32)
        for start in range(0, len(user_idx), chunk):
            u, m = user_idx[start : start + chunk], movie_idx[start : start + chunk]
            dots[start : start + chunk] = np.einsum("ij,ij->i", self._p[u], self._q[m])
        return self.clip(self.mu + self._bu[user_idx] + self._bi[movie_idx] + dots)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        ones_u = np.ones((self.n_users, 1), np.float32)
        ones_m = np.ones((self.n_movies, 1), np.float32)
        users = np.hstack([self._p, (self._bu + self.mu)[:, None], ones_u]).astype(np.float32)
        movies = np.hstack([self._q, ones_m, self._bi[:, None]]).astype(np.float32)
        return users, movies

    def _json_state(self) -> dict:
        return {"mu": self.mu}

    def _save_state(self, directory: Path) -> None:
        save_keras(self.net, directory)

    def _load_state(self, directory: Path, state: dict) -> None:
        self.mu = float(state["mu"])
        self.net = load_keras(directory)
        self._cache_factors()
