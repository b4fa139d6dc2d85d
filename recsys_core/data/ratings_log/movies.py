"""A ratings log's catalogue (``movies.parquet`` or ``movies.csv``) as the canonical movies frame.

Columns: ``movie_id`` and ``title`` (required), ``genres`` (a '|'-separated string, or in
Parquet a list of strings) and ``year`` (optional). Without a ``year`` column the year is taken
from a title such as 'Toy Story (1995)', as for MovieLens; with one, the title is kept as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys_core.data.frames import build_movies, column_to_numpy, drop_repeated_movies, split_genres
from recsys_core.data.ratings_log.columns import coerce_column
from recsys_core.data.ratings_log.layout import find_movies_file
from recsys_core.data.schema import MOVIES_COLUMNS
from recsys_core.errors import DataContractError

log = logging.getLogger(__name__)

MOVIES_SCHEMA = pa.schema(
    [
        pa.field("movie_id", pa.int64()),
        pa.field("title", pa.string()),
        pa.field("year", pa.int16()),
        pa.field("genres", pa.list_(pa.string())),
    ]
)


def read_log_movies(directory: Path, bad: list[dict]) -> pd.DataFrame:
    """The canonical movies frame; repeated movie ids keep their first row, the rest go to ``bad``."""
    path = find_movies_file(directory)
    member = path.name
    table = _read_movies_table(path)
    missing = [c for c in ("movie_id", "title") if c not in table.column_names]
    if missing:
        raise _movies_error(path, f"has no {', '.join(missing)} column(s) (found: {', '.join(table.column_names)})")
    try:
        ids = coerce_column(table["movie_id"], pa.int64())
        titles = table["title"].cast(pa.string())
        genres = _genres(table)
        years = coerce_column(table["year"], pa.int64()) if "year" in table.column_names else None
    except (TypeError, pa.ArrowException) as exc:
        raise _movies_error(path, f"has a column of an unusable type ({exc})") from None
    if years is None:
        return build_movies(ids, titles, genres, member, bad)
    movies = pd.DataFrame(
        {
            "movie_id": column_to_numpy(ids, "int64"),
            "title": pd.Series(titles.to_pylist(), dtype="str").fillna("").to_numpy(),
            "year": _as_year(years),
            "genres": pd.Series(genres, dtype=object).to_numpy(),
        }
    )
    movies["title"] = movies["title"].astype("str")
    return drop_repeated_movies(movies[list(MOVIES_COLUMNS)], member, bad)


def movies_to_table(movies: pd.DataFrame) -> pa.Table:
    """The canonical movies frame as an Arrow table (for ``movies.parquet``)."""
    return pa.table(
        {
            "movie_id": pa.array(movies["movie_id"], pa.int64(), from_pandas=True),
            "title": pa.array(movies["title"], pa.string(), from_pandas=True),
            "year": pa.array(movies["year"].astype("Int16"), pa.int16(), from_pandas=True),
            "genres": pa.array([list(g) for g in movies["genres"]], pa.list_(pa.string())),
        },
        schema=MOVIES_SCHEMA,
    )


def _read_movies_table(path: Path) -> pa.Table:
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        with path.open("rb") as fh:
            header = fh.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n").split(",")
        as_text = dict.fromkeys((h.strip().strip('"') for h in header), pa.string())  # ids coerced per value
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=as_text))
    except (pa.ArrowException, OSError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _movies_error(path, f"cannot be read ({text})") from None


def _as_year(years: pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """Int16 years; a value outside the Int16 range is no year (<NA>)."""
    values = years.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return values.where(values.abs() < 2**15).astype("Int16").array


def _genres(table: pa.Table) -> list[list[str]]:
    if "genres" not in table.column_names:
        return [[] for _ in range(table.num_rows)]
    column = table["genres"]
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return [[str(g) for g in (row or []) if g is not None] for row in column.to_pylist()]
    return split_genres(column.cast(pa.string()))


def _movies_error(path: Path, problem: str) -> DataContractError:
    return DataContractError(
        f"The ratings log's catalogue {path} {problem}. It holds one row per movie with the columns movie_id "
        "and title, and optionally genres ('|'-separated in CSV, a list in Parquet) and year. Fix the file and "
        "run again; nothing in the log was changed."
    )
