"""A user who rated every rated movie still gets a list; never-rated movies are counted."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from data_checks.published import check_recommendations
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.serving.fallback import FALLBACK_MODEL, build_fallback_table, find_catalogue_gaps

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def frames() -> tuple[pd.DataFrame, pd.DataFrame, IdVocabulary]:
    ratings = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "movie_id": [10, 11, 12, 10, 11], "rating": 4.0})
    movies = pd.DataFrame(
        {"movie_id": [10, 11, 12, 13, 14], "title": list("abcde"), "year": pd.array([1990, 1991, 1992, 1995, 1999])}
    )
    vocab = IdVocabulary(np.array([1, 2], np.int64), np.array([10, 11, 12], np.int64))
    return ratings, movies, vocab


def test_gaps_are_found_and_counted():
    ratings, movies, vocab = frames()
    gaps = find_catalogue_gaps(ratings, movies, vocab)
    assert gaps.exhausted_user_ids.tolist() == [1]
    assert gaps.unrated_movie_ids.tolist() == [13, 14]
    assert list(gaps.counts().values()) == [1, 2]


def test_exhausted_user_gets_never_rated_movies_newest_first_and_the_table_passes():
    ratings, movies, vocab = frames()
    gaps = find_catalogue_gaps(ratings, movies, vocab)
    table = build_fallback_table(gaps, ratings, movies, 3, run_id="r", generated_at=NOW)
    assert table["user_id"].tolist() == [1, 1] and table["movie_id"].tolist() == [14, 13]
    assert table["rank"].tolist() == [1, 2] and set(table["model"]) == {FALLBACK_MODEL}
    model_rows = table.iloc[:1].assign(user_id=2, movie_id=12, title="c", score=np.float32(0.5), model="m@v1")
    full = pd.concat([model_rows, table], ignore_index=True)
    report = check_recommendations(
        full, ratings[["user_id", "movie_id"]], top_n=3, n_users=2, n_movies=3, n_catalogue=5
    )
    assert report.success, report.to_markdown()
    # Without the fallback rows, user 1 would be missing: the check must say so.
    bad = check_recommendations(
        model_rows, ratings[["user_id", "movie_id"]], top_n=3, n_users=2, n_movies=3, n_catalogue=5
    )
    assert not bad.success


def test_no_gaps_no_rows():
    ratings, movies, vocab = frames()
    ratings = ratings[ratings.user_id == 2]
    gaps = find_catalogue_gaps(ratings, movies, IdVocabulary(np.array([2]), np.array([10, 11, 12])))
    assert len(build_fallback_table(gaps, ratings, movies, 3, run_id="r", generated_at=NOW)) == 0
