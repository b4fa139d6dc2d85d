import math

import numpy as np
import pandas as pd
import pytest

from recsys_core.nights.online import online_metrics, popularity_lists, score_lists


def lists(rows: dict[int, list[int]]) -> pd.DataFrame:
    out = [(u, m, r) for u, movies in rows.items() for r, m in enumerate(movies, start=1)]
    return pd.DataFrame(out, columns=["user_id", "movie_id", "rank"])


def test_score_lists_against_hand_computed_values():
    top = lists({1: [10, 11, 12], 2: [10, 13, 14], 3: [15, 16, 17]})
    window = pd.DataFrame({"user_id": [1, 1, 2, 4], "movie_id": [11, 20, 99, 10]})
    got = score_lists(top, window, k=3)
    # users counted: 1 and 2 (3 rated nothing, 4 had no list)
    assert got["users"] == 2
    assert got["hit_rate_at_k"] == pytest.approx(0.5)
    assert got["precision_at_k"] == pytest.approx((1 / 3 + 0) / 2)
    assert got["recall_at_k"] == pytest.approx((1 / 2 + 0) / 2)
    # user 1: hit at rank 2 -> 1/log2(3); ideal over min(3, 2 relevant) = 1 + 1/log2(3)
    ndcg_1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert got["ndcg_at_k"] == pytest.approx(ndcg_1 / 2)


def test_score_lists_uses_only_the_first_k_ranks():
    top = lists({1: [10, 11, 12]})
    window = pd.DataFrame({"user_id": [1], "movie_id": [12]})
    assert score_lists(top, window, k=2)["hit_rate_at_k"] == 0.0
    assert score_lists(top, window, k=3)["ndcg_at_k"] == pytest.approx(1 / 2)


def test_no_overlapping_users_gives_empty_metrics():
    got = score_lists(lists({1: [10]}), pd.DataFrame({"user_id": [2], "movie_id": [10]}), k=1)
    assert got["users"] == 0 and got["ndcg_at_k"] is None


def test_popularity_lists_exclude_what_each_user_has_seen():
    history = pd.DataFrame({"user_id": [1, 2, 3, 3, 2], "movie_id": [10, 10, 10, 11, 12]})
    got = popularity_lists(history, np.array([1, 3]), k=2)
    assert got[got.user_id == 1].movie_id.tolist() == [11, 12]
    assert got[got.user_id == 3].movie_id.tolist() == [12]


def test_online_metrics_window_and_popularity_at_the_earlier_night():
    start, end = 1_000, 2_000
    ratings = pd.DataFrame(
        {
            "user_id": [1, 2, 2, 1, 2, 3],
            "movie_id": [10, 10, 11, 11, 12, 10],
            "rating": [4.0] * 6,
            "timestamp": [10, 20, 30, 1_500, 1_999, 2_000],  # the last one is after the window
        }
    )
    published = lists({1: [12, 11], 2: [12, 13], 3: [11, 12]})
    got = online_metrics(published, ratings, window_start=start, window_end=end, k=2)
    assert got["users"] == 2 and got["window_ratings"] == 2
    assert got["hit_rate_at_k"] == pytest.approx(1.0)
    # popularity before the window: 10 (2 ratings), 11 (1); user 1 saw 10 -> [11]; user 2 saw 10, 11 -> []
    pop = got["baselines"]["popularity"]
    # judged on the model's users: user 2's empty list is a miss
    assert pop["users"] == 2 and pop["hit_rate_at_k"] == pytest.approx(0.5)


def test_a_rerating_in_the_window_is_not_relevant_and_stays_seen_for_popularity():
    """Raw ratings: user 2 re-rates movie 10 in the window. Averaging would have moved the pair into
    the window (relevant, and unseen for popularity); it must count as neither."""
    ratings = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 2, 2],
            "movie_id": [10, 10, 10, 10, 11],
            "rating": [4.0] * 5,
            "timestamp": [10, 20, 30, 1_500, 1_600],
        }
    )
    published = lists({2: [12, 11]})
    got = online_metrics(published, ratings, window_start=1_000, window_end=2_000, k=2)
    assert got["window_ratings"] == 1 and got["users"] == 1
    assert got["recall_at_k"] == pytest.approx(1.0)  # movie 11 is the only relevant one, and it is listed
    pop = got["baselines"]["popularity"]
    assert pop["hit_rate_at_k"] == pytest.approx(0.0)  # popularity: [] (10 seen), 11 unrated before the window
