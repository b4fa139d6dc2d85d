"""SASRec (Kang & McAuley 2018) in Keras: the next movie from the order of the user's history.

Why. Every other ranker here sees a user's ratings as a set. What people rate next week
follows what they rated last (a series, a director, this month's releases), which only the
order carries. This model reads each user's training ratings sorted by time and learns, at
every position, a softmax over the whole catalogue for the movie rated next: causal
self-attention over the last ``max_len`` movies, trained with full cross-entropy over all
movies rather than SASRec's one sampled negative (Klenitskiy & Vasilev 2023 found that the
full softmax is what closes the gap to BERT4Rec). Long histories are cut into windows of
``max_len`` so that every rating is a target once.

A user is scored from the hidden state after their most recent movie: a vector, so the
score is a dot product with each movie's output weights and ``factors()`` exposes it (the
serving fast path). Only the epoch is chosen on validation, and not on the pipeline's random
slice (which asks how well a model fills gaps): that slice is merged back and each user's
latest rating is held out instead, predicted from the history before it (NDCG@k). The
published lists read the user's whole history in time order.

Needs timestamps: without them the order is unknown, and the model refuses with advice. Its
output layer is a dense (positions x movies) softmax, so like the autoencoders it is for
releases of up to about 20,000 movies; larger catalogues are refused before training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ModelError
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
from recsys_core.models.output_scores import OutputLayerRanker, append_ones, output_vectors
from recsys_core.prep.interactions import Interactions

MAX_LEN = 50
# The logits of one batch are batch x max_len x movies floats; this caps them near 1 GB.
MAX_LOGITS = 250_000_000


def order_histories(data: Interactions, n_users: int) -> list[np.ndarray]:
    """Each user's movie indices sorted by time (ties by movie index, so the order is stable)."""
    if data.timestamp is None:
        raise ModelError(
            "The model 'sasrec' learns from the order in which each user rated movies, but these ratings "
            "have no 'timestamp' column. Add Unix-second timestamps to the ratings log, or choose a model "
            "that ranks sets of ratings, such as --model ease."
        )
    order = np.lexsort((data.movie_idx, data.timestamp, data.user_idx))
    users, movies = data.user_idx[order], data.movie_idx[order]
    bounds = np.searchsorted(users, np.arange(n_users + 1))
    return [movies[bounds[u] : bounds[u + 1]] for u in range(n_users)]


def training_windows(histories: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), both (windows, max_len) int32, left-padded with 0; movie m is m + 1.

    A history of n movies gives windows ending at n, n - max_len, ...: input positions hold
    movies i .. i + max_len - 1 and targets the movies one step later, so every movie after
    the first is a target exactly once."""
    inputs, targets = [], []
    for movies in histories:
        shifted = movies.astype(np.int32) + 1
        for end in range(len(shifted), 1, -max_len):
            window = shifted[max(0, end - max_len - 1) : end]
            pad = max_len - (len(window) - 1)
            inputs.append(np.pad(window[:-1], (pad, 0)))
            targets.append(np.pad(window[1:], (pad, 0)))
    if not inputs:
        raise ModelError(
            "The model 'sasrec' needs at least one user with two or more training ratings; these ratings "
            "have none. Train on a larger ratings log."
        )
    return np.stack(inputs), np.stack(targets)


def split_latest(
    histories: list[np.ndarray], n_last: int, min_left: int = 2
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each history without its ``n_last`` most recent movies, and those movies.

    Users with fewer than ``min_left`` movies left after the cut keep their whole history and
    give nothing to validate on."""
    kept, held = [], []
    for movies in histories:
        cut = n_last if len(movies) - n_last >= min_left else 0
        kept.append(movies[: len(movies) - cut])
        held.append(movies[len(movies) - cut :])
    return kept, held


def latest_windows(histories: list[np.ndarray], users: np.ndarray, max_len: int) -> np.ndarray:
    """The last ``max_len`` movies of each user's history, left-padded: the scoring input."""
    out = np.zeros((len(users), max_len), np.int32)
    for row, u in enumerate(users):
        last = histories[u][-max_len:].astype(np.int32) + 1
        if len(last):
            out[row, max_len - len(last) :] = last
    return out


def held_interactions(histories: list[np.ndarray], like: Interactions) -> Interactions:
    """Per-user movie lists as implicit interactions over ``like``'s vocabulary sizes."""
    users = np.repeat(np.arange(len(histories)), [len(h) for h in histories]).astype(like.user_idx.dtype)
    movies = np.concatenate(histories).astype(like.movie_idx.dtype) if histories else np.zeros(0, np.int32)
    return Interactions(users, movies, np.ones(len(movies), np.float32), like.n_users, like.n_movies)


def sequence_encoder_class() -> type:
    """The Keras layer (registered, so saved models load in safe mode): movie and position
    embeddings, then pre-norm causal self-attention blocks; padded positions are zeroed and
    never attended to."""
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package="recsys")
    class SequenceEncoder(layers.Layer):
        def __init__(
            self, n_movies: int, max_len: int, dim: int, blocks: int, heads: int, dropout: float, seed: int, **kw: Any
        ):
            super().__init__(**kw)
            self.config = {
                "n_movies": n_movies,
                "max_len": max_len,
                "dim": dim,
                "blocks": blocks,
                "heads": heads,
                "dropout": dropout,
                "seed": seed,
            }
            init = keras.initializers.GlorotUniform
            self.movies = layers.Embedding(n_movies + 1, dim, embeddings_initializer=init(seed=seed))
            self.positions = layers.Embedding(max_len, dim, embeddings_initializer=init(seed=seed + 1))
            self.drop = layers.Dropout(dropout, seed=seed + 2)
            self.attention = [
                layers.MultiHeadAttention(
                    heads, dim // heads, dropout=dropout, kernel_initializer=init(seed=seed + 10 + j)
                )
                for j in range(blocks)
            ]
            self.norm_att = [layers.LayerNormalization(epsilon=1e-6) for _ in range(blocks)]
            self.norm_ff = [layers.LayerNormalization(epsilon=1e-6) for _ in range(blocks)]
            self.ff_in = [
                layers.Dense(dim, activation="relu", kernel_initializer=init(seed=seed + 20 + j)) for j in range(blocks)
            ]
            self.ff_out = [layers.Dense(dim, kernel_initializer=init(seed=seed + 30 + j)) for j in range(blocks)]
            self.norm_out = layers.LayerNormalization(epsilon=1e-6)

        def build(self, input_shape: Any) -> None:
            """Builds every sublayer from the sequence shape, so a saved model loads its weights."""
            shape = (input_shape[0], self.config["max_len"], self.config["dim"])
            self.movies.build(input_shape)
            self.positions.build((self.config["max_len"],))
            for layer in [*self.norm_att, *self.norm_ff, *self.ff_in, *self.ff_out, self.norm_out]:
                layer.build(shape)
            for att in self.attention:
                att.build(shape, shape)
            self.built = True

        def call(self, seq: Any, training: bool | None = None) -> Any:
            length = self.config["max_len"]
            valid = ops.cast(ops.not_equal(seq, 0), "float32")
            causal = ops.tril(ops.ones((length, length)))
            # A padded query attends to itself only, so no softmax row is empty.
            mask = ops.maximum(causal[None, :, :] * valid[:, None, :], ops.eye(length)[None, :, :]) > 0
            x = self.movies(seq) * (self.config["dim"] ** 0.5) + self.positions(ops.arange(length))[None, :, :]
            x = self.drop(x, training=training) * valid[:, :, None]
            for att, n_att, n_ff, f_in, f_out in zip(
                self.attention, self.norm_att, self.norm_ff, self.ff_in, self.ff_out, strict=True
            ):
                h = n_att(x)
                x = x + self.drop(att(h, h, attention_mask=mask, training=training), training=training)
                x = x + self.drop(f_out(self.drop(f_in(n_ff(x)), training=training)), training=training)
                x = x * valid[:, :, None]
            return self.norm_out(x)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), **self.config}

    return SequenceEncoder


class SASRec(OutputLayerRanker):
    name = "sasrec"
    predicts_ratings = False
    description = "Keras SASRec: causal self-attention over each user's history in time order, next-movie softmax."

    def _build(self, n_movies: int) -> Any:
        import keras
        from keras import layers

        max_len = int(self.params.get("max_len", MAX_LEN))
        dim = int(self.params.get("dim", 64))
        seq = keras.Input(shape=(max_len,), dtype="int32", name="history")
        encoder = sequence_encoder_class()(
            n_movies,
            max_len,
            dim,
            int(self.params.get("blocks", 2)),
            int(self.params.get("heads", 1)),
            float(self.params.get("dropout", 0.2)),
            self.seed,
            name="encoder",
        )
        hidden = encoder(seq)
        logits = layers.Dense(
            n_movies, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 99)
        )(hidden)
        model = keras.Model(seq, logits, name="sasrec")
        model.compile(
            optimizer=keras.optimizers.Adam(float(self.params.get("learning_rate", 1e-3))),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    def fixed_settings(self) -> dict[str, Any]:
        """The epochs early stopping picked: a refit trains that many without a validation slice."""
        return epoch_settings(self.params, trained_epochs(self.history, "ndcg", mode="max"))

    def fit(self, train: Interactions, validation: Interactions | None = None) -> SASRec:
        max_len = int(self.params.get("max_len", MAX_LEN))
        batch_size = int(self.params.get("batch_size", 128))
        check_dense_size(self.name, batch_size * max_len, train.n_movies, limit=MAX_LOGITS)
        seed_everything(self.seed)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        everything = order_histories(union_interactions(train, validation), train.n_users)
        callbacks = []
        if validation is not None and len(validation):
            # The pipeline's slice is a random 5% of each user's ratings: it says how well a
            # model fills gaps, not what comes next. Put it back and stop on each user's most
            # recent ratings instead, predicted from the history before them.
            histories, held = split_latest(everything, int(self.params.get("validation_last", 1)))
            check_dense_size(self.name, train.n_users, train.n_movies)
            target = held_interactions(held, train)
            seen = held_interactions(histories, train).to_csr()
            k = int(self.params.get("k", 10))
            callbacks.append(validation_callback("ndcg", lambda: self._validation_ndcg(seen, target, k)))
        else:
            histories = everything
        inputs, targets = training_windows(histories, max_len)
        self.net = self._build(train.n_movies)
        self._set_histories(histories)
        # Targets are movie + 1 with 0 for padding: the loss weighs real targets only and the
        # network's classes are the movies themselves.
        weights = (targets > 0).astype(np.float32)
        self.history = fit_keras(
            self.net,
            inputs,
            np.maximum(targets - 1, 0),
            validation=None,
            epochs=int(self.params.get("epochs", 200)),
            batch_size=batch_size,
            patience=int(self.params.get("patience", 10)),
            monitor="ndcg",
            mode="max",
            seed=self.seed,
            extra_callbacks=callbacks,
            sample_weight=weights,
        )
        # Lists read everything known about the user, in time order (from the kept epoch's weights).
        self._set_histories(everything)
        return self

    def _validation_ndcg(self, seen: Any, target: Interactions, k: int) -> float:
        self._cache_movie_vectors()  # the output weights moved since the last epoch
        return validation_ndcg(self.score_users(np.arange(self.n_users)), seen, target, k)

    def _set_histories(self, histories: list[np.ndarray]) -> None:
        import keras

        self._histories = histories
        self._encoder = keras.Model(self.net.input, self.net.get_layer("encoder").output)
        self._cache_movie_vectors()

    def _cache_movie_vectors(self) -> None:
        self._movie_vectors = output_vectors(*self.net.get_layer("logits").get_weights())

    def _user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        max_len = int(self.params.get("max_len", MAX_LEN))
        seqs = latest_windows(self._histories, np.asarray(user_idx), max_len)
        # The state after the most recent movie scores the movie rated next.
        return append_ones(predict_batched(self._encoder, seqs, 1024)[:, -1, :])

    def _save_state(self, directory: Path) -> None:
        save_keras(self.net, directory)
        lengths = np.array([len(h) for h in self._histories], np.int64)
        flat = np.concatenate(self._histories) if len(self._histories) else np.zeros(0, np.int64)
        np.savez(directory / "histories.npz", lengths=lengths, movies=flat.astype(np.int32))

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        sequence_encoder_class()  # registers the layer before the saved model names it
        self.net = load_keras(directory)
        with np.load(directory / "histories.npz") as saved:
            bounds = np.concatenate([[0], np.cumsum(saved["lengths"])])
            movies = saved["movies"]
        self._set_histories([movies[bounds[u] : bounds[u + 1]] for u in range(len(bounds) - 1)])
