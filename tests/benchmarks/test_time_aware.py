"""benchmarks.time_aware on a tiny synthetic frame: decay weights, the recency window, the lists."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from benchmarks import time_aware
from recsys_core.nights.calendar import cutoff_seconds

DAY = 86_400
NIGHT = date(2020, 1, 20)
CUT = cutoff_seconds(NIGHT)


def frame() -> pd.DataFrame:
    """Movie 1 is old and popular, movie 2 rated in the last 3 days, movie 3 only at/after the cutoff."""
    rows = [
        (1, 1, 4.0, CUT - 40 * DAY),
        (2, 1, 4.0, CUT - 39 * DAY),
        (3, 1, 4.0, CUT - 38 * DAY),
        (1, 2, 4.0, CUT - 2 * DAY),
        (4, 2, 4.0, CUT - 1),
        (2, 3, 4.0, CUT),  # at the cutoff: tomorrow's
        (3, 3, 4.0, CUT + DAY),
        (4, 3, 4.0, CUT + 2 * DAY),
    ]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def test_cutoff_is_utc_midnight() -> None:
    assert CUT == int(datetime(2020, 1, 20, tzinfo=UTC).timestamp())


def test_decay_weights() -> None:
    w = time_aware.decay_weights(np.array([CUT - DAY, CUT - 10 * DAY]), CUT, 10.0)
    np.testing.assert_allclose(w, [np.exp(-0.1), np.exp(-1.0)])
    np.testing.assert_array_equal(time_aware.decay_weights(np.array([CUT - DAY]), CUT, np.inf), [1.0])
    with pytest.raises(ValueError):
        time_aware.decay_weights(np.array([CUT]), CUT, 10.0)


def test_recent_counts_never_see_the_cutoff_or_later() -> None:
    ratings = frame()
    items = np.array([1, 2, 3])
    np.testing.assert_array_equal(time_aware.recent_counts(ratings, items, CUT, 7), [0, 2, 0])
    np.testing.assert_array_equal(time_aware.recent_counts(ratings, items, CUT, 100), [3, 2, 0])
    # movies unknown to the night (rated only after it) are ignored, not mis-indexed
    np.testing.assert_array_equal(time_aware.recent_counts(ratings, np.array([1, 2]), CUT, 100), [3, 2])


def test_night_sees_only_before_cutoff_and_recent_pop_ranks_recent_first() -> None:
    night = time_aware.Night(frame(), NIGHT, 2, all_users=True)
    assert night.seen_ratings["timestamp"].max() < CUT
    np.testing.assert_array_equal(night.items, [1, 2])  # movie 3 is tomorrow's
    recent = night.lists(*time_aware.method_scores(night, "recent_pop", {"days": 7.0}))
    popular = night.lists(*time_aware.method_scores(night, "popularity", {}))
    # user 3 has seen movie 1 only: both rankers offer movie 2; user 2 likewise
    assert recent.loc[recent["user_id"] == 3, "movie_id"].tolist() == [2]
    # an unseen-everything user would get movie 2 first from recency, movie 1 from popularity
    fresh = night.recent_pop_scores(7.0)[0]
    assert fresh[1] > fresh[0]
    assert night.popularity_scores()[0][0] > night.popularity_scores()[0][1]
    assert set(popular["user_id"]) == {2, 3, 4}  # user 1 has seen every movie the night knows


def test_top_lists_mask_seen_and_rank() -> None:
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    seen = np.array([[True, False, False], [False, False, False]])
    lists = time_aware.top_lists(scores, seen, np.array([10, 11]), np.array([5, 6, 7]), 2)
    assert lists.values.tolist() == [[10, 6, 1], [10, 7, 2], [11, 7, 1], [11, 6, 2]]


def test_decayed_ease_runs_and_blend_keeps_seen_out() -> None:
    night = time_aware.Night(frame(), NIGHT, 2, all_users=True)
    cfg = {"tau": 7.0, "lambda": 1.0, "decayed_rows": True}
    scores, _ = time_aware.method_scores(night, "decayed_ease", cfg)
    assert scores.shape == (4, 2) and np.isfinite(scores).all()
    blend = {"base": cfg, "days": 7.0, "beta": 0.5}
    lists = night.lists(*time_aware.method_scores(night, "decayed_ease_plus_recent", blend))
    seen = set(map(tuple, night.seen_ratings[["user_id", "movie_id"]].to_numpy().tolist()))
    assert not seen & set(map(tuple, lists[["user_id", "movie_id"]].to_numpy().tolist()))


def test_registry_section_renders_per_night_rows_and_choices() -> None:
    row = {
        "night": "1998-04-16",
        "users_scored": 41,
        "popularity_ndcg_at_k": 0.1,
        "model_ndcg_at_k": 0.16,
        "model_settings": {"tau": None, "lambda": 200.0, "days": 7.0, "beta": 8.0, "val_ndcg": 0.2, "windows_used": 3},
    }
    summary = {
        "popularity_ndcg_at_k": 0.1,
        "popularity_hit_rate_at_k": 0.3,
        "model_ndcg_at_k": 0.16,
        "model_hit_rate_at_k": 0.4,
        "mean_ratio": 1.6,
        "ratio_of_means": 1.6,
        "nights_model_above_popularity": 1,
        "ratio_nights": 1,
        "mean_train_s": 5.0,
    }
    report = {
        "machine": "m",
        "python": "3.11",
        "command": "c",
        "top_n": 10,
        "seed": 42,
        "grid": None,
        "run_s": 1.0,
        "generated": "now",
        "replay": {"recency_ease": {"summary": summary, "rows": [row]}},
    }
    text = time_aware.render(report)
    assert "| 1998-04-16 | 41 | 0.1000 | 0.1600 | 1.60 | tau none, lambda 200, D 7 d, beta 8" in text
    assert "At or above the issue's 1.5x (mean ratio): recency_ease." in text
