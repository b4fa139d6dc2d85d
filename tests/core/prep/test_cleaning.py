import pandas as pd

from recsys_core.prep.cleaning import average_duplicates, clean_ratings


def test_duplicates_averaged_latest_timestamp_kept():
    r = pd.DataFrame(
        {"user_id": [1, 1, 2], "movie_id": [5, 5, 5], "rating": [2.0, 5.0, 3.0], "timestamp": [10, 30, 20]}
    )
    out = average_duplicates(r).sort_values("user_id")
    assert len(out) == 2
    first = out.iloc[0]
    assert first.rating == 3.5 and first.timestamp == 30
    assert str(out["rating"].dtype) == "float32"


def test_clean_drops_unknown_movies_and_keeps_schema():
    r = pd.DataFrame({"user_id": [1, 1], "movie_id": [5, 6], "rating": [2.0, 4.0], "timestamp": [1, 2]})
    movies = pd.DataFrame(
        {"movie_id": [5], "title": ["A"], "year": pd.array([1999], dtype="Int16"), "genres": [["Drama"]]}
    )
    out = clean_ratings(r, movies)
    assert out["movie_id"].tolist() == [5]
    assert list(out.columns) == ["user_id", "movie_id", "rating", "timestamp"]
