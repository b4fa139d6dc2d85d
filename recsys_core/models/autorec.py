"""I-AutoRec (Sedhain et al. 2015): an autoencoder over each movie's vector of user ratings.

Each movie is one example: its ratings from all users (0 where unrated) go through a sigmoid
bottleneck and are reconstructed; the loss counts only observed ratings. A user's predicted
rating of a movie is that movie's reconstruction at the user's position. Item-based AutoRec
beats user-based on MovieLens because movies have more ratings than users do.

The decoder is linear, so the reconstruction is a dot product: movie code h_i against the
user's decoder row and bias. ``factors()`` exposes that for fast ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.models.base import Recommender
from recsys_core.models.interaction_utils import check_dense_size, union_interactions
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
    validation_callback,
)
from recsys_core.models.output_scores import append_ones
from recsys_core.prep.interactions import Interactions


def masked_sse(y_true: Any, y_pred: Any) -> Any:
    """Squared error summed over observed entries only (0 marks "not rated")."""
    from keras import ops

    mask = ops.cast(ops.not_equal(y_true, 0.0), y_pred.dtype)
    return ops.sum(mask * ops.square(y_true - y_pred), axis=-1)


def reconstruct(net: Any, x: np.ndarray) -> np.ndarray:
    """One inference pass over the whole (small) matrix: the per-epoch validation check calls
    this, and a direct call costs a fifth of ``predict``'s batching loop."""
    return np.asarray(net(x, training=False))


def movie_matrix(data: Interactions) -> sp.csr_matrix:
    """Movies x users ratings (0 = unrated)."""
    return data.to_csr("rating").T.tocsr()


class ItemAutoRec(Recommender):
    name = "autorec"
    description = "Keras I-AutoRec: per-movie rating autoencoder (sigmoid code, masked MSE, L2)."
    _start_net: Any = None
    _start_scale = 1.0

    def fixed_settings(self) -> dict[str, Any]:
        return epoch_settings(self.params, trained_epochs(self.history, "rmse"))

    def start_from(self, other: Recommender, epoch_scale: float) -> bool:
        if not isinstance(other, ItemAutoRec) or getattr(other, "net", None) is None:
            return False
        self._start_net, self._start_scale = other.net, epoch_scale
        return True

    def _build(self, n_users: int) -> Any:
        import keras
        from keras import layers

        hidden = int(self.params.get("hidden", 500))
        reg = keras.regularizers.L2(float(self.params.get("l2", 0.05)))
        inp = keras.Input(shape=(n_users,), name="ratings")
        x = inp
        dropout = float(self.params.get("dropout", 0.0))
        if dropout > 0:  # denoising: reconstruct ratings the encoder did not see
            x = layers.Dropout(dropout, seed=self.seed, name="corrupt")(x)
        code = layers.Dense(
            hidden,
            activation="sigmoid",
            kernel_regularizer=reg,
            name="encoder",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed),
        )(x)
        out = layers.Dense(
            n_users,
            kernel_regularizer=reg,
            name="decoder",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 1),
        )(code)
        model = keras.Model(inp, out, name="autorec")
        model.compile(optimizer=keras.optimizers.Adam(float(self.params.get("learning_rate", 3e-3))), loss=masked_sse)
        return model

    def fit(self, train: Interactions, validation: Interactions | None = None) -> ItemAutoRec:
        check_dense_size(self.name, train.n_movies, train.n_users)
        seed_everything(self.seed)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.mu = float(train.rating.mean())
        self.net = self._build(train.n_users)
        epochs = int(self.params.get("epochs", 200))
        if self._start_net is not None:  # warm start: the candidate's weights, a share of its epochs
            copy_weights(self._start_net, self.net)
            epochs, self._start_net = scaled_epochs(epochs, self._start_scale), None
        x = movie_matrix(train).toarray().astype(np.float32)
        callbacks = []
        if validation is not None and len(validation):
            rated = x.any(axis=1)

            def val_rmse() -> float:
                recon = reconstruct(self.net, x)
                pred = recon[validation.movie_idx, validation.user_idx]
                pred = self.clip(np.where(rated[validation.movie_idx], pred, self.mu))
                return float(np.sqrt(np.mean((validation.rating - pred).astype(np.float64) ** 2)))

            callbacks.append(validation_callback("rmse", val_rmse))
        self.history = fit_keras(
            self.net,
            x,
            x,
            validation=None,
            epochs=epochs,
            batch_size=int(self.params.get("batch_size", 256)),
            patience=int(self.params.get("patience", 10)),
            monitor="rmse",
            seed=self.seed,
            extra_callbacks=callbacks,
        )
        # Score with everything the user is known to have rated (the validation slice is
        # training data too; it was held out only to decide when to stop). A blend that fits
        # its weights on the validation slice turns this off, or the slice would leak.
        self._input = x
        if bool(self.params.get("input_with_validation", True)):
            self._input = movie_matrix(union_interactions(train, validation)).toarray().astype(np.float32)
        self._cache_reconstruction()
        return self

    def _cache_reconstruction(self) -> None:
        import keras

        encoder = keras.Model(self.net.input, self.net.get_layer("encoder").output)
        self._codes = predict_batched(encoder, self._input.astype(np.float32), 4096)
        w, b = self.net.get_layer("decoder").get_weights()
        self._dec_w, self._dec_b = w.T.astype(np.float32), b.astype(np.float32)
        self._rated = self._input.any(axis=1)

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        user_idx, movie_idx = np.asarray(user_idx), np.asarray(movie_idx)
        pred = np.einsum("ij,ij->i", self._codes[movie_idx], self._dec_w[user_idx]) + self._dec_b[user_idx]
        pred = np.where(self._rated[movie_idx], pred, self.mu)  # no ratings: no signal, use the mean
        return self.clip(pred)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        users = np.hstack([self._dec_w, self._dec_b[:, None]])
        return users.astype(np.float32), append_ones(self._codes)

    def _json_state(self) -> dict[str, Any]:
        return {"mu": self.mu}

    def _save_state(self, directory: Path) -> None:
        save_keras(self.net, directory)
        sp.save_npz(directory / "input.npz", sp.csr_matrix(self._input))

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.mu = float(state["mu"])
        self.net = load_keras(directory)
        self._input = sp.load_npz(directory / "input.npz").toarray().astype(np.float32)
        self._cache_reconstruction()
