"""Exploration slots: the tail of each list goes to movies no other list shows."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.errors import ConfigError
from recsys_core.serving.explore import ExplorePolicy, explore_top_n
from recsys_core.serving.topn import TopN


def ranked(n_users: int = 150, depth: int = 40, n_movies: int = 300, seed: int = 0, shared: int = 15) -> TopN:
    """Rankings that share their head (popular movies everyone gets) and differ in the tail."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_users):
        tail = rng.choice(np.arange(shared, n_movies), depth - shared, replace=False)
        rows.append(np.concatenate([rng.permutation(shared), tail]))
    movies = np.asarray(rows, np.int32)
    scores = -np.sort(-rng.random(movies.shape), axis=1).astype(np.float32)
    return TopN(np.arange(n_users, dtype=np.int32), movies, scores)


def test_no_slots_is_the_model_ranking():
    top = ranked()
    out = explore_top_n(top, 10, ExplorePolicy(0, 40))
    np.testing.assert_array_equal(out.movie_idx, top.movie_idx[:, :10])
    np.testing.assert_array_equal(out.scores, top.scores[:, :10])


def test_lists_keep_their_head_come_from_the_user_ranking_and_stay_ordered():
    top = ranked()
    out = explore_top_n(top, 10, ExplorePolicy(3, 40, seed=1))
    np.testing.assert_array_equal(out.movie_idx[:, :7], top.movie_idx[:, :7])
    for row, cands, scores in zip(out.movie_idx, top.movie_idx, out.scores, strict=True):
        assert len(set(row)) == 10, "a list repeats a movie"
        assert set(row) <= set(cands), "an offered movie is not in the user's own ranking"
        assert np.all(np.diff(scores) <= 0), "scores must not increase with rank"
    positions = [list(c).index(m) for c, row in zip(top.movie_idx, out.movie_idx, strict=True) for m in row[7:]]
    assert max(positions) >= 10, "nothing was explored"


def test_exploration_raises_coverage_and_hands_each_unshown_movie_out_once():
    top = ranked()
    plain = np.unique(top.movie_idx[:, :10]).size
    out = explore_top_n(top, 10, ExplorePolicy(3, 40))
    assert np.unique(out.movie_idx).size >= plain + 100
    # everyone ranks the same 15 movies first: the head shows 7 of each list, the rest is explored
    explored = out.movie_idx[:, 7:].ravel()
    explored = explored[~np.isin(explored, top.movie_idx[:, :7])]
    values, counts = np.unique(explored, return_counts=True)
    assert counts.max() == 1, f"movie {values[counts.argmax()]} was handed out {counts.max()} times"


def test_identical_rankings_spread_over_the_pool_not_one_movie_per_block():
    movies = np.tile(np.arange(60, dtype=np.int32), (200, 1))
    scores = np.tile(-np.arange(60, dtype=np.float32), (200, 1))
    out = explore_top_n(TopN(np.arange(200, dtype=np.int32), movies, scores), 10, ExplorePolicy(2, 60))
    assert np.unique(out.movie_idx).size == 60


def test_short_pools_fall_back_to_the_ranking_and_padding():
    movies = np.array([[0, 1, 2, 3, -1, -1], [0, 1, 2, 4, 5, -1]], np.int32)
    scores = np.where(movies >= 0, -np.arange(6, dtype=np.float32), -np.inf).astype(np.float32)
    out = explore_top_n(TopN(np.arange(2, dtype=np.int32), movies, scores), 3, ExplorePolicy(2, 6))
    assert out.movie_idx[:, 0].tolist() == [0, 0]
    assert all(np.all(np.diff(row[np.isfinite(row)]) <= 0) for row in out.scores)
    assert (out.movie_idx >= 0).all(), "both users have enough movies for three slots"
    assert set(out.movie_idx[1]) - {0} <= {1, 2, 4, 5}


def test_the_same_seed_gives_the_same_lists_and_another_seed_may_not():
    top = ranked()
    a = explore_top_n(top, 10, ExplorePolicy(3, 40, seed=3)).movie_idx
    np.testing.assert_array_equal(a, explore_top_n(top, 10, ExplorePolicy(3, 40, seed=3)).movie_idx)
    assert not np.array_equal(a, explore_top_n(top, 10, ExplorePolicy(3, 40, seed=4)).movie_idx)


@pytest.mark.parametrize(
    ("policy", "needle"),
    [(ExplorePolicy(10, 100), "--explore-slots 10"), (ExplorePolicy(2, 10), "--explore-depth 10")],
)
def test_settings_that_cannot_work_name_the_option(policy, needle):
    with pytest.raises(ConfigError, match=needle):
        explore_top_n(ranked(), 10, policy)


def test_a_coverage_goal_explores_only_until_the_lists_reach_it():
    top = ranked()
    n_movies = 300
    full = explore_top_n(top, 10, ExplorePolicy(3, 40), n_movies)
    plain_cov = np.unique(top.movie_idx[:, :10]).size / n_movies
    full_cov = np.unique(full.movie_idx).size / n_movies
    goal = (plain_cov + full_cov) / 2
    part = explore_top_n(top, 10, ExplorePolicy(3, 40, coverage=goal), n_movies)
    part_cov = np.unique(part.movie_idx).size / n_movies
    assert goal <= part_cov < full_cov
    changed = (part.movie_idx != top.movie_idx[:, :10]).any(axis=1).sum()
    assert 0 < changed < (full.movie_idx != top.movie_idx[:, :10]).any(axis=1).sum()


def test_a_goal_the_ranking_already_meets_changes_nothing():
    top = ranked()
    plain_cov = np.unique(top.movie_idx[:, :10]).size / 300
    out = explore_top_n(top, 10, ExplorePolicy(3, 40, coverage=plain_cov), 300)
    np.testing.assert_array_equal(out.movie_idx, top.movie_idx[:, :10])


def test_unshown_movies_go_to_the_user_who_ranks_them_highest():
    # lists of 3, one explored slot; movie 9 is user 1's 4th choice and user 0's 5th, and every
    # movie the two rank above it is in the other's head (already shown)
    movies = np.array([[0, 1, 2, 3, 9], [2, 3, 0, 9, 4]], np.int32)
    scores = np.tile(-np.arange(5, dtype=np.float32), (2, 1))
    for seed in range(8):  # whatever order the users are visited in
        out = explore_top_n(TopN(np.arange(2, dtype=np.int32), movies, scores), 3, ExplorePolicy(1, 5, seed))
        assert out.movie_idx[1].tolist() == [2, 3, 9], out.movie_idx
        assert out.movie_idx[0].tolist() == [0, 1, 2], "no unshown movie left: the ranking's next one"


def test_a_goal_met_exactly_leaves_the_lists_alone_despite_float_rounding():
    # 0.07 x 100 is 7.000000000000001 in floating point: the goal is still 7 movies, not 8
    assert 0.07 * 100 > 7
    movies = np.array([[u % 7, (u + 1) % 7, 50 + u] for u in range(20)], np.int32)
    scores = np.tile(np.array([3.0, 2.0, 1.0], np.float32), (20, 1))
    top = TopN(np.arange(20, dtype=np.int32), movies, scores)
    assert np.unique(movies[:, :2]).size == 7, "the ranked lists cover exactly 7 of 100 movies"
    out = explore_top_n(top, 2, ExplorePolicy(1, 3, coverage=0.07), n_movies=100)
    np.testing.assert_array_equal(out.movie_idx, movies[:, :2])
