"""Wide & deep autoencoder: a learned movie-to-movie layer beside a Mult-DAE-style network.

Why. On small releases the full-rank movie-to-movie model (EASE) ranks best and a bottlenecked
autoencoder (Mult-DAE) ranks below it: a 600-unit code cannot hold every pairwise association.
This network keeps both paths and learns them together in Keras. The user's binary row,
corrupted with dropout, goes through a *wide* path (one movies x movies matrix whose diagonal is
held at zero, so a movie never predicts itself: EASE's B, learned by Adam with L2
``params.wide_l2``) and a *deep* path (L2 normalisation of the corrupted row, then Mult-DAE's
mirrored tanh layers ``params.hidden`` and a linear layer over the catalogue; Mult-DAE normalises
before dropout). Their sum is fitted to the clean row with squared error, EASE's loss; the epoch
is chosen by validation NDCG@10. ``hidden: []`` trains the wide path alone (the ablation);
``wide_dropout`` gives the wide path its own corruption rate (default: one mask for both, which
validation preferred). Measurements: ``benchmarks/results/quality_candidates.md``, tenth round.

Scores ``x W + h(x) V + b`` are the dot product of ``[x, h(x), 1]`` with ``[W[:, i], V[:, i], b_i]``,
so ``factors()`` keeps the fast scoring path. The wide matrix holds movies^2 weights (three copies
while Adam trains), so catalogues past the dense-size limit (~15,800 movies: ml-20m, ml-25m) are
refused before training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.models.interaction_utils import check_dense_size
from recsys_core.models.keras_utils import predict_batched
from recsys_core.models.mult_dae import MultDAE, mirrored_logits
from recsys_core.models.output_scores import append_ones, output_vectors

WEIGHTS_FILE = "weights.npz"
# The settings validation chose on ua (quality_candidates.md, tenth round); params override them.
DEFAULTS: dict[str, Any] = {
    "hidden": [600],
    "dropout": 0.5,
    "wide_l2": 0.3,
    "learning_rate": 3e-4,
    "batch_size": 256,
    "patience": 20,
}


def check_params(model: str, params: dict[str, Any]) -> None:
    """Refuse settings Keras would only reject mid-build, naming the option."""
    for key in ("dropout", "wide_dropout"):
        if key in params and not 0.0 <= float(params[key]) < 1.0:
            raise ModelError(f"{model}: params.{key} is a dropout rate in [0, 1), got {params[key]}.")
    if float(params["wide_l2"]) < 0:
        raise ModelError(f"{model}: params.wide_l2 must be >= 0 (0 turns the L2 penalty off), got {params['wide_l2']}.")
    if any(int(h) < 1 for h in params["hidden"]):
        raise ModelError(
            f"{model}: params.hidden lists layer widths >= 1 (or [] for the wide path alone), got {params['hidden']}."
        )


def squared_error(y_true: Any, y_pred: Any) -> Any:
    """Sum over the catalogue of (x_i - score_i)^2 per user: EASE's objective, per row."""
    from keras import ops

    return ops.sum(ops.square(y_true - y_pred), axis=-1)


def zero_diagonal_layer(n_movies: int, l2: float, name: str) -> Any:
    """A bias-free movies x movies layer that leaves out its diagonal: ``x K - x * diag(K)``.

    Subtracting the diagonal's term (not multiplying K by a mask) needs no second movies^2
    tensor. The output never depends on the diagonal. Its gradient from the loss is zero in exact
    arithmetic (the two terms cancel), but in floating point the two sums can differ in the last
    bits, and Adam (which divides each step by the gradient's own size) turns that residue into
    small moves: the diagonal may drift from its initial 0 (by up to 0.003 in the unit tests, on
    some CPUs). That changes no score; the published movie vectors zero it."""
    import keras
    from keras import layers, ops

    class ZeroDiagonalDense(layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.kernel = self.add_weight(
                shape=(n_movies, n_movies),
                initializer="zeros",
                regularizer=keras.regularizers.L2(l2) if l2 else None,
                name="kernel",
            )

        def call(self, x: Any) -> Any:
            return ops.matmul(x, self.kernel) - x * ops.diagonal(self.kernel)

    return ZeroDiagonalDense(name=name)


class WideDAE(MultDAE):
    name = "wide_dae"
    description = (
        "Keras wide & deep autoencoder: a learned zero-diagonal movie-to-movie layer plus Mult-DAE's "
        "network, squared error, epoch chosen on validation NDCG."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for key, value in DEFAULTS.items():
            self.params.setdefault(key, value)
        check_params(self.name, self.params)

    def _build(self, n_movies: int) -> Any:
        import keras
        from keras import layers

        check_dense_size(self.name, n_movies, n_movies)  # the wide layer is movies x movies
        hidden = [int(h) for h in self.params["hidden"]]
        inp = keras.Input(shape=(n_movies,), name="rated")
        rate = float(self.params["dropout"])
        dropped = layers.Dropout(rate, seed=self.seed)(inp)
        wide_rate = float(self.params.get("wide_dropout", rate))
        wide_in = dropped if wide_rate == rate else layers.Dropout(wide_rate, seed=self.seed + 7)(inp)
        out = zero_diagonal_layer(n_movies, float(self.params["wide_l2"]), "wide")(wide_in)
        if hidden:
            normalised = layers.UnitNormalization(name="normalise")(dropped)
            deep = mirrored_logits(normalised, hidden, n_movies, float(self.params.get("l2", 1e-5)), self.seed)
            out = layers.Add(name="scores")([out, deep])
        model = keras.Model(inp, out, name="wide_dae")
        model.compile(optimizer=keras.optimizers.Adam(float(self.params["learning_rate"])), loss=squared_error)
        return model

    def _cache_factors(self) -> None:
        """Movie vectors ``[W[:, i], V[:, i], b_i]``; users are encoded by ``_user_vectors``."""
        import keras

        w = np.array(self.net.get_layer("wide").kernel.numpy(), np.float32)
        np.fill_diagonal(w, 0.0)  # the layer leaves it out; rounding may have moved it from 0
        if self.params["hidden"]:
            deep = self.net.get_layer("logits")
            self._encoder = keras.Model(self.net.input, deep.input)
            self._movie_vectors = np.hstack([w.T, output_vectors(*deep.get_weights())]).astype(np.float32)
        else:
            self._encoder = None
            self._movie_vectors = np.ascontiguousarray(w.T)

    def _user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        rows = self._rows[np.asarray(user_idx)].toarray().astype(np.float32)
        if self._encoder is None:
            return rows
        return np.hstack([rows, append_ones(predict_batched(self._encoder, rows, 4096))]).astype(np.float32)

    def _save_state(self, directory: Path) -> None:
        # Weights only (no optimizer state): the network is rebuilt from params on load, so no custom
        # Keras class is deserialised.
        weights = self.net.get_weights()
        np.savez(Path(directory) / WEIGHTS_FILE, **{f"w{i}": w for i, w in enumerate(weights)})
        sp.save_npz(Path(directory) / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.net = self._build(self.n_movies)
        with np.load(Path(directory) / WEIGHTS_FILE, allow_pickle=False) as saved:
            self.net.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
        self._rows = sp.load_npz(Path(directory) / "rows.npz").tocsr()
        self._cache_factors()
