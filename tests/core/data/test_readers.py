"""Readers: every release layout into canonical frames; bad input is a clear error or a null."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.data.frames import split_title_year
from recsys_core.data.readers import read_release
from recsys_core.errors import ArchiveError, DataContractError, RecsysError
from tests.builders import (
    build_csv_zip,
    build_ml1m_zip,
    build_ml100k_zip,
    ml100k_item_lines,
    synth_ratings,
    zip_bytes,
)

RATINGS_DTYPES = {
    "user_id": "int64",
    "movie_id": "int64",
    "rating": "float32",
    "timestamp": "int64",
}
U_USER = "".join(f"{u}|{20 + u}|{'MF'[u % 2]}|writer|{55400 + u}\n" for u in range(1, 31))


def assert_canonical(release, n_ratings: int, n_movies: int) -> None:
    """The DESIGN.md frames: exact dtypes, titles without the year, year Int16, genres lists."""
    assert {c: str(t) for c, t in release.ratings.dtypes.items()} == RATINGS_DTYPES
    assert len(release.ratings) == n_ratings
    movies = release.movies
    assert list(movies.columns) == ["movie_id", "title", "year", "genres"]
    assert str(movies["movie_id"].dtype) == "int64"
    assert str(movies["year"].dtype) == "Int16"
    assert pd.api.types.is_string_dtype(movies["title"])
    assert all(isinstance(g, list) for g in movies["genres"])
    assert len(movies) == n_movies
    assert not movies["title"].str.contains(r"\(\d{4}\)$", regex=True).any()


def write_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    path.write_bytes(zip_bytes(members))
    return path


# --- the five layouts ---------------------------------------------------------------------


def test_ml100k_layout_reads_ratings_movies_users_and_folds(tmp_path: Path) -> None:
    ratings = synth_ratings()
    zpath = build_ml100k_zip(tmp_path / "ml-100k.zip", ratings, extra={"ml-100k/u.user": U_USER})
    release = read_release(zpath, "ml-100k")
    assert_canonical(release, len(ratings), 40)
    movie = release.movies.set_index("movie_id").loc[1]
    assert (movie["title"], movie["year"]) == ("Movie 1", 1991)
    assert movie["genres"] == ["Adventure"]  # flag index 1 + 1 % 18 = 2
    assert release.ratings["rating"].tolist() == ratings["rating"].astype("float32").tolist()
    assert set(release.folds) == {"u1", "ua"}
    base, test = release.folds["u1"]
    assert len(base) + len(test) == len(ratings)
    assert {c: str(t) for c, t in base.dtypes.items()} == RATINGS_DTYPES
    users = release.users
    assert users is not None and len(users) == 30
    assert str(users["user_id"].dtype) == "int64" and str(users["age"].dtype) == "Int16"
    assert users.loc[0, "occupation"] == "writer"
    assert release.malformed.empty


def test_ml1m_layout_reads_double_colon_files_and_latin1_titles(tmp_path: Path) -> None:
    ratings = synth_ratings()
    lines = ["1::Misérables, Les (1995)::Drama|Musical", "2::Babylon 5::Sci-Fi"]
    lines += [f"{m}::Movie {m} (1999)::Comedy" for m in range(3, 41)]
    zpath = build_ml1m_zip(tmp_path / "ml-1m.zip", ratings, movie_lines=lines)
    release = read_release(zpath, "ml-1m")
    assert_canonical(release, len(ratings), 40)
    movies = release.movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "Misérables, Les"  # latin-1 bytes decoded per release
    assert movies.loc[1, "year"] == 1995 and movies.loc[1, "genres"] == ["Drama", "Musical"]
    assert movies.loc[2, "title"] == "Babylon 5" and pd.isna(movies.loc[2, "year"])
    users = release.users
    assert users is not None and users.loc[0, "occupation"] == "academic/educator"  # code 1
    assert release.folds == {}


@pytest.mark.parametrize("folder", ["ml-latest-small", "ml-25m", "ml-32m"])
def test_csv_layouts_read_half_stars_quoted_titles_and_pipe_genres(tmp_path: Path, folder: str) -> None:
    ratings = synth_ratings(half_stars=True)
    zpath = build_csv_zip(tmp_path / f"{folder}.zip", ratings, folder=folder)
    release = read_release(zpath, "csv")
    assert_canonical(release, len(ratings), 40)
    assert release.ratings["rating"].tolist() == ratings["rating"].astype("float32").tolist()
    assert (release.ratings["rating"] % 1 == 0.5).any()
    movies = release.movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "American President, The"  # quoted comma kept
    assert movies.loc[1, "genres"] == ["Comedy", "Drama", "Romance"]
    assert movies.loc[2, "title"] == "Babylon 5" and pd.isna(movies.loc[2, "year"])
    assert movies.loc[3, "genres"] == []  # "(no genres listed)"
    assert release.users is None and release.folds == {}


def test_split_title_year_handles_ranges_markers_and_missing_years() -> None:
    raw = pd.Series(
        [
            "Toy Story (1995)",
            "Babylon 5 (1994-1998)",
            " X (2006–2007) ",
            "unknown",
            "Land Before Time III (1995) (V)",
            "Ready Player One",
        ]
    )
    title, year = split_title_year(raw)
    assert title.tolist() == [
        "Toy Story",
        "Babylon 5",
        "X",
        "unknown",
        "Land Before Time III (V)",
        "Ready Player One",
    ]
    assert year.tolist() == [1995, 1994, 2006, pd.NA, 1995, pd.NA]
    assert str(year.dtype) == "Int16"


# --- encodings ----------------------------------------------------------------------------


def test_ml100k_latin1_titles_decode(tmp_path: Path) -> None:
    lines = ml100k_item_lines(40)
    lines[0] = lines[0].replace("Movie 1 (1991)", "Nénette et Boni (1996)")
    zpath = build_ml100k_zip(tmp_path / "a.zip", item_lines=lines, folds=False)  # latin-1 bytes
    movies = read_release(zpath, "ml-100k").movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "Nénette et Boni" and movies.loc[1, "year"] == 1996


def test_csv_stray_latin1_line_is_decoded_without_garbling_utf8_titles(tmp_path: Path) -> None:
    text = "movieId,title,genres\n1,Amélie (2001),Comedy\n2,Misérables (1995),Drama\n"
    body = text.replace("Misérables", "MISERABLES").encode("utf-8")
    body = body.replace(b"MISERABLES", "Misérables".encode("latin-1"))  # one non-UTF-8 line
    ratings = "userId,movieId,rating,timestamp\n1,1,4.5,964982703\n1,2,3.0,964982704\n"
    zpath = build_csv_zip(tmp_path / "a.zip", ratings_text=ratings, movies_text=body)
    titles = read_release(zpath, "csv").movies["title"].tolist()
    assert titles == ["Amélie", "Misérables"]


# --- contract breaks: clear errors --------------------------------------------------------


def test_missing_u_data_names_the_file(tmp_path: Path) -> None:
    items = "\n".join(ml100k_item_lines(3)).encode("latin-1")
    zpath = write_zip(tmp_path / "a.zip", {"ml-100k/u.item": items})
    with pytest.raises(ArchiveError, match=r"u\.data.*--dataset.*--source"):
        read_release(zpath, "ml-100k")


def test_missing_ratings_csv_names_the_file(tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "a.zip", {"x/movies.csv": "movieId,title,genres\n1,A (1999),Drama\n"})
    with pytest.raises(ArchiveError, match=r"ratings\.csv"):
        read_release(zpath, "csv")


def test_wrong_separator_in_u_data_is_a_contract_error(tmp_path: Path) -> None:
    ratings = synth_ratings()
    data = "".join(f"{r.user_id},{r.movie_id},{int(r.rating)},{r.timestamp}\n" for r in ratings.itertuples())
    zpath = build_ml100k_zip(tmp_path / "a.zip", folds=False)
    zpath = write_zip(
        tmp_path / "b.zip",
        {"ml-100k/u.data": data, "ml-100k/u.item": _member(zpath, "ml-100k/u.item")},
    )
    with pytest.raises(DataContractError, match=r"u\.data.*1 field.*separator"):
        read_release(zpath, "ml-100k")


def test_wrong_separator_in_ratings_csv_is_a_contract_error(tmp_path: Path) -> None:
    text = "userId;movieId;rating;timestamp\n1;1;4.0;964982703\n"
    zpath = build_csv_zip(tmp_path / "a.zip", ratings_text=text)
    with pytest.raises(DataContractError, match=r"ratings\.csv lacks.*separator"):
        read_release(zpath, "csv")


def test_missing_column_is_named(tmp_path: Path) -> None:
    text = "userId,movieId,rating\n1,1,4.0\n"
    zpath = build_csv_zip(tmp_path / "a.zip", ratings_text=text)
    with pytest.raises(DataContractError, match=r"ratings\.csv lacks the column\(s\) timestamp"):
        read_release(zpath, "csv")


def test_missing_movies_column_is_named(tmp_path: Path) -> None:
    zpath = build_csv_zip(tmp_path / "a.zip", movies_text="movieId,title\n1,A (1999)\n")
    with pytest.raises(DataContractError, match=r"movies\.csv lacks the column\(s\) genres"):
        read_release(zpath, "csv")


@pytest.mark.parametrize("body", ["", "userId,movieId,rating,timestamp\n"])
def test_empty_ratings_csv_is_a_contract_error(tmp_path: Path, body: str) -> None:
    zpath = build_csv_zip(tmp_path / "a.zip", ratings_text=body)
    with pytest.raises(DataContractError, match=r"ratings\.csv.*(empty|no ratings)"):
        read_release(zpath, "csv")


def test_empty_u_data_is_a_contract_error(tmp_path: Path) -> None:
    zpath = build_ml100k_zip(tmp_path / "a.zip", ratings=synth_ratings().iloc[:0], folds=False)
    with pytest.raises(DataContractError, match=r"u\.data is empty.*--source"):
        read_release(zpath, "ml-100k")


def test_rating_column_without_any_number_is_a_contract_error(tmp_path: Path) -> None:
    text = "userId,movieId,rating,timestamp\n1,1,good,964982703\n2,1,bad,964982703\n"
    zpath = build_csv_zip(tmp_path / "a.zip", ratings_text=text)
    with pytest.raises(DataContractError, match=r"no value in the rating column"):
        read_release(zpath, "csv")


def test_unknown_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecsysError, match=r"layout 'ml-10m'"):
        read_release(build_csv_zip(tmp_path / "a.zip"), "ml-10m")


# --- row faults: tolerated, nothing lost ----------------------------------------------------


def test_extra_columns_are_tolerated(tmp_path: Path) -> None:
    text = "userId,movieId,rating,timestamp,source\n1,1,4.5,964982703,web\n2,3,2.0,964982704,app\n"
    movies = "movieId,title,genres,imdbId\n1,A (1999),Drama,1\n3,B (2001),Comedy,2\n"
    zpath = build_csv_zip(tmp_path / "a.zip", ratings_text=text, movies_text=movies)
    release = read_release(zpath, "csv")
    assert list(release.ratings.columns) == list(RATINGS_DTYPES)
    assert release.ratings["rating"].tolist() == [4.5, 2.0]
    assert list(release.movies.columns) == ["movie_id", "title", "year", "genres"]


def test_extra_field_in_u_data_is_tolerated(tmp_path: Path) -> None:
    data = "1\t1\t4\t881250949\tx\n2\t3\t5\t881250950\ty\n"
    items = "\n".join(ml100k_item_lines(3)).encode("latin-1")
    zpath = write_zip(tmp_path / "a.zip", {"ml-100k/u.data": data, "ml-100k/u.item": items})
    ratings = read_release(zpath, "ml-100k").ratings
    assert ratings["rating"].tolist() == [4.0, 5.0]
    assert {c: str(t) for c, t in ratings.dtypes.items()} == RATINGS_DTYPES


def test_non_numeric_values_become_nulls_not_a_crash(tmp_path: Path) -> None:
    text = (
        "userId,movieId,rating,timestamp\n1,1,4.5,964982703\n1,2,abc,964982704\n"
        "x,3,3.0,964982705\n2,4, 2.5 ,964982706\n"
    )
    zpath = build_csv_zip(tmp_path / "a.zip", ratings_text=text)
    ratings = read_release(zpath, "csv").ratings
    assert len(ratings) == 4
    assert pd.isna(ratings.loc[1, "rating"]) and ratings.loc[0, "rating"] == 4.5
    assert ratings.loc[3, "rating"] == 2.5  # padded numbers still parse
    assert str(ratings["user_id"].dtype) == "Int64" and pd.isna(ratings.loc[2, "user_id"])
    assert str(ratings["rating"].dtype) == "float32"
    assert str(ratings["movie_id"].dtype) == "int64"  # columns without faults stay plain


def test_non_numeric_rating_in_u_data_becomes_null(tmp_path: Path) -> None:
    data = "1\t1\t4\t881250949\n2\t3\tfive\t881250950\n"
    items = "\n".join(ml100k_item_lines(3)).encode("latin-1")
    zpath = write_zip(tmp_path / "a.zip", {"ml-100k/u.data": data, "ml-100k/u.item": items})
    ratings = read_release(zpath, "ml-100k").ratings
    assert ratings["rating"].isna().tolist() == [False, True]


def test_short_line_is_set_aside_with_its_text(tmp_path: Path) -> None:
    data = "1\t1\t4\t881250949\n2\t3\n3\t2\t5\t881250951\n"
    items = "\n".join(ml100k_item_lines(3)).encode("latin-1")
    zpath = write_zip(tmp_path / "a.zip", {"ml-100k/u.data": data, "ml-100k/u.item": items})
    release = read_release(zpath, "ml-100k")
    assert release.ratings["user_id"].tolist() == [1, 3]
    bad = release.malformed
    assert bad["member"].tolist() == ["ml-100k/u.data"] and bad["text"].tolist() == ["2\t3"]


def test_repeated_movie_id_keeps_first_and_records_the_rest(tmp_path: Path) -> None:
    movies = "movieId,title,genres\n1,A (1999),Drama\n1,A again (1999),Drama\n2,B (2000),War\n"
    zpath = build_csv_zip(tmp_path / "a.zip", movies_text=movies)
    release = read_release(zpath, "csv")
    assert release.movies["title"].tolist() == ["A", "B"]
    assert release.malformed["reason"].tolist() == ["repeated movie_id"]


def _member(zpath: Path, name: str) -> bytes:
    import zipfile

    with zipfile.ZipFile(zpath) as zf:
        return zf.read(name)


# --- real releases --------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_ml100k(ml100k_real: Path) -> None:
    start = time.perf_counter()
    release = read_release(ml100k_real, "ml-100k")
    seconds = time.perf_counter() - start
    assert_canonical(release, 100_000, 1_682)
    assert release.ratings["user_id"].nunique() == 943
    assert release.ratings["movie_id"].nunique() == 1_682
    assert set(release.folds) == {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}
    assert [len(p) for p in release.folds["u1"]] == [80_000, 20_000]
    assert release.users is not None and len(release.users) == 943
    movies = release.movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "Toy Story" and movies.loc[1, "year"] == 1995
    assert movies.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert movies.loc[543, "title"] == "Misérables, Les"
    assert release.malformed.empty
    assert seconds < 5, f"reading ml-100k took {seconds:.2f} s"


@pytest.mark.realdata
def test_real_ml_latest_small(ml_latest_small_real: Path) -> None:
    start = time.perf_counter()
    release = read_release(ml_latest_small_real, "csv")
    seconds = time.perf_counter() - start
    assert_canonical(release, 100_836, 9_742)
    assert release.ratings["user_id"].nunique() == 610
    assert sorted(release.ratings["rating"].unique().tolist()) == [x / 2 for x in range(1, 11)]
    movies = release.movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "Toy Story" and movies.loc[1, "year"] == 1995
    assert movies.loc[40697, "title"] == "Babylon 5" and pd.isna(movies.loc[40697, "year"])
    assert movies["year"].isna().sum() == 12
    assert release.malformed.empty
    assert seconds < 5, f"reading ml-latest-small took {seconds:.2f} s"
