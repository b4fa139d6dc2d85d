"""Canonical movies and users frames: titles split from years, genre lists, ml-1m codes named.

The readers parse archive members; this module turns parsed columns into the frames the rest
of the pipeline relies on (``readers`` documents the schema).
"""

from __future__ import annotations

import logging
import re

import pandas as pd
import pyarrow as pa

log = logging.getLogger(__name__)

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
NO_GENRE = ("", "(no genres listed)")
_TITLE_YEAR = re.compile(
    r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\s*\)"
    r"(?P<marker>\s*\((?:V|TV)\))?\s*$"  # ml-100k marks videos 'Title (1995) (V)'
)


def column_to_numpy(col: pa.ChunkedArray, dtype: str) -> object:
    """int64/float32 numpy without nulls; pandas nullable Int64 (or float NaN) with them."""
    if col.null_count == 0:
        return col.to_numpy().astype(dtype, copy=False)
    if dtype.startswith("int"):
        return col.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get).array
    return col.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def split_title_year(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); titles without a year keep year <NA>."""
    raw = raw.fillna("").astype(str).str.strip()
    parts = raw.str.extract(_TITLE_YEAR)
    title = (parts["title"] + parts["marker"].fillna("")).where(parts["title"].notna(), raw)
    year = pd.to_numeric(parts["year"], errors="coerce").astype("Int16")
    return title.astype("str"), year


def split_genres(raw: pa.ChunkedArray | pd.Series) -> list[list[str]]:
    """'Adventure|Comedy' -> ['Adventure', 'Comedy']; '(no genres listed)' -> []."""
    values = raw.to_pylist() if isinstance(raw, pa.ChunkedArray) else raw.fillna("").tolist()
    return [[] if (g or "") in NO_GENRE else g.split("|") for g in values]


def build_movies(
    ids: pa.ChunkedArray,
    titles: pa.ChunkedArray,
    genres: list[list[str]],
    member: str,
    bad: list[dict],
) -> pd.DataFrame:
    """Canonical movies; a repeated movie id keeps its first row, the rest go to malformed."""
    title, year = split_title_year(pd.Series(titles.to_pylist(), dtype="str"))
    movies = pd.DataFrame(
        {
            "movie_id": column_to_numpy(ids, "int64"),
            "title": title.to_numpy(),
            "year": year.array,
            "genres": pd.Series(genres, dtype=object).to_numpy(),
        }
    )
    movies["title"] = movies["title"].astype("str")
    return drop_repeated_movies(movies, member, bad)


def drop_repeated_movies(movies: pd.DataFrame, member: str, bad: list[dict]) -> pd.DataFrame:
    """A repeated movie id keeps its first row; the others go to ``bad`` (malformed) with ``member``."""
    dup = movies["movie_id"].duplicated(keep="first") & movies["movie_id"].notna()
    if dup.any():
        log.warning("%s: %d repeated movie id(s); kept the first row of each", member, dup.sum())
        bad.extend(
            {"member": member, "line": None, "reason": "repeated movie_id", "text": f"{m}|{t}"}
            for m, t in zip(movies.loc[dup, "movie_id"], movies.loc[dup, "title"], strict=True)
        )
        movies = movies[~dup]
    return movies.reset_index(drop=True)


def occupation_name(code: int | None) -> str | None:
    """ml-1m stores occupations as codes 0..20 (its README lists the names)."""
    if code is None:
        return None
    return ML1M_OCCUPATIONS[code] if 0 <= code < len(ML1M_OCCUPATIONS) else str(code)


def build_users(table: pa.Table, occupation: list[str | None]) -> pd.DataFrame:
    """Canonical users: user_id int64, age Int16, gender/occupation/zip_code str."""
    age = table["age"].to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return pd.DataFrame(
        {
            "user_id": column_to_numpy(table["user_id"], "int64"),
            "age": age.astype("Int16").array,
            "gender": pd.Series(table["gender"].to_pylist(), dtype="str").array,
            "occupation": pd.Series(occupation, dtype="str").array,
            "zip_code": pd.Series(table["zip_code"].to_pylist(), dtype="str").array,
        }
    )
