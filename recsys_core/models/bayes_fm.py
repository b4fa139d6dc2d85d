"""Bayesian factorization machine (Gibbs sampling, myFM) with SVD++-style implicit features.

Each rating (u, i) is described by four groups of features: the user's one-hot, the movies
the user rated (normalised by 1/sqrt(count), as SVD++), the movie's one-hot, and the users who
rated the movie ("SVD++ flipped", Rendle 2013 / myFM's ml-100k example). Gibbs sampling
integrates the regularisation and the prior means (one hyper-prior per group), so there is no
lambda, learning rate or epoch count to choose on the validation slice: the slice is not read,
which keeps this model's validation predictions honest for the blend's weights. The
prediction is the posterior mean over the kept samples.

Per sample the FM's score splits into a user part, a movie part and one dot product (the
pairs inside a group fold into the side's bias), so the posterior mean is
``w0 + a_u + b_i + sum_s p_u^s . q_i^s / S``. The S kept samples' vectors are stacked and
the exact mean interaction is cut to its best rank-``factor_rank`` form (QR of both stacks,
SVD of the small core), so the model saves a few MB, scores through ``factors()`` like any dot
model, and never keeps the sampler's raw samples (which would take GBs at ml-1m size).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.prep.interactions import Interactions

log = logging.getLogger(__name__)

# MyFMRegressor's defaults (myfm 0.4.0): the hyper-priors' parameters and the initial spread.
PRIORS: dict[str, Any] = {
    "alpha_0": 1.0,
    "beta_0": 1.0,
    "gamma_0": 1.0,
    "mu_0": 0.0,
    "reg_0": 1.0,
    "fit_w0": True,
    "fit_linear": True,
}
INIT_STDEV = 0.1
DEFAULTS: dict[str, Any] = {"rank": 10, "n_iter": 600, "burn_in": 0.2, "samples": 300, "factor_rank": 256}


def side_features(rated: sp.csr_matrix) -> sp.csr_matrix:
    """[one-hot | rated columns / sqrt(row count)]: a row's id and its normalised history."""
    counts = np.asarray(rated.sum(axis=1)).ravel()
    history = sp.diags(1.0 / np.sqrt(np.maximum(counts, 1.0))) @ rated
    return sp.hstack([sp.identity(rated.shape[0], format="csr"), history], format="csr", dtype=np.float64)


def side_parts(
    x: sp.csr_matrix, x_squared: sp.csr_matrix, w: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One side's bias (linear terms plus the pairs inside the side) and its summed vector;
    ``x_squared`` is ``x`` squared elementwise, computed once per fit, not per sample."""
    p = np.asarray(x @ v)
    inner = 0.5 * ((p**2).sum(axis=1) - np.asarray(x_squared @ (v**2).sum(axis=1)).ravel())
    return np.asarray(x @ w).ravel() + inner, p


def relation_features(train: Interactions) -> tuple[sp.csr_matrix, sp.csr_matrix, list[int]]:
    """The user block's and the movie block's feature rows, and each feature's group (one
    hyper-prior per group, in myFM's column order: the user block, then the movie block)."""
    rated = train.to_csr()
    rated.data[:] = 1.0
    groups = [0] * train.n_users + [1] * train.n_movies + [2] * train.n_movies + [3] * train.n_users
    return side_features(rated), side_features(rated.T.tocsr()), groups


def run_sampler(
    rank: int, blocks: list[Any], y: np.ndarray, groups: list[int], n_iter: int, seed: int, callback: Any
) -> None:
    """myFM's Gibbs regression sampler with its default priors, called at its core.

    ``MyFMRegressor.fit`` wraps exactly this call (myfm 0.4.0, pinned) in a tqdm bar written to
    stderr that cannot be turned off; going to the core keeps the nightly's output clean without
    swapping ``sys.stderr`` for the whole process. ``tests/core/models/test_bayes_fm.py``
    checks the result against ``fit``.
    """
    from myfm._myfm import ConfigBuilder, TaskType, create_train_fm

    config = ConfigBuilder()
    for key, value in PRIORS.items():
        getattr(config, f"set_{key}")(value)
    config.set_group_index(groups)
    config.set_n_iter(n_iter)
    config.set_n_kept_samples(1)  # the callback keeps what it needs; myFM's own samples take GBs
    config.set_task_type(TaskType.REGRESSION)
    no_columns = sp.csr_matrix((len(y), 0), dtype=np.float64)
    create_train_fm(rank, INIT_STDEV, no_columns, blocks, y, seed, config.build(), callback)


def mean_low_rank(p: np.ndarray, q: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(P', Q') of ``rank`` columns with P' Q'^T the best rank-``rank`` form of p q^T."""
    qp, rp = np.linalg.qr(p)
    qq, rq = np.linalg.qr(q)
    a, s, bt = np.linalg.svd(rp @ rq.T, full_matrices=False)
    r = min(rank, len(s))
    root = np.sqrt(s[:r])
    return (qp @ a[:, :r]) * root, (qq @ bt[:r].T) * root


class BayesFM(Recommender):
    name = "bayes_fm"
    needs_tensorflow = False
    description = "Bayesian FM by Gibbs sampling (myFM) on user/movie ids and SVD++-style implicit histories."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = {**DEFAULTS, **{k: v for k, v in self.params.items() if k in DEFAULTS}}
        self._check_settings()
        self.user_vectors = np.zeros((0, 0), np.float32)
        self.movie_vectors = np.zeros((0, 0), np.float32)
        self.kept_samples = 0

    def _check_settings(self) -> None:
        s = self.settings
        for key in ("rank", "n_iter", "samples", "factor_rank"):
            if not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < 1:
                raise ModelError(f"bayes_fm: params.{key} must be a whole number >= 1, got {s[key]!r}.")
        burn_in = s["burn_in"]
        if not isinstance(burn_in, int | float) or isinstance(burn_in, bool) or not 0 <= burn_in < 1:
            raise ModelError(f"bayes_fm: params.burn_in must be a number in [0, 1), got {burn_in!r}.")

    def fixed_settings(self) -> dict[str, Any]:
        """Nothing is chosen on the validation slice: the same parameters refit alike."""
        return dict(self.params)

    def fit(self, train: Interactions, validation: Interactions | None = None) -> BayesFM:
        import myfm

        s = self.settings
        self.n_users, self.n_movies = train.n_users, train.n_movies
        users, movies, groups = relation_features(train)
        users_sq, movies_sq = users.multiply(users).tocsr(), movies.multiply(movies).tocsr()
        n_user_cols = users.shape[1]
        burn = int(s["n_iter"] * float(s["burn_in"]))
        # Evenly spaced after burn-in, always ending on the last iteration.
        wanted = min(s["samples"], s["n_iter"] - burn)
        keep = set(np.unique(np.round(np.linspace(s["n_iter"] - 1, burn, wanted)).astype(int)).tolist())
        kept: dict[str, list[Any]] = {"w0": [], "a": [], "b": [], "p": [], "q": []}

        def collect(i: int, fm: Any, hyper: Any, history: Any) -> bool:
            if i in keep:
                w, v = np.asarray(fm.w), np.asarray(fm.V)
                a, p = side_parts(users, users_sq, w[:n_user_cols], v[:n_user_cols])
                b, q = side_parts(movies, movies_sq, w[n_user_cols:], v[n_user_cols:])
                for key, value in (("w0", fm.w0), ("a", a), ("b", b), ("p", p), ("q", q)):
                    kept[key].append(value)
            return False  # never stop early

        run_sampler(
            s["rank"],
            [myfm.RelationBlock(train.user_idx, users), myfm.RelationBlock(train.movie_idx, movies)],
            train.rating.astype(np.float64),
            groups,
            s["n_iter"],
            self.seed % 2**31,  # the sampler's seed is a 32-bit int; --seed is not bounded
            collect,
        )
        n = len(kept["p"])
        self.kept_samples = n
        # Stack, then drop the per-sample lists and scale in place: at ml-1m size the stacks are
        # ~0.15 GB each, and the QR copies its input once more.
        p_stack, q_stack = np.hstack(kept.pop("p")), np.hstack(kept.pop("q"))
        p_stack *= 1.0 / np.sqrt(n)
        q_stack *= 1.0 / np.sqrt(n)
        p, q = mean_low_rank(p_stack, q_stack, s["factor_rank"])
        del p_stack, q_stack
        user_bias = float(np.mean(kept["w0"])) + np.mean(kept["a"], axis=0)
        movie_bias = np.mean(kept["b"], axis=0)
        ones_u, ones_m = np.ones((self.n_users, 1)), np.ones((self.n_movies, 1))
        self.user_vectors = np.hstack([p, user_bias[:, None], ones_u]).astype(np.float32)
        self.movie_vectors = np.hstack([q, ones_m, movie_bias[:, None]]).astype(np.float32)
        log.info("bayes_fm: %d Gibbs iterations, mean of %d samples after %d burn-in", s["n_iter"], n, burn)
        return self

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.user_vectors, self.movie_vectors

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        u, m = self.user_vectors[np.asarray(user_idx)], self.movie_vectors[np.asarray(movie_idx)]
        return self.clip(np.einsum("ij,ij->i", u, m))

    def _json_state(self) -> dict[str, Any]:
        """What the sampler actually ran (defaults included) and how many samples were averaged."""
        return {"settings": self.settings, "kept_samples": self.kept_samples}

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "bayes_fm.npz", users=self.user_vectors, movies=self.movie_vectors)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.kept_samples = int(state.get("kept_samples", 0))
        with np.load(directory / "bayes_fm.npz") as data:
            self.user_vectors, self.movie_vectors = data["users"], data["movies"]
