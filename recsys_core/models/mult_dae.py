"""Mult-DAE (Liang et al. 2018): a denoising autoencoder over users' sets of rated movies.

Implicit signal only: the input is the user's binary row (which movies they rated in
training), L2-normalised and corrupted with dropout; the output is a softmax over the whole
catalogue trained with the multinomial log-likelihood, which ranks far better than
regressing ratings. A user is scored by passing their training row through the network, so
``score_users`` is one batched forward pass per block of users. The output layer is linear,
so the score is a dot product of the user's last hidden layer with the movie's output
weights; ``factors()`` exposes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.models.interaction_utils import check_dense_size, union_interactions, validation_ndcg
from recsys_core.models.keras_utils import (
    epoch_settings,
    fit_keras,
    load_keras,
    predict_batched,
    save_keras,
    seed_everything,
    trained_epochs,
    validation_callback,
)
from recsys_core.models.output_scores import RowScoredRanker, append_ones, output_vectors
from recsys_core.prep.interactions import Interactions


def multinomial_nll(y_true: Any, logits: Any) -> Any:
    """-sum_i x_i log softmax(logits)_i per user (Liang et al. 2018, eq. 2)."""
    from keras import ops

    return -ops.sum(ops.log_softmax(logits, axis=-1) * y_true, axis=-1)


def mirrored_logits(x: Any, hidden: list[int], n_movies: int, reg: float, seed: int) -> Any:
    """tanh layers ``hidden`` then mirrored (encoder, decoder), then a linear layer "logits" over
    the catalogue: Mult-DAE's network after its input, shared with ``wide_dae``'s deep path."""
    import keras
    from keras import layers

    regularizer = keras.regularizers.L2(reg) if reg else None
    for j, units in enumerate(hidden + hidden[-2::-1]):
        x = layers.Dense(
            units,
            activation="tanh",
            name=f"hidden_{j}",
            kernel_regularizer=regularizer,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + j),
        )(x)
    return layers.Dense(
        n_movies,
        name="logits",
        kernel_regularizer=regularizer,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 99),
    )(x)


class MultDAE(RowScoredRanker):
    name = "mult_dae"
    predicts_ratings = False
    description = "Keras Mult-DAE: denoising autoencoder on implicit rows, softmax over all movies."

    def _build(self, n_movies: int) -> Any:
        import keras
        from keras import layers

        hidden = [int(h) for h in self.params.get("hidden", [600])]
        reg = float(self.params.get("l2", 1e-5))
        inp = keras.Input(shape=(n_movies,), name="rated")
        x = layers.UnitNormalization(name="normalise")(inp)
        x = layers.Dropout(float(self.params.get("dropout", 0.5)), seed=self.seed)(x)
        out = mirrored_logits(x, hidden, n_movies, reg, self.seed)
        model = keras.Model(inp, out, name="mult_dae")
        model.compile(
            optimizer=keras.optimizers.Adam(float(self.params.get("learning_rate", 1e-3))), loss=multinomial_nll
        )
        return model

    def fixed_settings(self) -> dict[str, Any]:
        """The epochs early stopping picked (this model does not warm-start: all of them)."""
        return epoch_settings(self.params, trained_epochs(self.history, "ndcg", mode="max"))

    def fit(self, train: Interactions, validation: Interactions | None = None) -> MultDAE:
        check_dense_size(self.name, train.n_users, train.n_movies)
        seed_everything(self.seed)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.net = self._build(train.n_movies)
        seen = train.to_csr()
        self._rows = seen
        x = seen.toarray()
        callbacks = []
        if validation is not None and len(validation):
            k = int(self.params.get("k", 10))
            callbacks.append(validation_callback("ndcg", lambda: validation_ndcg(self._scores(x), seen, validation, k)))
        self.history = fit_keras(
            self.net,
            x,
            x,
            validation=None,
            epochs=int(self.params.get("epochs", 200)),
            batch_size=int(self.params.get("batch_size", 64)),
            patience=int(self.params.get("patience", 10)),
            monitor="ndcg",
            mode="max",
            seed=self.seed,
            extra_callbacks=callbacks,
        )
        # Score users from everything known about them (validation was held out only to stop).
        self.set_scoring_rows(union_interactions(train, validation))
        self._cache_factors()
        return self

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return predict_batched(self.net, rows.astype(np.float32), 4096)

    def _cache_factors(self) -> None:
        import keras

        last_hidden = self.net.get_layer("logits").input
        self._encoder = keras.Model(self.net.input, last_hidden)
        self._movie_vectors = output_vectors(*self.net.get_layer("logits").get_weights())

    def _user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        rows = self._rows[np.asarray(user_idx)].toarray().astype(np.float32)
        return append_ones(predict_batched(self._encoder, rows, 4096))

    def validation_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Logits for the training rows from weights that never saw the validation slice.

        A blend fits its weights on the validation slice; the network was trained on the
        training rows only (validation just chose the epoch), so these scores are honest."""
        return self._scores(rows.toarray())

    def _save_state(self, directory: Path) -> None:
        save_keras(self.net, directory)
        sp.save_npz(directory / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.net = load_keras(directory)
        self._rows = sp.load_npz(directory / "rows.npz").tocsr()
        self._cache_factors()
