from datetime import date

import pandas as pd
import pytest

from recsys_core.data.readers import Release
from recsys_core.errors import DataContractError
from recsys_core.nights.calendar import cutoff_seconds
from recsys_core.nights.cutoff import count_new_since, cut_release, require_enough_data

DAY = 86_400
NIGHT = date(2024, 1, 10)
CUT = cutoff_seconds(NIGHT)


def release(ts: list[int]) -> Release:
    ratings = pd.DataFrame(
        {
            "user_id": [1 + i % 4 for i in range(len(ts))],
            "movie_id": [10 + i for i in range(len(ts))],
            "rating": [4.0] * len(ts),
            "timestamp": ts,
        }
    )
    movies = pd.DataFrame({"movie_id": range(10, 10 + len(ts) + 5), "title": "t"})
    return Release(ratings, movies)


def test_cut_keeps_only_ratings_strictly_before_midnight_and_all_movies():
    rel = release([CUT - 1, CUT, CUT + 1, CUT - DAY])
    night = cut_release(rel, NIGHT)
    assert night.release.ratings["timestamp"].tolist() == [CUT - 1, CUT - DAY]
    assert len(night.release.movies) == len(rel.movies)
    assert night.dropped_after_cutoff == 2
    assert night.first_rating == date(2024, 1, 9) and night.last_rating == date(2024, 1, 10)
    assert not night.nothing_new


def test_a_night_after_the_last_rating_day_says_nothing_is_new():
    night = cut_release(release([CUT - 3 * DAY] * 30), NIGHT)
    assert night.nothing_new


def test_too_early_a_night_names_the_date_and_the_release_span():
    night = cut_release(release([CUT - 1] * 5 + [CUT + 10 * DAY] * 40), NIGHT)
    with pytest.raises(DataContractError) as err:
        require_enough_data(night, "ml-100k")
    msg = str(err.value)
    assert "--as-of 2024-01-10 is too early for ml-100k" in msg
    assert "2024-01-09 to 2024-01-20" in msg


def test_count_new_since_counts_ratings_users_and_movies_first_seen_in_the_window():
    ratings = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3],
            "movie_id": [10, 11, 10, 12],
            "rating": [4.0] * 4,
            "timestamp": [CUT - 2 * DAY, CUT - 10, CUT - 2 * DAY, CUT - 5],
        }
    )
    new = count_new_since(ratings, CUT - DAY)
    assert new == {"ratings": 2, "users": 1, "movies": 2, "active_users": 2}
    assert count_new_since(ratings, None) is None


def test_a_source_read_only_through_the_cutoff_gives_its_whole_span():
    """A log is read through the cutoff: its span comes from its partitions, not from what was read."""
    rel = release([CUT - 5 * DAY] * 30)
    night = cut_release(rel, NIGHT, span=(date(2023, 12, 1), date(2024, 2, 1)))
    assert night.last_rating == date(2024, 2, 1) and not night.nothing_new


def test_a_night_without_its_rating_frame_keeps_every_fact_the_manifest_reads():
    night = cut_release(release([CUT - 1, CUT, CUT + 1, CUT - DAY]), NIGHT)
    light = night.without_ratings()
    assert light.release.ratings.empty and list(light.release.ratings.columns) == list(night.release.ratings.columns)
    assert light.summary() == night.summary() and light.summary()["ratings"] == 2
    assert (light.cutoff, light.nothing_new, light.release.movies is night.release.movies) == (
        night.cutoff,
        night.nothing_new,
        True,
    )
