"""Matrix factorisation with a hand-written training loop (seed 004).

Ratings are mean-normalised per movie (each movie's mean, shrunk towards the global mean so
rarely rated movies do not get extreme means); P and Q model what is left. The loop uses
``tf.GradientTape`` and Adam over ``tf.Variable`` factors, with L2 on the factors of each
mini-batch, and keeps the factors of the best validation epoch (early stopping by hand).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.models.base import Recommender
from recsys_core.models.keras_utils import seed_everything
from recsys_core.models.output_scores import append_ones
from recsys_core.prep.interactions import Interactions


def shrunk_movie_means(train: Interactions, shrinkage: float) -> tuple[float, np.ndarray]:
    """Global mean and per-movie means pulled towards it by ``shrinkage`` pseudo-ratings."""
    mu = float(train.rating.mean())
    sums = np.bincount(train.movie_idx, train.rating.astype(np.float64), train.n_movies)
    counts = np.bincount(train.movie_idx, minlength=train.n_movies)
    return mu, ((sums + shrinkage * mu) / (counts + shrinkage)).astype(np.float32)


class GradientTapeMF(Recommender):
    name = "mf"
    description = "Matrix factorisation, per-movie mean normalisation, L2, tf.GradientTape + Adam loop."

    def fit(self, train: Interactions, validation: Interactions | None = None) -> GradientTapeMF:
        import keras
        import tensorflow as tf

        seed_everything(self.seed)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        dim = int(self.params.get("dim", 32))
        reg = float(self.params.get("l2", 0.1))
        batch = int(self.params.get("batch_size", 1024))
        epochs = int(self.params.get("epochs", 60))
        patience = int(self.params.get("patience", 4))
        self.mu, self.movie_mean = shrunk_movie_means(train, float(self.params.get("shrinkage", 5.0)))

        rng = np.random.default_rng(self.seed)
        p = tf.Variable(rng.normal(0, 0.1, (self.n_users, dim)).astype(np.float32), name="P")
        q = tf.Variable(rng.normal(0, 0.1, (self.n_movies, dim)).astype(np.float32), name="Q")
        optimizer = keras.optimizers.Adam(float(self.params.get("learning_rate", 5e-3)))

        @tf.function(reduce_retracing=True)
        def step(u: tf.Tensor, i: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                pu, qi = tf.gather(p, u), tf.gather(q, i)
                err = y - tf.reduce_sum(pu * qi, axis=1)
                mse = tf.reduce_mean(tf.square(err))
                loss = mse + reg * tf.reduce_mean(tf.reduce_sum(pu * pu + qi * qi, axis=1))
            optimizer.apply_gradients(zip(tape.gradient(loss, [p, q]), [p, q], strict=True))
            return mse

        residual = (train.rating - self.movie_mean[train.movie_idx]).astype(np.float32)
        best, best_state, wait = np.inf, None, 0
        self.history = {"loss": [], "val_rmse": []}
        for _ in range(epochs):
            order = rng.permutation(len(train))
            losses = []
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                losses.append(float(step(train.user_idx[idx], train.movie_idx[idx], residual[idx])))
            self.history["loss"].append(float(np.mean(losses)))
            self._p, self._q = p.numpy(), q.numpy()
            if validation is None or not len(validation):
                continue
            err = validation.rating - self.predict(validation.user_idx, validation.movie_idx)
            val_rmse = float(np.sqrt(np.mean(err.astype(np.float64) ** 2)))
            self.history["val_rmse"].append(val_rmse)
            if val_rmse < best - 1e-5:
                best, best_state, wait = val_rmse, (self._p, self._q), 0
            else:
                wait += 1
                if wait >= patience:
                    break
        if best_state is not None:
            self._p, self._q = best_state
        return self

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        dots = np.einsum("ij,ij->i", self._p[user_idx], self._q[movie_idx])
        return self.clip(self.movie_mean[movie_idx] + dots)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        movies = np.hstack([self._q, self.movie_mean[:, None]])
        return append_ones(self._p), movies.astype(np.float32)

    def _json_state(self) -> dict[str, Any]:
        return {"mu": self.mu}

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "factors.npz", P=self._p, Q=self._q, movie_mean=self.movie_mean)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.mu = float(state["mu"])
        with np.load(directory / "factors.npz") as data:
            self._p, self._q, self.movie_mean = data["P"], data["Q"], data["movie_mean"]
