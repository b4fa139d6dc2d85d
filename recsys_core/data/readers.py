"""Read a release archive into canonical frames, one reader per release layout.

ratings: user_id int64, movie_id int64, rating float32, timestamp int64
movies:  movie_id int64, title str (year removed), year Int16, genres list[str]
users:   user_id int64, age Int16, gender str, occupation str, zip_code str (ml-100k, ml-1m)

Row-level faults never stop a read: a non-numeric id or rating becomes a null (the id column
is then nullable ``Int64``) for the data gate to quarantine, and a line with too few fields
lands in ``Release.malformed`` with its text. Only a wholesale contract break (empty file,
missing column, wrong separator) raises. Text is parsed by pyarrow with explicit column types,
so a 25M-row ratings.csv streams out of the zip without a string copy of every value.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys_core.data.archive import (
    find_member,
    open_release,
)
from recsys_core.data.delimited import TableLayout, read_table, separator_name
from recsys_core.data.frames import (
    ML100K_GENRES,
    build_movies,
    build_users,
    column_to_numpy,
    occupation_name,
    split_genres,
)
from recsys_core.data.schema import RATINGS_DTYPES
from recsys_core.errors import ArchiveError, DataContractError
from recsys_core.memory import release_unused_memory, use_system_arrow_pool

log = logging.getLogger(__name__)

MALFORMED_COLUMNS = ("member", "line", "reason", "text")


@dataclass
class Release:
    """Everything read from one archive; ``malformed`` holds lines no column could be read from."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    folds: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = field(default_factory=dict)
    users: pd.DataFrame | None = None
    malformed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({c: pd.Series(dtype="str") for c in MALFORMED_COLUMNS})
    )


_RATINGS_TYPES = {
    "user_id": pa.int64(),
    "movie_id": pa.int64(),
    "rating": pa.float32(),
    "timestamp": pa.int64(),
}
_RATINGS_100K = TableLayout("\t", _RATINGS_TYPES, what="ratings")
_RATINGS_1M = TableLayout("::", _RATINGS_TYPES, what="ratings")
_RATINGS_CSV = TableLayout(
    ",",
    _RATINGS_TYPES,
    header={
        "user_id": ("userId", "user_id"),
        "movie_id": ("movieId", "movie_id"),
        "rating": ("rating",),
        "timestamp": ("timestamp",),
    },
    quoted=True,
    what="ratings",
)
_ITEM_100K = TableLayout(
    "|",
    {
        "movie_id": pa.int64(), "title": pa.string(), "release_date": pa.string(),
        "video_release_date": pa.string(), "imdb_url": pa.string(),
        **{f"g{i}": pa.string() for i in range(len(ML100K_GENRES))},
    },
    encoding="latin-1",
    what="movies",
)  # fmt: skip
_MOVIES_1M = TableLayout(
    "::",
    {"movie_id": pa.int64(), "title": pa.string(), "genres": pa.string()},
    encoding="latin-1",
    what="movies",
)
_MOVIES_CSV = TableLayout(
    ",",
    {"movie_id": pa.int64(), "title": pa.string(), "genres": pa.string()},
    header={"movie_id": ("movieId", "movie_id"), "title": ("title",), "genres": ("genres",)},
    encoding="utf-8",
    quoted=True,
    what="movies",
)
_USERS_100K = TableLayout(
    "|",
    {"user_id": pa.int64(), "age": pa.int64(), "gender": pa.string(),
     "occupation": pa.string(), "zip_code": pa.string()},
    encoding="latin-1",
    what="users",
)  # fmt: skip
_USERS_1M = TableLayout(
    "::",
    {"user_id": pa.int64(), "gender": pa.string(), "age": pa.int64(),
     "occupation": pa.int64(), "zip_code": pa.string()},
    encoding="latin-1",
    what="users",
)  # fmt: skip


def read_release(path: Path, layout: str, *, with_folds: bool = True, cutoff: int | None = None) -> Release:
    """Dispatch on the release layout ("ml-100k", "ml-1m", "csv", or "log": ``path`` is a ratings log folder).

    With ``cutoff`` (Unix seconds) only ratings with ``timestamp < cutoff`` are returned (a row with
    no readable timestamp is kept, for the data gate to reject); a log then skips later partitions unread.
    """
    use_system_arrow_pool()  # the frames read here are let go before training: their memory must go back
    if layout == "log":
        from recsys_core.data.ratings_log import read_ratings_log  # it builds on this module

        return read_ratings_log(path, cutoff)
    readers: dict[str, Callable[[zipfile.ZipFile, bool], Release]] = {
        "ml-100k": read_ml100k,
        "ml-1m": read_ml1m,
        "csv": read_csv_release,
    }
    if layout not in readers:
        raise ArchiveError(
            f"No reader for the release layout {layout!r}; known layouts: {sorted([*readers, 'log'])}. Check --dataset."
        )
    with open_release(path) as zf:
        release = readers[layout](zf, with_folds)
    if cutoff is not None:
        late = (release.ratings["timestamp"] >= cutoff).fillna(False).to_numpy(dtype=bool)
        release.ratings = release.ratings[~late].reset_index(drop=True)
    release_unused_memory()  # CSV parsing's free pages: ~0.9 GB at 25M ratings
    return release


def read_ml100k(zf: zipfile.ZipFile, with_folds: bool = True) -> Release:
    """ml-100k: tab-separated u.data, '|'-separated latin-1 u.item with 19 genre flags, u.user."""
    bad: list[dict] = []
    ratings = read_ratings(zf, find_member(zf, "u.data"), _RATINGS_100K, bad)
    item = find_member(zf, "u.item")
    table = read_table(zf, item, _ITEM_100K, bad)
    flags = np.column_stack([pc.equal(table[f"g{i}"], "1").to_numpy(zero_copy_only=False) for i in range(19)])
    genres = [[g for g, on in zip(ML100K_GENRES, row, strict=True) if on and g != "unknown"] for row in flags]
    movies = build_movies(table["movie_id"], table["title"], genres, item, bad)
    folds: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    if with_folds:
        for name in ("u1", "u2", "u3", "u4", "u5", "ua", "ub"):
            base = find_member(zf, f"{name}.base", required=False)
            test = find_member(zf, f"{name}.test", required=False)
            if base and test:
                folds[name] = (
                    read_ratings(zf, base, _RATINGS_100K, bad),
                    read_ratings(zf, test, _RATINGS_100K, bad),
                )
    users_member = find_member(zf, "u.user", required=False)
    users = None
    if users_member:
        t = read_table(zf, users_member, _USERS_100K, bad)
        users = build_users(t, t["occupation"].to_pylist())
    return Release(ratings, movies, folds, users, malformed_frame(bad))


def read_ml1m(zf: zipfile.ZipFile, with_folds: bool = True) -> Release:
    """ml-1m: '::'-separated ratings.dat, latin-1 movies.dat and users.dat (no folds)."""
    bad: list[dict] = []
    ratings = read_ratings(zf, find_member(zf, "ratings.dat"), _RATINGS_1M, bad)
    item = find_member(zf, "movies.dat")
    table = read_table(zf, item, _MOVIES_1M, bad)
    genres = split_genres(table["genres"])
    movies = build_movies(table["movie_id"], table["title"], genres, item, bad)
    users_member = find_member(zf, "users.dat", required=False)
    users = None
    if users_member:
        t = read_table(zf, users_member, _USERS_1M, bad)
        users = build_users(t, [occupation_name(c) for c in t["occupation"].to_pylist()])
    return Release(ratings, movies, {}, users, malformed_frame(bad))


def read_csv_release(zf: zipfile.ZipFile, with_folds: bool = True) -> Release:
    """ml-latest-small / ml-25m / ml-32m: ratings.csv (half stars) and movies.csv ('|' genres)."""
    bad: list[dict] = []
    ratings = read_ratings(zf, find_member(zf, "ratings.csv"), _RATINGS_CSV, bad)
    item = find_member(zf, "movies.csv")
    table = read_table(zf, item, _MOVIES_CSV, bad)
    genres = split_genres(table["genres"])
    movies = build_movies(table["movie_id"], table["title"], genres, item, bad)
    return Release(ratings, movies, {}, None, malformed_frame(bad))


def read_ratings(zf: zipfile.ZipFile, member: str, spec: TableLayout, bad: list[dict]) -> pd.DataFrame:
    """One ratings member as a canonical frame; ids and ratings that do not parse become null."""
    table = read_table(zf, member, spec, bad)
    for col in ("user_id", "movie_id", "rating", "timestamp"):
        if table.num_rows and table[col].null_count == table.num_rows:
            raise DataContractError(
                f"{zf.filename} member {member}: no value in the {col} column is a number. "
                f"Check that the file is {separator_name(spec.sep)}-separated in the order "
                "user, movie, rating, timestamp, or pass --source with an official release."
            )
    return table_to_ratings(table)


def table_to_ratings(table: pa.Table) -> pd.DataFrame:
    """Canonical dtypes; a column with nulls stays nullable (Int64 / NaN) for the data gate."""
    cols: dict[str, object] = {}
    for name, dtype in RATINGS_DTYPES.items():
        cols[name] = column_to_numpy(table[name], dtype)
        table = table.drop_columns([name])  # free each Arrow column once it is converted
    return pd.DataFrame(cols, copy=False)


def malformed_frame(rows: list[dict]) -> pd.DataFrame:
    """Lines set aside by the readers, for the rejects table: member, line, reason, text."""
    frame = pd.DataFrame(rows, columns=list(MALFORMED_COLUMNS))
    frame["line"] = pd.array(frame["line"].tolist(), dtype="Int64")
    for col in ("member", "reason", "text"):
        frame[col] = frame[col].astype("str")
    return frame
