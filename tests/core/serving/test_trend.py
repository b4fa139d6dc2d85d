"""The night's trend: recent counts, the re-ranking of each user's candidates, and its weekly choice."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.models.base import Recommender
from recsys_core.serving import trend
from recsys_core.serving.topn import TopN
from recsys_core.serving.trend import (
    DAY_SECONDS,
    TrendChoice,
    boost_top_n,
    choose_trend,
    recent_counts,
    total_counts,
    trend_prior,
)

CUTOFF = 1_000 * DAY_SECONDS


def test_recent_counts_take_the_days_before_the_cutoff_only():
    movies = np.array([0, 0, 1, 2, 2, 2])
    ts = np.array([CUTOFF - 7 * DAY_SECONDS, CUTOFF - 1, CUTOFF - 7 * DAY_SECONDS - 1, CUTOFF, CUTOFF - 5, 0])
    # [cutoff - 7 days, cutoff): the first two of movie 0 and one of movie 2; the cutoff itself is tomorrow
    assert recent_counts(movies, ts, 4, CUTOFF, 7).tolist() == [2, 0, 1, 0]


def test_trend_prior_scales_by_the_top_count_and_keeps_zeros():
    assert trend_prior(np.array([2.0, 0.0, 1.0])).tolist() == [1.0, 0.0, 0.5]
    assert trend_prior(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_newness_weighs_each_count_by_the_share_of_the_movies_ratings_that_are_recent():
    counts, totals = np.array([4.0, 4.0, 0.0, 2.0]), np.array([4.0, 16.0, 9.0, 2.0])
    # shares 1, 1/4, 0, 1: the new movie 0 keeps its count, the old favourite 1 a quarter of it
    assert trend_prior(counts, totals, 1.0).tolist() == [1.0, 0.25, 0.0, 0.5]
    assert trend_prior(counts, totals, 0.5).tolist() == pytest.approx([1.0, 0.5, 0.0, 0.5])
    assert trend_prior(counts, totals, 0.0).tolist() == trend_prior(counts).tolist() == [1.0, 1.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="total count"):
        trend_prior(counts, None, 1.0)


def test_total_counts_stop_at_the_cutoff():
    movies, ts = np.array([0, 0, 1, 1]), np.array([0, CUTOFF - 1, CUTOFF, 5])
    assert total_counts(movies, ts, 3, CUTOFF).tolist() == [2, 1, 0]


def _candidates(movies, scores):
    movies = np.array(movies, np.int32)
    return TopN(np.arange(len(movies), dtype=np.int32), movies, np.array(scores, np.float32))


def test_beta_zero_or_no_recent_ratings_leave_the_ranking_as_it_is():
    top = _candidates([[0, 1, 2]], [[3.0, 2.0, 1.0]])
    seen = sp.csr_matrix((1, 6))
    assert boost_top_n(top, seen, np.array([0, 0, 0, 0, 0, 1.0]), 0.0) is top
    assert boost_top_n(top, seen, np.zeros(6), 4.0) is top


def test_boost_reranks_candidates_and_brings_in_unseen_trending_movies():
    # user 0 ranks 0 > 1 > 2; movie 5 trends most, movie 2 a little; user 1 has seen movie 5
    top = _candidates([[0, 1, 2], [0, 1, 2]], [[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    seen = sp.csr_matrix(([1.0], ([1], [5])), shape=(2, 6))
    prior = np.array([0, 0, 0.5, 0, 0, 1.0])
    out = boost_top_n(top, seen, prior, 1.0)
    # user 0: 5 -> 0 + 1 = 1.0, 0 -> 1.0 (model order wins the tie), 2 -> 0 + 0.5, 1 -> 0.5
    assert out.movie_idx[0].tolist() == [0, 5, 1]
    assert out.scores[0].tolist() == pytest.approx([1.0, 1.0, 0.5])
    # user 1 never gets the movie they rated
    assert 5 not in out.movie_idx[1].tolist()
    assert out.movie_idx[1].tolist() == [0, 1, 2]
    assert all(np.all(np.diff(row) <= 0) for row in out.scores)  # scores never rise down a list


def test_a_trending_candidate_is_not_listed_twice_and_padding_stays_padding():
    top = _candidates([[2, 0, -1]], [[2.0, 1.0, -np.inf]])
    out = boost_top_n(top, sp.csr_matrix((1, 4)), np.array([0, 0, 1.0, 0.5]), 2.0)
    assert out.movie_idx[0].tolist() == [2, 3, 0]  # 2: 1 + 2; 3 (new): 0 + 1; 0: 0 + 0
    assert out.scores[0].tolist() == pytest.approx([3.0, 1.0, 0.0])
    lone = boost_top_n(
        _candidates([[1, -1, -1]], [[5.0, -np.inf, -np.inf]]), sp.csr_matrix((1, 3)), np.array([1.0, 0, 0]), 1.0
    )
    assert lone.movie_idx[0].tolist() == [0, 1, -1] and lone.scores[0, 2] == -np.inf


def test_blocks_give_the_same_lists_as_one_piece(monkeypatch):
    rng = np.random.default_rng(0)
    n_users, n_movies, depth = 9, 30, 6
    scores = -np.sort(-rng.random((n_users, depth)), axis=1)
    movies = np.stack([rng.choice(n_movies, depth, replace=False) for _ in range(n_users)])
    seen = sp.csr_matrix(rng.random((n_users, n_movies)) < 0.2)
    top = _candidates(movies, scores)
    prior = trend_prior(rng.integers(0, 5, n_movies).astype(float))
    whole = boost_top_n(top, seen, prior, 0.7)
    monkeypatch.setattr(trend, "BLOCK_ROWS", 2)
    parts = boost_top_n(top, seen, prior, 0.7)
    assert np.array_equal(whole.movie_idx, parts.movie_idx) and np.array_equal(whole.scores, parts.scores)


class _Fixed(Recommender):
    """Scores every user the same: movie 0 best, then 1, 2, ..."""

    name = "fixed_test"

    def __init__(self, n_users: int, n_movies: int) -> None:
        super().__init__()
        self.n_users, self.n_movies = n_users, n_movies

    def fit(self, train, validation=None):  # pragma: no cover - built fitted
        return self

    def score_users(self, user_idx):
        return np.tile(-np.arange(self.n_movies, dtype=np.float32), (len(user_idx), 1))


def _history(week_movies: list[int]):
    """6 users rate movies 0-2 a month ago; in the week before the night users 0-3 rate ``week_movies``
    (movie 7 gets ratings from users 4-5 in the week before that too)."""
    rows = [(u, m, CUTOFF - 30 * DAY_SECONDS) for u in range(6) for m in range(3)]
    rows += [(u, 7, CUTOFF - 9 * DAY_SECONDS) for u in (4, 5)]
    rows += [(u, m, CUTOFF - 2 * DAY_SECONDS) for u in range(4) for m in week_movies]
    users, movies, ts = (np.array(c) for c in zip(*rows, strict=True))
    return users, movies, ts


def test_the_week_chooses_a_weight_when_the_newest_ratings_follow_what_trends():
    users, movies, ts = _history([7])
    masks = []

    def fit(mask):
        masks.append(mask.copy())
        return _Fixed(6, 10)

    choice = choose_trend(fit, users, movies, ts, 6, 10, CUTOFF, depth=5, k=3, min_users=1)
    assert choice.active and choice.reason is None
    assert choice.users == 4 and choice.window_end == CUTOFF and choice.window_start == CUTOFF - 7 * DAY_SECONDS
    assert choice.ndcg_trend > choice.ndcg_ranked
    # the ranker never saw the week: fitted once, on the ratings before it
    assert len(masks) == 1 and np.array_equal(masks[0], ts < CUTOFF - 7 * DAY_SECONDS)
    grid = len(trend.TREND_DAYS) * len(trend.TREND_NEWNESS) * (len(trend.TREND_BETAS) - 1)
    assert len(choice.trials) == 1 + grid  # beta 0 once
    assert choice.newness == 0.0  # movie 7 is both the most rated and the newest: the plain counts win the tie


def test_the_week_chooses_newness_when_it_rates_the_new_movie_over_the_old_favourite():
    # the ranker orders movies by id. Users 0-3 rated movies 0-2 long ago and, in the week, the new
    # movie 8. Before the week the old favourite 6 (8 ratings) got 3 recent ones, movie 8 (new) 2:
    # plain recent counts rank 6 above 8, newness (3/8 of 6's ratings are recent, all of 8's) 8 above 6
    start = CUTOFF - 7 * DAY_SECONDS
    rows = [(u, m, start - 40 * DAY_SECONDS) for u in range(4) for m in range(3)]
    rows += [(u, 6, start - 40 * DAY_SECONDS) for u in range(7, 12)]
    rows += [(u, 6, start - 3 * DAY_SECONDS) for u in (4, 5, 6)]
    rows += [(u, 8, start - 2 * DAY_SECONDS) for u in (7, 8)]
    rows += [(u, 8, CUTOFF - 2 * DAY_SECONDS) for u in range(4)]
    users, movies, ts = (np.array(c) for c in zip(*rows, strict=True))
    choice = choose_trend(lambda mask: _Fixed(12, 10), users, movies, ts, 12, 10, CUTOFF, depth=5, k=1, min_users=1)
    assert choice.active and choice.newness > 0 and choice.ndcg_trend == pytest.approx(1.0)
    plain = [t["ndcg"] for t in choice.trials if t["beta"] > 0 and t["newness"] == 0.0]
    assert max(plain) == 0.0  # no weight on plain counts puts movie 8 first


def test_the_ranking_alone_wins_when_the_week_follows_it():
    users, movies, ts = _history([3])  # movie 3 is the ranker's best unseen movie; nothing trends towards it
    choice = choose_trend(lambda mask: _Fixed(6, 10), users, movies, ts, 6, 10, CUTOFF, depth=5, k=3, min_users=1)
    assert not choice.active and choice.beta == 0 and choice.ndcg_trend == choice.ndcg_ranked == pytest.approx(1.0)


def test_no_week_no_choice_and_no_fit():
    users, movies, ts = _history([])

    def fit(mask):  # pragma: no cover - must not be called
        raise AssertionError("no fit without a week to judge on")

    choice = choose_trend(fit, users, movies, ts, 6, 10, CUTOFF, depth=5)
    assert not choice.active and "no ratings" in choice.reason
    new_only = choose_trend(fit, np.array([0, 1]), np.array([0, 1]), np.array([0, CUTOFF - 1]), 2, 3, CUTOFF, depth=2)
    assert not new_only.active and "0 users rated both" in new_only.reason


def test_too_few_returning_users_leave_the_trend_off_without_a_fit():
    users, movies, ts = _history([7])  # 4 returning users

    def fit(mask):  # pragma: no cover - must not be called
        raise AssertionError("no fit for 4 users")

    choice = choose_trend(fit, users, movies, ts, 6, 10, CUTOFF, depth=5, min_users=5)
    assert not choice.active and choice.users == 4 and "fewer than the 5" in choice.reason
    assert trend.MIN_USERS == 20


def test_trend_depth_follows_exploration_when_it_keeps_more():
    assert trend.trend_depth(10, 1682) == 200
    assert trend.trend_depth(10, 1682, 50) == 200  # a shallow exploration: the trend still looks 200 deep
    assert trend.trend_depth(10, 1682, 1000) == 1000
    assert trend.trend_depth(10, 40) == 40  # never deeper than the catalogue


def test_summary_is_json_ready():
    import json

    summary = TrendChoice(days=14, beta=2.0, newness=1.0, users=3, ndcg_ranked=0.1, ndcg_trend=0.2).summary()
    assert json.loads(json.dumps(summary))["active"] is True
    assert json.loads(json.dumps(summary))["newness"] == 1.0
