"""Shared plumbing for Keras models that read one (user, movie) pair per example.

Subclasses build the network and say how ratings become targets and outputs become ratings;
this class fits with early stopping, predicts in large batches, ranks a block of users by
running every (user, movie) pair of the block through the network, and saves the network as
``model.keras`` (loaded in safe mode).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.models.base import Recommender
from recsys_core.models.keras_utils import (
    copy_weights,
    epoch_settings,
    fit_keras,
    load_keras,
    predict_batched,
    save_keras,
    scaled_epochs,
    seed_everything,
    trained_epochs,
)
from recsys_core.models.pair_training import fit_streamed
from recsys_core.models.streaming import should_stream
from recsys_core.prep.interactions import Interactions

# Training steps per call into TensorFlow: one graph call runs 16 batches, so the Python and
# dispatch overhead per batch (most of a small batch's cost on CPU) is paid once per 16. Same
# batches in the same order as one step per call.
STEPS_PER_EXECUTION = 16


class PairNetModel(Recommender):
    """A Keras network over (user, movie) pairs; ``monitor`` names the early-stopping metric."""

    monitor = "rmse"
    default_epochs = 30
    default_batch_size = 512
    default_patience = 3
    _start_net: Any = None
    _start_scale = 1.0

    @abstractmethod
    def _build(self, n_users: int, n_movies: int) -> Any:
        """Return a compiled Keras model with inputs named "user" and "movie"."""

    def _targets(self, rating: np.ndarray) -> np.ndarray:
        """What the network learns; default: the residual around the training mean."""
        return (rating - self.mu).astype(np.float32)

    def _to_rating(self, outputs: np.ndarray) -> np.ndarray:
        """Network output -> rating on the dataset's scale (before clipping)."""
        return outputs.reshape(-1) + self.mu

    def _inputs(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"user": np.asarray(user_idx, np.int32), "movie": np.asarray(movie_idx, np.int32)}

    def compile_net(self, model: Any, loss: Any, learning_rate: float, *, rmse: bool = False) -> Any:
        """Adam (``params.learning_rate`` or the model's default), the loss, RMSE if asked.

        ``params.jit_compile`` (the large scale profile) has XLA compile the training step."""
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(float(self.params.get("learning_rate", learning_rate))),
            loss=loss,
            metrics=[keras.metrics.RootMeanSquaredError(name="rmse")] if rmse else [],
            steps_per_execution=int(self.params.get("steps_per_execution", STEPS_PER_EXECUTION)),
            jit_compile=bool(self.params.get("jit_compile", False)),
        )
        return model

    def fixed_settings(self) -> dict[str, Any]:
        return epoch_settings(self.params, trained_epochs(self.history, self.monitor))

    def start_from(self, other: Recommender, epoch_scale: float) -> bool:
        if type(other) is not type(self) or getattr(other, "net", None) is None:
            return False
        self._start_net, self._start_scale = other.net, epoch_scale
        return True

    def _epochs(self) -> int:
        """The configured epochs, or the warm start's share of them (weights copied in ``fit``)."""
        epochs = int(self.params.get("epochs", self.default_epochs))
        return scaled_epochs(epochs, self._start_scale) if self._start_net is not None else epochs

    def fit(self, train: Interactions, validation: Interactions | None = None) -> PairNetModel:
        seed_everything(self.seed, xla=bool(self.params.get("jit_compile", False)))
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.mu = float(train.rating.mean())
        self.net = self._build(train.n_users, train.n_movies)
        epochs = self._epochs()
        if self._start_net is not None:
            copy_weights(self._start_net, self.net)
            self._start_net = None
        if should_stream(self.params):
            self.history = fit_streamed(
                self,
                self.net,
                train,
                validation,
                lambda u, m, r: (self._inputs(u, m), self._targets(r)),
                epochs=epochs,
                batch_size=int(self.params.get("batch_size", self.default_batch_size)),
                patience=int(self.params.get("patience", self.default_patience)),
                monitor=self.monitor,
            )
            self._after_fit()
            return self
        val = None
        if validation is not None and len(validation):
            val = (self._inputs(validation.user_idx, validation.movie_idx), self._targets(validation.rating))
        self.history = fit_keras(
            self.net,
            self._inputs(train.user_idx, train.movie_idx),
            self._targets(train.rating),
            validation=val,
            epochs=epochs,
            batch_size=int(self.params.get("batch_size", self.default_batch_size)),
            patience=int(self.params.get("patience", self.default_patience)),
            monitor=self.monitor,
            seed=self.seed,
        )
        self._after_fit()
        return self

    def _after_fit(self) -> None:
        """Hook: cache weights for fast paths after fitting or loading."""

    def _raw_outputs(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        return predict_batched(self.net, self._inputs(user_idx, movie_idx))

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        return self.clip(self._to_rating(self._raw_outputs(user_idx, movie_idx)))

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Predicted rating of every movie for each user of the block (one batched pass)."""
        if self.factors() is not None:
            return super().score_users(user_idx)
        users = np.asarray(user_idx, np.int32)
        pairs_u = np.repeat(users, self.n_movies)
        pairs_m = np.tile(np.arange(self.n_movies, dtype=np.int32), len(users))
        scores = self._to_rating(self._raw_outputs(pairs_u, pairs_m))
        return scores.reshape(len(users), self.n_movies).astype(np.float32)

    def _json_state(self) -> dict[str, Any]:
        return {"mu": self.mu}

    def _save_state(self, directory: Path) -> None:
        save_keras(self.net, directory)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.mu = float(state["mu"])
        self.net = load_keras(directory)
        self._after_fit()


def l2(value: float) -> Any:
    """An L2 regulariser, or None for 0 (keeps saved configs minimal)."""
    import keras

    return keras.regularizers.L2(value) if value > 0 else None


def embedding(
    n: int, dim: int, name: str, reg: float, seed: int, stddev: float = 0.05, per_example: bool = False
) -> Any:
    """A seeded embedding table with optional L2.

    ``per_example`` puts the L2 on the looked-up rows (mean over the batch, as in Funk-style
    SGD), so frequent users and movies are regularised as often as they are seen, instead of
    shrinking the whole table on every batch.
    """
    import keras

    return keras.layers.Embedding(
        n,
        dim,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=stddev, seed=seed),
        embeddings_regularizer=None if per_example else l2(reg),
        activity_regularizer=l2(reg) if per_example else None,
        name=name,
    )


def build_pair_tower(
    n_users: int, n_movies: int, params: dict[str, Any], seed: int, default_hidden: list[int]
) -> tuple[Any, Any, Any]:
    """Inputs and the shared trunk of the MLP models (classifier, ncf): user and movie
    embeddings concatenated, dropout, then a seeded dense ReLU stack. Returns (user, movie, x);
    each model adds its own output layer and loss."""
    import keras
    from keras import layers

    dim = int(params.get("dim", 32))
    reg = float(params.get("l2", 1e-5))
    user = keras.Input(shape=(), dtype="int32", name="user")
    movie = keras.Input(shape=(), dtype="int32", name="movie")
    x = layers.Concatenate()(
        [
            embedding(n_users, dim, "user_embedding", reg, seed)(user),
            embedding(n_movies, dim, "movie_embedding", reg, seed + 1)(movie),
        ]
    )
    x = layers.Dropout(float(params.get("dropout", 0.2)), seed=seed)(x)
    for j, units in enumerate(params.get("hidden", default_hidden)):
        x = layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=l2(reg),
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 10 + j),
        )(x)
    return user, movie, x
