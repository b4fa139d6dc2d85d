"""Time-aware EASE: per-user standardised (decayed) EASE scores + beta x recent popularity.

Why. The nightly lists are judged on what users rate in the *next* week (``benchmarks/replay``,
``nights.online``). On ml-100k's last 20 weeks plain EASE beats popularity by ~1.2x there, while
"most rated in the last 1-2 weeks" alone reaches ~1.5x: what is watched next week follows what
is being watched now, which a model fitted on a random slice of all time does not see. This
ranker adds recency and lets its own training data decide how much:

    score(u, m) = z_u(rows_u @ B)[m] + beta * recent(m)

- ``B`` is EASE (``models.ease.solve_ease``) on rows whose entries are exp(-age / tau), age =
  ``now`` - timestamp in days (tau ``None``: binary rows, plain EASE). lambda is multiplied by
  the mean squared weight, so a value regularises decayed and binary Gram matrices alike.
  ``rows_u`` is the user's decayed row (``decay_rows``, default) or binary row.
- ``z_u`` standardises each user's scores over the movies they have not rated (mean 0, sd 1),
  so beta means the same thing for every user whatever the scale of their EASE scores.
- ``recent(m)`` = ratings of m in [now - D days, now) / the largest such count (0..1).

(tau, lambda, D, beta) are chosen per fit by a **rolling temporal validation inside the
training ratings**: for each of the ``validation_weeks`` windows [now - w*7d, now - (w-1)*7d),
w = 1.., the model is fitted on the ratings before the window's start only (decay and recent
counts measured from that start), every user known then gets a list, and the list is scored
with NDCG@k against the movies the user rated in the window and had not rated before (the
online metrics' definition of relevant). Windows with fewer than ``min_window_users`` such
users are skipped (with none left: the first value of each grid, the middle lambda; by default
plain EASE). The configuration with the best mean NDCG over windows wins (ties: the
first in grid order, i.e. no decay, small lambda, short D, small beta), then the model is
refitted on every rating before ``now`` with decay and recent counts measured from ``now``.

``choose_on="validation"`` replaces the weekly windows by the pipeline's validation slice (one
window: a fit on ``train`` at ``now`` judged on that slice), for when the model will be judged on
a random hold-out: validation should be cut like the test. On ml-100k ``ua`` it then picks no
decay and beta 0-0.25 and ranks like EASE (NDCG@10 0.3172 over 3 seeds against EASE's 0.3177,
with EASE's five lambdas), where the weekly windows pick tau 60 days and beta 2 (0.257).

``now`` is the newest training timestamp + 1 s, or the ``now`` parameter (Unix seconds) when
given, never the wall clock: the model is a function of its ratings, so a backfilled night
gets the model it would have had. Ratings at or after an explicit ``now`` are left out.

Which ratings. ``fit`` receives the pipeline's split: ``train`` and a 5% per-user *random*
``validation`` slice. That slice says nothing about next week and holding it out would remove
5% of the most recent ratings from the recent counts, so with the weekly windows (the default)
this model uses train + validation for its windows and for the final fit. With
``choose_on="validation"`` the slice is the one window and the final fit uses both.

Without timestamps (``Interactions.timestamp`` is None, e.g. a frame without the column) the
model falls back to plain EASE: binary rows, beta 0, lambda chosen on the random validation
slice as ``ease`` does (the middle of the grid without one); ``history['fallback']`` says so
and a warning is logged.

``validation_scores(rows)`` (for ``rank_blend``) scores the given rows with the chosen
settings refitted on ``train`` alone (no validation rows), computed on first call; available
right after ``fit`` only (not saved).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.evaluation.metrics import ranking_metrics
from recsys_core.models.base import Recommender
from recsys_core.models.ease import MAX_MOVIES, gram_matrix, solve_ease
from recsys_core.models.interaction_utils import select_rows, union_interactions, validation_ndcg
from recsys_core.prep.interactions import Interactions

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
DEFAULT_LAMBDAS = (200.0, 800.0)  # each (window, tau, lambda) costs one inverse: kept short
DEFAULT_TAUS: tuple[float | None, ...] = (None, 60.0, 20.0)  # days; None = no decay
DEFAULT_DAYS = (7.0, 14.0, 28.0)
# betas: a first grid stopped at 16, which the windows chose on a two-night trial run (1998-04-09); with
# z-scored EASE, 64 is nearly recent popularity with EASE breaking its ties.
DEFAULT_BETAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
VALIDATION_WEEKS = 3
WINDOW_DAYS = 7.0
MIN_WINDOW_USERS = 5
CHOOSE_ON = "windows"  # or "validation": the pipeline's hold-out slice


# --- pieces (pure) ------------------------------------------------------------------------------


def decay_weights(timestamps: np.ndarray, now: int, tau_days: float | None) -> np.ndarray:
    """exp(-age / tau), age = (now - timestamp) in days; ones when tau is None."""
    ts = np.asarray(timestamps, np.int64)
    if tau_days is None:
        return np.ones(len(ts), np.float64)
    age = (now - ts).astype(np.float64) / DAY_SECONDS
    return np.exp(-age / float(tau_days))


def recent_prior(movie_idx: np.ndarray, timestamps: np.ndarray, n_movies: int, now: int, days: float) -> np.ndarray:
    """Ratings per movie in [now - days, now) over the largest such count (all 0 if none)."""
    ts = np.asarray(timestamps, np.int64)
    keep = (ts < now) & (ts >= now - int(round(days * DAY_SECONDS)))
    counts = np.bincount(np.asarray(movie_idx)[keep], minlength=n_movies).astype(np.float64)
    top = counts.max() if len(counts) else 0.0
    return (counts / top if top > 0 else counts).astype(np.float32)


def standardise_unseen(scores: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Each row minus its mean, over its sd, both over the row's unseen movies (sd 0: all 0)."""
    scores = np.asarray(scores, np.float64)
    mask = seen.tocsr().astype(bool).toarray()
    unseen = ~mask
    n = np.maximum(unseen.sum(axis=1, keepdims=True), 1)
    mean = np.where(unseen, scores, 0.0).sum(axis=1, keepdims=True) / n
    var = np.where(unseen, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n
    sd = np.sqrt(var)
    return np.where(sd > 0, (scores - mean) / np.where(sd > 0, sd, 1.0), 0.0)


def weighted_rows(
    user_idx: np.ndarray, movie_idx: np.ndarray, weights: np.ndarray, n_users: int, n_movies: int
) -> sp.csr_matrix:
    rows = sp.csr_matrix((weights, (user_idx, movie_idx)), shape=(n_users, n_movies))
    rows.sum_duplicates()
    return rows


def ndcg_of(scores: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix, k: int) -> float:
    """NDCG@k of score rows against relevant rows (same row order), seen movies excluded."""
    block = np.array(scores, np.float64, copy=True)
    block[seen.tocsr().astype(bool).toarray()] = -np.inf
    k = min(k, block.shape[1])
    top = np.argpartition(-block, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return ranking_metrics(top, np.arange(block.shape[0]), relevant, k)["ndcg_at_k"]


# --- the model ----------------------------------------------------------------------------------


class RecencyEASE(Recommender):
    name = "recency_ease"
    predicts_ratings = False
    needs_tensorflow = False
    description = (
        "Standardised (time-decayed) EASE + beta x recent popularity; tau, lambda, recent days and beta "
        "chosen on the last weeks of its own training ratings (or on the hold-out: params.choose_on)."
    )

    def fixed_settings(self) -> dict[str, Any] | None:
        """The chosen tau, lambda, recent days and beta: a refit solves once, choosing nothing."""
        if not hasattr(self, "tau"):
            return None  # not fitted
        one = {"taus": [self.tau], "lambdas": [self.lam], "days": [self.days], "betas": [self.beta]}
        return {**self.params, **one}

    def _grid(self) -> list[tuple[float | None, float]]:
        taus = [None if t is None else float(t) for t in self.params.get("taus", DEFAULT_TAUS)]
        lambdas = [float(v) for v in self.params.get("lambdas", DEFAULT_LAMBDAS)]
        return [(tau, lam) for tau in taus for lam in lambdas]

    def fit(self, train: Interactions, validation: Interactions | None = None) -> RecencyEASE:
        if self.params.get("choose_on", CHOOSE_ON) not in ("windows", "validation"):
            raise ModelError(
                f"recency_ease: params.choose_on is {self.params['choose_on']!r}; use 'windows' (the last weeks "
                "of the training ratings, for next-week lists) or 'validation' (the pipeline's hold-out slice)."
            )
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self._train = train  # for validation_scores only; not saved
        self._train_scorer: tuple[np.ndarray, sp.csr_matrix, np.ndarray] | None = None
        data = union_interactions(train, validation)
        counts = np.bincount(data.movie_idx, minlength=self.n_movies)
        limit = int(self.params.get("max_movies", MAX_MOVIES))
        self._active = np.sort(np.argsort(-counts, kind="stable")[:limit]).astype(np.int32)
        self.history = {}
        if data.timestamp is None:
            self._fit_without_timestamps(train, validation)
            return self
        ts = np.asarray(data.timestamp, np.int64)
        now = int(self.params["now"]) if self.params.get("now") is not None else int(ts.max()) + 1
        keep = ts < now
        self.now = now
        self._data = select_rows(data, keep)
        from_validation = np.zeros(len(data), bool)
        from_validation[len(train) :] = True  # union_interactions puts the validation rows last
        self._from_validation = from_validation[keep]
        self._choose()
        self._refit()
        return self

    # -- the temporal validation ---------------------------------------------------------------

    def windows(self) -> list[dict[str, Any]]:
        """The validation windows: start, end (seconds) and the row masks of history and window.

        ``choose_on="validation"``: one window, the pipeline's validation slice judged against a
        fit on ``train`` at ``now`` (how a random hold-out is mirrored); else the weekly windows.
        """
        d = self._data
        if self.params.get("choose_on", CHOOSE_ON) == "validation":
            if not self._from_validation.any():
                return []
            inside = self._from_validation
            return [{"start": self.now, "end": self.now, "history": ~inside, "inside": inside}]
        ts = d.timestamp
        width = int(round(float(self.params.get("window_days", WINDOW_DAYS)) * DAY_SECONDS))
        out = []
        for w in range(1, int(self.params.get("validation_weeks", VALIDATION_WEEKS)) + 1):
            start, end = self.now - w * width, self.now - (w - 1) * width
            history = ts < start
            inside = (ts >= start) & (ts < end)
            out.append({"start": start, "end": end, "history": history, "inside": inside})
        return out

    def _choose(self) -> None:
        d = self._data
        k = int(self.params.get("k", 10))
        days = [float(v) for v in self.params.get("days", DEFAULT_DAYS)]
        betas = [float(v) for v in self.params.get("betas", DEFAULT_BETAS)]
        grid = self._grid()
        configs = [(tau, lam, day, beta) for tau, lam in grid for day in days for beta in betas]
        if len(configs) == 1:  # nothing to choose (a refit repeating a fit's choice): no windows
            self.tau, self.lam, self.days, self.beta = configs[0]
            self.windows_used, self.val_ndcg = 0, None
            self.history = {}
            return
        totals = np.zeros(len(configs))
        used: list[float] = []
        self.history = {"window_start": [], "window_users": [], "window_best_ndcg": []}
        min_users = int(self.params.get("min_window_users", MIN_WINDOW_USERS))
        for window in self.windows():
            h, w = window["history"], window["inside"]
            known = np.zeros(self.n_users, bool)
            known[d.user_idx[h]] = True
            seen_all = weighted_rows(d.user_idx[h], d.movie_idx[h], np.ones(int(h.sum())), self.n_users, self.n_movies)
            relevant_all = weighted_rows(
                d.user_idx[w], d.movie_idx[w], np.ones(int(w.sum())), self.n_users, self.n_movies
            )
            relevant_all = (relevant_all - relevant_all.multiply(seen_all.astype(bool))).tocsr()
            relevant_all.eliminate_zeros()
            users = np.flatnonzero(known & (np.diff(relevant_all.indptr) > 0))
            self.history["window_start"].append(float(window["start"]))
            self.history["window_users"].append(float(len(users)))
            if len(users) < min_users:
                self.history["window_best_ndcg"].append(float("nan"))
                continue
            seen, relevant = seen_all[users], relevant_all[users]
            priors = {
                day: recent_prior(d.movie_idx[h], d.timestamp[h], self.n_movies, window["start"], day) for day in days
            }
            scores = np.zeros(len(configs))
            cache: dict[Any, Any] = {}  # per tau: the rows and Gram matrix, shared by the lambdas
            c = 0
            for tau, lam in grid:
                b, rows = self._solve(h, window["start"], tau, lam, cache)
                z = standardise_unseen(self._scatter(rows[users], b), seen)
                for day in days:
                    for beta in betas:
                        scores[c] = ndcg_of(z + beta * priors[day], seen, relevant, k)
                        c += 1
            totals += scores
            used.append(float(window["start"]))
            self.history["window_best_ndcg"].append(float(scores.max()))
        self.windows_used = len(used)
        if not used:
            # No window has enough users: no evidence either way. The first value of each grid (by
            # default no decay, beta 0: plain EASE) with the middle lambda.
            lambdas = sorted({lam for _, lam in grid})
            self.tau, self.lam, self.days, self.beta = grid[0][0], lambdas[len(lambdas) // 2], days[0], betas[0]
            self.val_ndcg = None
            log.warning(
                "recency_ease: no validation window has %d users known before it; using tau %s, lambda %g, beta %g",
                min_users,
                self.tau,
                self.lam,
                self.beta,
            )
            return
        best = int(np.argmax(totals))  # first of equals
        self.tau, self.lam, self.days, self.beta = configs[best]
        self.val_ndcg = float(totals[best] / len(used))
        self.history["val_ndcg"] = [self.val_ndcg]

    def _solve(
        self, mask: np.ndarray, now: int, tau: float | None, lam: float, cache: dict[Any, Any] | None = None
    ) -> tuple[np.ndarray, sp.csr_matrix]:
        """EASE weights over the active movies and the scoring rows, from the rows in ``mask`` at ``now``."""
        cache = {} if cache is None else cache
        if tau not in cache:
            d = self._data
            weights = decay_weights(d.timestamp[mask], now, tau)
            rows = weighted_rows(d.user_idx[mask], d.movie_idx[mask], weights, self.n_users, self.n_movies)
            scale = float(np.mean(weights**2)) if len(weights) else 1.0
            gram = gram_matrix(rows[:, self._active], blocked=bool(self.params.get("blocked_gram", False)))
            if not (bool(self.params.get("decay_rows", True)) and tau is not None):
                rows = weighted_rows(
                    d.user_idx[mask], d.movie_idx[mask], np.ones(int(mask.sum())), self.n_users, self.n_movies
                )
            cache[tau] = (gram, scale, rows.astype(np.float32))
        gram, scale, rows = cache[tau]
        return solve_ease(gram, lam * scale), rows

    def _refit(self) -> None:
        d = self._data
        every = np.ones(len(d), bool)
        self._b, self._rows = self._solve(every, self.now, self.tau, self.lam)
        self._prior = recent_prior(d.movie_idx, d.timestamp, self.n_movies, self.now, self.days)

    def _fit_without_timestamps(self, train: Interactions, validation: Interactions | None) -> None:
        log.warning("recency_ease: the ratings have no timestamps; falling back to plain EASE (no recency)")
        self.now, self.tau, self.days, self.beta, self.val_ndcg, self.windows_used = None, None, 0.0, 0.0, None, 0
        lambdas = sorted({lam for _, lam in self._grid()})
        self.lam = lambdas[len(lambdas) // 2]
        self.history = {"fallback": [1.0]}
        if validation is not None and len(validation) and len(lambdas) > 1:
            seen = train.to_csr()
            gram = gram_matrix(seen[:, self._active])
            ndcgs = [
                validation_ndcg(self._scatter(seen, solve_ease(gram, lam)), seen, validation, 10) for lam in lambdas
            ]
            self.lam = lambdas[int(np.argmax(ndcgs))]
            self.history.update({"lambda": lambdas, "val_ndcg": ndcgs})
        self._rows = union_interactions(train, validation).to_csr().astype(np.float32)
        self._b = solve_ease(self._rows[:, self._active], self.lam)
        self._prior = np.zeros(self.n_movies, np.float32)

    # -- scoring -------------------------------------------------------------------------------

    def _scatter(self, rows: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
        out = np.zeros((rows.shape[0], self.n_movies), np.float32)
        out[:, self._active] = rows[:, self._active] @ b
        return out

    def _score(self, rows: sp.csr_matrix, b: np.ndarray, prior: np.ndarray) -> np.ndarray:
        z = standardise_unseen(self._scatter(rows, b), rows)
        return (z + self.beta * prior.astype(np.float64)).astype(np.float32)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score(self._rows[np.asarray(user_idx)], self._b, self._prior)

    def validation_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Scores of ``rows`` (as given) with the chosen settings refitted on ``train`` alone."""
        if self._train_scorer is None:
            t = self._train
            if t.timestamp is None or self.now is None:
                b = solve_ease(t.to_csr()[:, self._active], self.lam)
                prior = np.zeros(self.n_movies, np.float32)
            else:
                ts = np.asarray(t.timestamp, np.int64)
                keep = ts < self.now
                weights = decay_weights(ts[keep], self.now, self.tau)
                x = weighted_rows(t.user_idx[keep], t.movie_idx[keep], weights, self.n_users, self.n_movies)
                b = solve_ease(gram_matrix(x[:, self._active]), self.lam * float(np.mean(weights**2)))
                prior = recent_prior(t.movie_idx[keep], ts[keep], self.n_movies, self.now, self.days)
            self._train_scorer = (b, prior)
        b, prior = self._train_scorer
        return self._score(sp.csr_matrix(rows), b, prior)

    def settings(self) -> dict[str, Any]:
        """What the fit chose (and from how many validation windows): for reports."""
        return self._json_state()

    # -- persistence ---------------------------------------------------------------------------

    def _json_state(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "tau": self.tau,
            "lambda": self.lam,
            "days": self.days,
            "beta": self.beta,
            "val_ndcg": self.val_ndcg,
            "windows_used": self.windows_used,
        }

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "weights.npz", b=self._b, active=self._active, prior=self._prior)
        sp.save_npz(directory / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.now, self.tau, self.lam = state["now"], state["tau"], float(state["lambda"])
        self.days, self.beta = float(state["days"]), float(state["beta"])
        self.val_ndcg, self.windows_used = state.get("val_ndcg"), int(state.get("windows_used", 0))
        with np.load(directory / "weights.npz", allow_pickle=False) as data:
            self._b, self._active, self._prior = data["b"], data["active"], data["prior"]
        self._rows = sp.load_npz(directory / "rows.npz").tocsr()
