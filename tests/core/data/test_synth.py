"""Synthetic releases: readable by the csv reader, seeded, MovieLens-shaped."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from recsys_core.data.readers import read_release
from recsys_core.data.synth import MIN_USER_RATINGS, draw_user_counts, write_synthetic_release


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "synth.zip"
    write_synthetic_release(path, n_users=300, n_movies=400, n_ratings=15_000, seed=3)
    return path


def test_archive_has_the_ml25m_layout(release: Path) -> None:
    with zipfile.ZipFile(release) as zf:
        names = set(zf.namelist())
        assert names == {"ml-synth/ratings.csv", "ml-synth/movies.csv"}
        head = zf.read("ml-synth/ratings.csv").decode().splitlines()[:2]
        movies_head = zf.read("ml-synth/movies.csv").decode().splitlines()[0]
    assert head[0] == "userId,movieId,rating,timestamp"
    assert head[1].count(",") == 3 and "." in head[1].split(",")[2]  # '4.0', not '4'
    assert movies_head == "movieId,title,genres"


def test_readable_and_shaped_like_movielens(release: Path) -> None:
    rel = read_release(release, "csv")
    r, m = rel.ratings, rel.movies
    assert len(r) == 15_000
    assert set(r["user_id"]) == set(range(1, 301))  # every user present
    assert not r.duplicated(["user_id", "movie_id"]).any()
    assert set(np.unique(r["rating"])) <= {x / 2 for x in range(1, 11)}
    assert r.groupby("user_id").size().min() >= MIN_USER_RATINGS
    assert r["movie_id"].isin(m["movie_id"]).all()
    assert r["timestamp"].between(820_454_400, 1_574_294_400).all()
    assert m["year"].notna().all() and m["title"].str.len().gt(0).all()
    assert m["genres"].map(len).gt(0).mean() > 0.9
    per_movie = r.groupby("movie_id").size().sort_values(ascending=False)
    assert per_movie.iloc[:40].sum() > 0.25 * len(r)  # top 10% of movies: heavy share


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.zip", tmp_path / "b.zip", tmp_path / "c.zip"
    for path, seed in ((a, 1), (b, 1), (c, 2)):
        write_synthetic_release(path, 50, 80, 2_000, seed=seed)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_user_counts_sum_exactly_and_respect_limits() -> None:
    rng = np.random.default_rng(0)
    counts = draw_user_counts(1000, 60_000, 500, rng)
    assert counts.sum() == 60_000 and counts.min() >= 20 and counts.max() <= 500
    low = draw_user_counts(100, 250, 50, rng)  # fewer than 20 each: spread, everyone present
    assert low.sum() == 250 and low.min() >= 2


def test_dense_release_and_bad_sizes(tmp_path: Path) -> None:
    s = write_synthetic_release(tmp_path / "dense.zip", 10, 30, 300, seed=0)  # every pair
    assert s.n_ratings == 300
    r = read_release(s.path, "csv").ratings
    assert len(r.drop_duplicates(["user_id", "movie_id"])) == 300
    with pytest.raises(ValueError, match="ratings"):
        write_synthetic_release(tmp_path / "x.zip", 10, 5, 5)
    with pytest.raises(ValueError, match="exceed"):
        write_synthetic_release(tmp_path / "x.zip", 2, 5, 11)
