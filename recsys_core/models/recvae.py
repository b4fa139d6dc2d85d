"""RecVAE (Shenbin et al. 2020): a variational autoencoder over users' sets of rated movies.

Implicit signal only, like Mult-DAE, with the three changes that make RecVAE the strongest of
the VAE family on MovieLens:

- a deeper encoder: five dense layers with swish activations, layer normalisation and dense
  residual connections (each layer adds every earlier layer's output), then a Gaussian head;
- a composite prior for the KL term: a mixture of the standard normal, the posterior of the
  encoder as it was one epoch earlier (which keeps the encoder from forgetting), and a wide
  normal; the KL weight is ``gamma`` times the number of movies the user rated;
- alternating updates: each epoch trains the encoder for ``enc_epochs`` passes (input dropout
  on), copies it into the prior, then trains the decoder for ``dec_epochs`` passes without
  input dropout.

The decoder is one linear layer with a softmax over the whole catalogue (multinomial
likelihood). A user is scored with the mean of their latent code, so the score is a dot
product: ``factors()`` is (mu | 1, [W | b]). Training runs in TensorFlow; inference is a
numpy forward pass of the saved weights (no TensorFlow needed to score a loaded model).
The epoch is chosen on the validation slice (NDCG@k, best weights restored).

Defaults (latent 100, gamma 0.01, batch 100, Adam 1e-3, patience 10) were chosen on the
validation slice of ml-100k ``ua`` (seed 0): validation NDCG@10 0.1955 against 0.1922 for the
paper's ML-20M settings (latent 200, gamma 0.005, batch 500, 5e-4) and for batch 100 / 1e-3
alone. See benchmarks/results/quality.md for the test figures.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.models.interaction_utils import check_dense_size, union_interactions, validation_ndcg
from recsys_core.models.keras_utils import seed_everything
from recsys_core.models.output_scores import RowScoredRanker, append_ones, output_vectors
from recsys_core.prep.interactions import Interactions

N_LAYERS = 5
LN_EPS = 0.1  # the reference implementation's layer-norm epsilon
MIXTURE = (3 / 20, 15 / 20, 2 / 20)  # standard normal, previous posterior, wide normal
WIDE_LOGVAR = 10.0
LOG_2PI = math.log(2 * math.pi)


def _swish(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _layer_norm(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * scale + shift


def encode_numpy(weights: dict[str, np.ndarray], rows: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Posterior means of binary user rows (inference: no dropout), float32."""
    out = []
    for start in range(0, max(len(rows), 1), batch):
        x = np.asarray(rows[start : start + batch], np.float32)
        x = x / np.maximum(np.sqrt((x * x).sum(axis=1, keepdims=True)), 1e-12)
        total, h = None, x
        for j in range(N_LAYERS):
            h = h @ weights[f"w{j}"] + weights[f"b{j}"]
            if total is not None:
                h = h + total
            h = _layer_norm(_swish(h), weights[f"ln_s{j}"], weights[f"ln_b{j}"])
            total = h if total is None else total + h
        out.append(h @ weights["w_mu"] + weights["b_mu"])
    return np.vstack(out).astype(np.float32) if out else np.zeros((0, weights["w_mu"].shape[1]), np.float32)


class RecVAE(RowScoredRanker):
    name = "recvae"
    predicts_ratings = False
    description = "TensorFlow RecVAE: VAE on implicit rows, composite prior, alternating encoder/decoder updates."

    def _init_weights(self, n_movies: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        hidden, latent = int(self.params.get("hidden", 600)), int(self.params.get("latent", 100))

        def glorot(fan_in: int, fan_out: int) -> np.ndarray:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)

        w: dict[str, np.ndarray] = {}
        for j in range(N_LAYERS):
            w[f"w{j}"] = glorot(n_movies if j == 0 else hidden, hidden)
            w[f"b{j}"] = np.zeros(hidden, np.float32)
            w[f"ln_s{j}"] = np.ones(hidden, np.float32)
            w[f"ln_b{j}"] = np.zeros(hidden, np.float32)
        w["w_mu"], w["b_mu"] = glorot(hidden, latent), np.zeros(latent, np.float32)
        w["w_lv"], w["b_lv"] = glorot(hidden, latent), np.zeros(latent, np.float32)
        w["w_dec"], w["b_dec"] = glorot(latent, n_movies), np.zeros(n_movies, np.float32)
        return w

    def fit(self, train: Interactions, validation: Interactions | None = None) -> RecVAE:
        import tensorflow as tf

        check_dense_size(self.name, train.n_users, train.n_movies)
        seed_everything(self.seed)
        self.n_users, self.n_movies = train.n_users, train.n_movies
        seen = train.to_csr()
        x_all = seen.toarray().astype(np.float32)
        gamma = float(self.params.get("gamma", 0.01))
        dropout = float(self.params.get("dropout", 0.5))
        batch = int(self.params.get("batch_size", 100))
        lr = float(self.params.get("learning_rate", 1e-3))
        epochs, patience = int(self.params.get("epochs", 200)), int(self.params.get("patience", 10))
        enc_epochs, dec_epochs = int(self.params.get("enc_epochs", 3)), int(self.params.get("dec_epochs", 1))
        k = int(self.params.get("k", 10))

        init = self._init_weights(train.n_movies)
        var = {name: tf.Variable(value, name=name) for name, value in init.items()}
        old = {name: tf.Variable(value, trainable=False) for name, value in init.items() if not name.endswith("dec")}
        enc_vars = [v for n, v in var.items() if not n.endswith("dec")]
        dec_vars = [var["w_dec"], var["b_dec"]]
        opt_enc = tf.keras.optimizers.Adam(lr)
        opt_dec = tf.keras.optimizers.Adam(lr)
        gen = tf.random.Generator.from_seed(self.seed)

        def encode(params: dict[str, Any], x: Any, rate: float) -> tuple[Any, Any]:
            x = tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)
            if rate > 0:
                keep = tf.cast(gen.uniform(tf.shape(x)) >= rate, x.dtype)
                x = x * keep / (1.0 - rate)
            total, h = None, x
            for j in range(N_LAYERS):
                h = tf.matmul(h, params[f"w{j}"]) + params[f"b{j}"]
                if total is not None:
                    h = h + total
                h = tf.nn.swish(h)
                mean, variance = tf.nn.moments(h, axes=[-1], keepdims=True)
                h = (h - mean) * tf.math.rsqrt(variance + LN_EPS) * params[f"ln_s{j}"] + params[f"ln_b{j}"]
                total = h if total is None else total + h
            return tf.matmul(h, params["w_mu"]) + params["b_mu"], tf.matmul(h, params["w_lv"]) + params["b_lv"]

        def log_norm(z: Any, mu: Any, logvar: Any) -> Any:
            return -0.5 * (logvar + LOG_2PI + tf.square(z - mu) / tf.exp(logvar))

        def loss_fn(x: Any, rate: float, with_kl: bool) -> Any:
            mu, logvar = encode(var, x, rate)
            z = mu + gen.normal(tf.shape(mu)) * tf.exp(0.5 * logvar)
            logits = tf.matmul(z, var["w_dec"]) + var["b_dec"]
            mll = tf.reduce_sum(tf.nn.log_softmax(logits, axis=-1) * x, axis=-1)
            if not with_kl:
                return -tf.reduce_mean(mll)
            old_mu, old_logvar = encode(old, x, 0.0)
            prior = tf.reduce_logsumexp(
                tf.stack(
                    [
                        log_norm(z, 0.0, tf.zeros_like(z)) + math.log(MIXTURE[0]),
                        log_norm(z, old_mu, old_logvar) + math.log(MIXTURE[1]),
                        log_norm(z, 0.0, tf.fill(tf.shape(z), WIDE_LOGVAR)) + math.log(MIXTURE[2]),
                    ],
                    axis=-1,
                ),
                axis=-1,
            )
            kl_weight = gamma * tf.reduce_sum(x, axis=-1)
            kld = tf.reduce_sum(log_norm(z, mu, logvar) - prior, axis=-1) * kl_weight
            return -tf.reduce_mean(mll - kld)

        @tf.function(reduce_retracing=True)
        def enc_step(x: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = loss_fn(x, dropout, True)
            opt_enc.apply_gradients(zip(tape.gradient(loss, enc_vars), enc_vars, strict=True))
            return loss

        @tf.function(reduce_retracing=True)
        def dec_step(x: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = loss_fn(x, 0.0, False)
            opt_dec.apply_gradients(zip(tape.gradient(loss, dec_vars), dec_vars, strict=True))
            return loss

        rng = np.random.default_rng(self.seed)
        users = np.flatnonzero(x_all.sum(axis=1) > 0)

        def run(step: Any, passes: int) -> float:
            losses = []
            for _ in range(passes):
                order = rng.permutation(users)
                for start in range(0, len(order), batch):
                    losses.append(float(step(tf.constant(x_all[np.sort(order[start : start + batch])]))))
            return float(np.mean(losses)) if losses else 0.0

        self.history = {"loss": [], "val_ndcg": []}
        best, best_epoch, has_val = None, -1, validation is not None and len(validation) > 0
        for epoch in range(epochs):
            run(enc_step, enc_epochs)
            for name, v in old.items():
                v.assign(var[name])
            self.history["loss"].append(run(dec_step, dec_epochs))
            if not has_val:
                continue
            weights = {n: v.numpy() for n, v in var.items()}
            ndcg = validation_ndcg(self._scores(weights, x_all), seen, validation, k)
            self.history["val_ndcg"].append(ndcg)
            if best is None or ndcg > max(self.history["val_ndcg"][:-1]):
                best, best_epoch = weights, epoch
            elif epoch - best_epoch >= patience:
                break
        self.weights = best if best is not None else {n: v.numpy() for n, v in var.items()}
        self.history["best_epoch"] = [float(best_epoch)]
        # Score users from everything known about them (validation only chose the epoch).
        self.set_scoring_rows(union_interactions(train, validation))
        self._cache()
        return self

    @staticmethod
    def _scores(weights: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        return encode_numpy(weights, rows) @ weights["w_dec"] + weights["b_dec"]

    def _cache(self) -> None:
        self._movie_vectors = output_vectors(self.weights["w_dec"], self.weights["b_dec"])

    def _user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        rows = self._rows[np.asarray(user_idx)].toarray().astype(np.float32)
        return append_ones(encode_numpy(self.weights, rows))

    def validation_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Scores of the training rows from weights trained without the validation slice."""
        return self._scores(self.weights, rows.toarray()).astype(np.float32)

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "weights.npz", **self.weights)
        sp.save_npz(directory / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        with np.load(directory / "weights.npz", allow_pickle=False) as data:
            self.weights = {name: data[name] for name in data.files}
        self._rows = sp.load_npz(directory / "rows.npz").tocsr()
        self._cache()
