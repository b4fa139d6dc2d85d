"""What is rated now: a night's lists lean towards the movies rated most in the days before it.

Why: a night's lists are judged by what people rate next week, and that is driven by time (this
month's releases, what everyone rates now) that a ranker fitted on all history does not see. On
the weekly replay of ml-100k (``benchmarks/results/replay.md``) the default's ranking alone
scores 1.2x popularity's next-week NDCG@10, while the movies rated most in the last week score
1.5x. Putting time into the ranker itself (a decayed Gram matrix, ``recency_ease``) costs a
fifth of the NDCG on a random hold-out; a prior added at scoring time costs the ranker nothing.

How: each user's ranked candidates (their top ``depth``) are scaled to [0, 1] (best 1, the
``depth``-th 0), the movies rated most in the ``days`` before the night that the user has not
rated join them at 0, and every candidate gains ``beta`` x its prior. The prior is the movie's
ratings in those days, times the share of all its ratings that fell in them raised to
``newness``, over the largest such value. With ``newness`` 0 it is what is rated most now; with 1
it leans towards what is new: a movie first rated this week keeps its whole count, an old
favourite still rated keeps a small part of it. The list is the best ``top_n`` of that sum; the sum
is the published score.

When: ``beta``, ``days`` and ``newness`` are chosen each night on the week before it
(``choose_trend``): the night's ranker is fitted again on the ratings before that week (its
settings fixed), each returning user's list is made for every (days, newness, beta) of the grid,
and the one with the best NDCG@10 on what they rated that week wins (beta 0, the ranking alone,
on ties; among other tied settings the first in grid order: the shorter window, then the
smaller newness, then the smaller beta). A night with no
ratings in that week (a release read long after its last rating) has nothing to lean on: its
lists are the ranking's. A random hold-out has no night, so models evaluated on one are
unaffected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from recsys_core.serving.explore import default_depth

if TYPE_CHECKING:  # scoring's imports load only when a choice or a re-ranking runs
    from recsys_core.models.base import Recommender
    from recsys_core.serving.topn import TopN

DAY_SECONDS = 86_400
WINDOW_DAYS = 7  # the validation week: the week before the night, as the night is judged on the week after it
TREND_DAYS = (7, 14, 28)
TREND_BETAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # 0 first: the ranking alone wins every tie
TREND_NEWNESS = (0.0, 0.5, 1.0)  # 0 first: plain recent counts win a tie
MIN_USERS = 20  # fewer returning users in the week than this: too few to judge a weight on, the trend stays off
BLOCK_ROWS = 8192  # users per block when re-ranking (bounds the (users, 2 x depth) temporaries)


def trend_method() -> dict[str, Any]:
    """What the trend chooses from, for the table fingerprint: a night published with other grids
    (an older release of this code) is not the same table, so a backfill builds it again."""
    return {
        "window_days": WINDOW_DAYS,
        "days": list(TREND_DAYS),
        "betas": list(TREND_BETAS),
        "newness": list(TREND_NEWNESS),
        "min_users": MIN_USERS,
    }


@dataclass
class TrendChoice:
    """The night's choice; ``beta`` 0 publishes the ranking as it is. ``reason`` says why when off."""

    days: int = TREND_DAYS[0]
    beta: float = 0.0
    newness: float = 0.0
    window_start: int | None = None
    window_end: int | None = None
    users: int = 0
    ndcg_ranked: float | None = None
    ndcg_trend: float | None = None
    fit_seconds: float | None = None
    reason: str | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.beta > 0

    def summary(self) -> dict[str, Any]:
        """JSON-friendly, for the manifest (``metrics.trend``) and the logs."""
        out = asdict(self)
        out["active"] = self.active
        return out


def trend_depth(top_n: int, n_movies: int, candidates: int = 0) -> int:
    """Candidates per user the trend is chosen and applied on: as deep as exploration looks by
    default (200 for a top-10), or the scorer's ``candidates`` when it keeps more."""
    return min(max(default_depth(top_n), top_n, candidates), max(n_movies, top_n))


def recent_counts(movie_idx: np.ndarray, timestamps: np.ndarray, n_movies: int, cutoff: int, days: int) -> np.ndarray:
    """Ratings per movie in [cutoff - days, cutoff); ratings at or after the cutoff never count."""
    ts = np.asarray(timestamps)
    keep = (ts < cutoff) & (ts >= cutoff - days * DAY_SECONDS)
    return np.bincount(np.asarray(movie_idx)[keep], minlength=n_movies).astype(np.float64)


def total_counts(movie_idx: np.ndarray, timestamps: np.ndarray, n_movies: int, cutoff: int) -> np.ndarray:
    """Ratings per movie before ``cutoff``: what a recent count is a share of."""
    keep = np.asarray(timestamps) < cutoff
    return np.bincount(np.asarray(movie_idx)[keep], minlength=n_movies).astype(np.float64)


def trend_prior(counts: np.ndarray, totals: np.ndarray | None = None, newness: float = 0.0) -> np.ndarray:
    """``counts`` x (``counts`` / ``totals``) ** ``newness``, over its largest value, so beta means
    the same on any release; zeros stay zeros. ``totals`` (all ratings per movie, the recent ones
    included) is needed only when ``newness`` is above 0."""
    values = np.asarray(counts, dtype=np.float64)
    if newness > 0:
        if totals is None:
            raise ValueError("trend_prior: newness above 0 needs each movie's total count")
        share = np.divide(values, totals, out=np.zeros_like(values), where=np.asarray(totals) > 0)
        values = values * np.minimum(share, 1.0) ** newness
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def boost_top_n(candidates: TopN, seen: sp.csr_matrix, prior: np.ndarray, beta: float) -> TopN:
    """Each user's candidates re-ranked by min-max model score + ``beta`` x ``prior``, with the
    user's unseen trending movies (the ``depth`` movies of highest prior) added at model score 0.

    ``candidates`` is a ranked top-``depth`` per user (``recommend_top_n``), ``seen`` the users x
    movies matrix the lists exclude (rows by ``candidates.user_idx``). Returns the same shape,
    best first by the new score, which it carries; beta 0 or a zero prior returns the input.
    """
    from recsys_core.serving.topn import TopN

    if beta <= 0 or not np.any(prior > 0):
        return candidates
    movies = np.asarray(candidates.movie_idx)
    depth = movies.shape[1]
    trending = np.argsort(-prior, kind="stable")[:depth]
    trending = trending[prior[trending] > 0]
    out_movies = np.empty_like(movies, dtype=np.int32)
    out_scores = np.empty(movies.shape, np.float32)
    seen = seen.tocsr()
    for start in range(0, len(movies), BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        out_movies[rows], out_scores[rows] = _boost_block(
            movies[rows],
            np.asarray(candidates.scores)[rows],
            seen[candidates.user_idx[rows]][:, trending].toarray() > 0,
            trending,
            prior,
            beta,
        )
    return TopN(candidates.user_idx, out_movies, out_scores)


def _boost_block(
    movies: np.ndarray, scores: np.ndarray, trend_seen: np.ndarray, trending: np.ndarray, prior: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    n_rows, depth = movies.shape
    valid = movies >= 0
    s = np.where(valid, scores, np.nan).astype(np.float64)
    with np.errstate(invalid="ignore"):
        low = np.nanmin(np.where(valid.any(1, keepdims=True), s, 0.0), axis=1, keepdims=True)
        high = np.nanmax(np.where(valid.any(1, keepdims=True), s, 0.0), axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    norm = np.where(valid, (np.nan_to_num(s, nan=0.0) - low) / span, -np.inf)
    # a trending movie already among the user's candidates keeps its own (higher) model score
    n_all = int(max(movies.max(initial=-1), trending.max(initial=-1))) + 1
    keys = np.sort((np.arange(n_rows, dtype=np.int64)[:, None] * n_all + movies)[valid])
    extra_keys = np.arange(n_rows, dtype=np.int64)[:, None] * n_all + trending[None, :]
    found = np.zeros(extra_keys.shape, bool)
    if len(keys):
        found = keys[np.minimum(np.searchsorted(keys, extra_keys), len(keys) - 1)] == extra_keys
    extra_ok = ~found & ~trend_seen
    all_movies = np.concatenate([movies, np.broadcast_to(trending, (n_rows, len(trending)))], axis=1)
    all_norm = np.concatenate([norm, np.where(extra_ok, 0.0, -np.inf)], axis=1)
    boosted = all_norm + beta * prior[np.maximum(all_movies, 0)]
    order = np.argsort(-boosted, axis=1, kind="stable")[:, :depth]  # ties: the model's order first
    top = np.take_along_axis(boosted, order, axis=1)
    picked = np.take_along_axis(all_movies, order, axis=1)
    ok = np.isfinite(top)
    return np.where(ok, picked, -1).astype(np.int32), np.where(ok, top, -np.inf).astype(np.float32)


def choose_trend(
    fit_ranker: Callable[[np.ndarray], Recommender],
    user_idx: np.ndarray,
    movie_idx: np.ndarray,
    timestamps: np.ndarray,
    n_users: int,
    n_movies: int,
    cutoff: int,
    *,
    depth: int,
    k: int = 10,
    days_grid: tuple[int, ...] = TREND_DAYS,
    betas: tuple[float, ...] = TREND_BETAS,
    newness_grid: tuple[float, ...] = TREND_NEWNESS,
    min_users: int = MIN_USERS,
) -> TrendChoice:
    """(days, newness, beta) for the night at ``cutoff``, chosen on the week before it.

    The arrays are every rating the night sees (encoded, all before ``cutoff``).
    ``fit_ranker(mask)`` fits the night's ranker, settings fixed, on the ratings where ``mask``
    is True (those before the week) and returns it. The week's returning users (rated before it
    and in it) are scored: relevant is every movie they rated in the week. With fewer than
    ``min_users`` of them nothing is fitted and the trend stays off.
    """
    from recsys_core.evaluation.metrics import ranking_metrics
    from recsys_core.serving.topn import recommend_top_n

    start = cutoff - WINDOW_DAYS * DAY_SECONDS
    choice = TrendChoice(window_start=start, window_end=cutoff)
    ts = np.asarray(timestamps)
    before, week = ts < start, (ts >= start) & (ts < cutoff)
    known = np.zeros(n_users, bool)
    known[user_idx[before]] = True
    week_users = np.unique(user_idx[week][known[user_idx[week]]])
    if not week.any():
        choice.reason = f"no ratings in the {WINDOW_DAYS} days before the night"
        return choice
    if len(week_users) < min_users:
        choice.users = len(week_users)
        choice.reason = (
            f"{len(week_users)} users rated both before and in the {WINDOW_DAYS} days before the night, "
            f"fewer than the {min_users} a weight is judged on"
        )
        return choice
    clock = time.perf_counter()
    ranker = fit_ranker(before)  # before seen and relevant: the fit sets the stage's peak memory
    choice.fit_seconds = round(time.perf_counter() - clock, 2)
    seen = sp.csr_matrix(
        (np.ones(int(before.sum()), np.float32), (user_idx[before], movie_idx[before])), shape=(n_users, n_movies)
    )
    relevant = sp.csr_matrix(
        (np.ones(int(week.sum()), np.float32), (user_idx[week], movie_idx[week])), shape=(n_users, n_movies)
    )
    relevant = relevant - relevant.multiply(seen > 0)  # a movie rated before the week is not news
    relevant.eliminate_zeros()
    ranked = recommend_top_n(ranker, seen, min(depth, n_movies), user_idx=week_users)
    choice.ndcg_ranked = ranking_metrics(ranked.movie_idx, week_users, relevant, k)["ndcg_at_k"]
    choice.trials.append({"days": None, "newness": None, "beta": 0.0, "ndcg": round(choice.ndcg_ranked, 6)})
    best = (choice.ndcg_ranked, days_grid[0], 0.0, 0.0)  # the ranking alone wins every tie
    totals = total_counts(movie_idx[before], ts[before], n_movies, start)
    for days in days_grid:
        counts = recent_counts(movie_idx[before], ts[before], n_movies, start, days)
        for newness in newness_grid:
            prior = trend_prior(counts, totals, newness)
            for beta in (b for b in betas if b > 0):
                lists = boost_top_n(ranked, seen, prior, beta)
                ndcg = ranking_metrics(lists.movie_idx, week_users, relevant, k)["ndcg_at_k"]
                choice.trials.append({"days": days, "newness": newness, "beta": beta, "ndcg": round(ndcg, 6)})
                if ndcg > best[0] + 1e-12:
                    best = (ndcg, days, beta, newness)
    choice.ndcg_trend, choice.days, choice.beta, choice.newness = best
    choice.users = len(week_users)
    return choice
