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
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys_core.data.archive import (
    MEMBER_READ_ERRORS,
    damaged_member,
    find_member,
    open_release,
    read_member,
)
from recsys_core.data.schema import RATINGS_DTYPES
from recsys_core.errors import ArchiveError, DataContractError

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
MALFORMED_COLUMNS = ("member", "line", "reason", "text")

_TITLE_YEAR = re.compile(
    r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\s*\)"
    r"(?P<marker>\s*\((?:V|TV)\))?\s*$"  # ml-100k marks videos 'Title (1995) (V)'
)
_INT_PATTERN = r"^-?\d{1,18}$"
_FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_BLOCK_SIZE = 16 << 20  # bigger blocks parse a 25M-row file with less per-block overhead
_INNER_SEP = "\x1f"  # pyarrow wants one delimiter byte; '::' files are rewritten to this


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


@dataclass(frozen=True)
class _Table:
    """How one member is laid out: separator, header or fixed names, wanted columns and types."""

    sep: str
    columns: dict[str, pa.DataType]  # canonical name -> type, in file order when headerless
    header: dict[str, tuple[str, ...]] | None = None  # canonical -> accepted header names
    encoding: str | None = None  # None: numbers only, stream the bytes as they are
    quoted: bool = False
    what: str = "rows"


_RATINGS_TYPES = {
    "user_id": pa.int64(),
    "movie_id": pa.int64(),
    "rating": pa.float32(),
    "timestamp": pa.int64(),
}
_RATINGS_100K = _Table("\t", _RATINGS_TYPES, what="ratings")
_RATINGS_1M = _Table("::", _RATINGS_TYPES, what="ratings")
_RATINGS_CSV = _Table(
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
_ITEM_100K = _Table(
    "|",
    {
        "movie_id": pa.int64(), "title": pa.string(), "release_date": pa.string(),
        "video_release_date": pa.string(), "imdb_url": pa.string(),
        **{f"g{i}": pa.string() for i in range(len(ML100K_GENRES))},
    },
    encoding="latin-1",
    what="movies",
)  # fmt: skip
_MOVIES_1M = _Table(
    "::",
    {"movie_id": pa.int64(), "title": pa.string(), "genres": pa.string()},
    encoding="latin-1",
    what="movies",
)
_MOVIES_CSV = _Table(
    ",",
    {"movie_id": pa.int64(), "title": pa.string(), "genres": pa.string()},
    header={"movie_id": ("movieId", "movie_id"), "title": ("title",), "genres": ("genres",)},
    encoding="utf-8",
    quoted=True,
    what="movies",
)
_USERS_100K = _Table(
    "|",
    {"user_id": pa.int64(), "age": pa.int64(), "gender": pa.string(),
     "occupation": pa.string(), "zip_code": pa.string()},
    encoding="latin-1",
    what="users",
)  # fmt: skip
_USERS_1M = _Table(
    "::",
    {"user_id": pa.int64(), "gender": pa.string(), "age": pa.int64(),
     "occupation": pa.int64(), "zip_code": pa.string()},
    encoding="latin-1",
    what="users",
)  # fmt: skip


def read_release(path: Path, layout: str, *, with_folds: bool = True) -> Release:
    """Dispatch on the release layout ("ml-100k", "ml-1m" or "csv")."""
    readers: dict[str, Callable[[zipfile.ZipFile, bool], Release]] = {
        "ml-100k": read_ml100k,
        "ml-1m": read_ml1m,
        "csv": read_csv_release,
    }
    if layout not in readers:
        raise ArchiveError(
            f"No reader for the release layout {layout!r}; known layouts: {sorted(readers)}. Check --dataset."
        )
    with open_release(path) as zf:
        return readers[layout](zf, with_folds)


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


def read_ratings(zf: zipfile.ZipFile, member: str, spec: _Table, bad: list[dict]) -> pd.DataFrame:
    """One ratings member as a canonical frame; ids and ratings that do not parse become null."""
    table = read_table(zf, member, spec, bad)
    for col in ("user_id", "movie_id", "rating", "timestamp"):
        if table.num_rows and table[col].null_count == table.num_rows:
            raise DataContractError(
                f"{zf.filename} member {member}: no value in the {col} column is a number. "
                f"Check that the file is {_sep_name(spec.sep)}-separated in the order "
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


def column_to_numpy(col: pa.ChunkedArray, dtype: str) -> object:
    """int64/float32 numpy without nulls; pandas nullable Int64 (or float NaN) with them."""
    if col.null_count == 0:
        return col.to_numpy().astype(dtype, copy=False)
    if dtype.startswith("int"):
        return col.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get).array
    return col.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def read_table(zf: zipfile.ZipFile, member: str, spec: _Table, bad: list[dict]) -> pa.Table:
    """Parse one member into an Arrow table with canonical column names and the given types.

    Typed parsing is tried first (fast, lean); if a value does not convert, its column is
    re-read as text and coerced, so that bad values become nulls instead of errors.
    """
    label = f"{zf.filename} member {member}"
    data = _member_bytes(zf, member, spec)
    first = _first_line(zf, member, data)
    if not first.strip():
        raise DataContractError(
            f"{label} is empty: the release has no {spec.what}. Delete the cached archive and "
            "run again, or pass --source with a complete MovieLens release."
        )
    fields = first.split(_delimiter(spec))
    include = _source_columns(label, fields, spec)
    names = None if spec.header else list(spec.columns) + [f"extra_{i}" for i in range(len(fields) - len(spec.columns))]
    seen: list[dict] = []

    def read(types: dict[str, pa.DataType]) -> pa.Table:
        seen.clear()
        return _parse(zf, member, data, spec, names, include, types, seen)

    wanted = {src: spec.columns[canon] for canon, src in include.items()}
    types = dict(wanted)
    for _ in range(len(types) + 1):  # each failure turns at least one column into text
        try:
            table = read(types)
            break
        except pa.ArrowInvalid as exc:
            if "conversion error" not in str(exc).lower():
                raise _parse_error(label, spec, exc) from exc
            column = _failed_column(exc, names or [f.strip().strip('"') for f in fields])
            if column not in types or types[column] == pa.string():
                column = None  # unknown: read every wanted column as text
            types.update({column: pa.string()} if column else dict.fromkeys(types, pa.string()))
            log.warning(
                "%s: column %s has values that are not numbers; they become nulls",
                label,
                column or "(several)",
            )
    else:  # pragma: no cover - text columns cannot fail to convert
        raise DataContractError(f"{label}: could not parse its {spec.what}; check the file.")
    table = _coerce(table, {k: v for k, v in wanted.items() if types[k] == pa.string()})
    table = table.select(list(include.values())).rename_columns(list(include))
    _check_malformed(label, table.num_rows, seen, spec)
    bad.extend({"member": member, **row} for row in seen)
    if table.num_rows == 0:
        raise DataContractError(
            f"{label} has a header but no {spec.what}. Delete the cached archive and run "
            "again, or pass --source with a complete MovieLens release."
        )
    return table


def _member_bytes(zf: zipfile.ZipFile, member: str, spec: _Table) -> bytes | None:
    """Bytes to parse, decoded to UTF-8 and with '::' made one byte; None: stream the member."""
    if spec.encoding is None and len(spec.sep) == 1:
        return None  # ASCII numbers: let pyarrow stream the member (lean on a 25M-row file)
    raw = read_member(zf, member)
    if spec.encoding is not None:
        raw = decode_text(raw, spec.encoding, f"{zf.filename} member {member}").encode("utf-8")
    if len(spec.sep) > 1:
        raw = raw.replace(spec.sep.encode(), _INNER_SEP.encode())
    return raw


def _delimiter(spec: _Table) -> str:
    """The one-byte delimiter pyarrow parses with ('::' is rewritten to _INNER_SEP)."""
    return spec.sep if len(spec.sep) == 1 else _INNER_SEP


def decode_text(data: bytes, encoding: str, label: str) -> str:
    """Decode per release: UTF-8 first; a latin-1 release falls back whole, a UTF-8 one per line.

    ml-100k and ml-1m ship latin-1 text (a re-packed UTF-8 copy is detected and kept); the CSV
    releases are UTF-8, where a stray latin-1/cp1252 line is decoded on its own instead of
    garbling every other title.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if encoding.lower().replace("_", "-") in ("latin-1", "latin1", "iso-8859-1"):
        return data.decode("latin-1")
    lines, fixed = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            fixed.append(number)
            try:
                lines.append(line.decode("cp1252"))
            except UnicodeDecodeError:
                lines.append(line.decode("latin-1"))
    log.warning(
        "%s is not valid %s on %d line(s) (first: %s); decoded those lines as cp1252/latin-1",
        label,
        encoding,
        len(fixed),
        fixed[:5],
    )
    return "\n".join(lines).lstrip("\ufeff")


def _first_line(zf: zipfile.ZipFile, member: str, data: bytes | None) -> str:
    if data is not None:
        end = data.find(b"\n")
        head = data if end < 0 else data[:end]  # no split: that would copy the whole rest
    else:
        try:
            with zf.open(member) as fh:
                head = fh.readline(1 << 20)
        except MEMBER_READ_ERRORS as exc:
            raise damaged_member(zf, member, exc) from exc
    return head.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def _source_columns(label: str, fields: list[str], spec: _Table) -> dict[str, str]:
    """canonical name -> name in the file; a missing column or a wrong separator raises."""
    if spec.header is None:
        if len(fields) < len(spec.columns):
            raise DataContractError(
                f"{label} has {len(fields)} field(s) on its first line; this layout has "
                f"{len(spec.columns)} ({', '.join(spec.columns)}) separated by "
                f"{_sep_name(spec.sep)}. Is the separator right? Check that --dataset matches "
                "the archive given by --source."
            )
        return {c: c for c in spec.columns}
    found = [f.strip().strip('"') for f in fields]
    mapping, missing = {}, []
    for canon, accepted in spec.header.items():
        src = next((a for a in accepted if a in found), None)
        if src is None:
            missing.append(accepted[0])
        else:
            mapping[canon] = src
    if missing:
        hint = " Is the separator right?" if len(found) == 1 else ""
        raise DataContractError(
            f"{label} lacks the column(s) {', '.join(missing)}; its header is {found[:8]} "
            f"and this layout needs {', '.join(a[0] for a in spec.header.values())} separated "
            f"by {_sep_name(spec.sep)}.{hint} Pass --source with an official MovieLens release."
        )
    return mapping


def _parse(
    zf: zipfile.ZipFile,
    member: str,
    data: bytes | None,
    spec: _Table,
    names: list[str] | None,
    include: dict[str, str],
    types: dict[str, pa.DataType],
    seen: list[dict],
) -> pa.Table:
    def on_invalid(row: pacsv.InvalidRow) -> str:
        seen.append(
            {
                "line": row.number,
                "reason": f"{row.actual_columns} field(s), expected {row.expected_columns}",
                "text": (row.text or "").replace(_INNER_SEP, spec.sep)[:500],
            }
        )
        return "skip"

    read_opts = pacsv.ReadOptions(column_names=names, block_size=_BLOCK_SIZE)
    parse_opts = pacsv.ParseOptions(
        delimiter=_delimiter(spec),
        quote_char='"' if spec.quoted else False,
        invalid_row_handler=on_invalid,
    )
    convert_opts = pacsv.ConvertOptions(
        column_types=types, include_columns=list(include.values()), strings_can_be_null=False
    )
    try:
        source = pa.BufferReader(data) if data is not None else zf.open(member)
        with source:
            return pacsv.read_csv(source, read_opts, parse_opts, convert_opts)
    except pa.ArrowInvalid:
        raise
    except MEMBER_READ_ERRORS as exc:
        raise damaged_member(zf, member, exc) from exc


def _failed_column(exc: Exception, file_columns: list[str]) -> str | None:
    """The column a pyarrow conversion error names ('In CSV column #2: ...'), if any."""
    match = re.search(r"CSV column #(\d+)", str(exc))
    index = int(match.group(1)) if match else -1
    return file_columns[index] if 0 <= index < len(file_columns) else None


def _coerce(table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    """Strings -> wanted types; anything that is not a plain number becomes null."""
    for name, typ in types.items():
        if typ == pa.string():
            continue
        text = pc.utf8_trim_whitespace(table[name])
        pattern = _FLOAT_PATTERN if pa.types.is_floating(typ) else _INT_PATTERN
        ok = pc.match_substring_regex(text, pattern)
        clean = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), typ)
        table = table.set_column(table.schema.get_field_index(name), name, clean)
    return table


def _check_malformed(label: str, good: int, seen: list[dict], spec: _Table) -> None:
    """A few short lines are row faults; more bad lines than good ones is a broken file."""
    if seen and len(seen) > good:
        example = seen[0]
        raise DataContractError(
            f"{label}: {len(seen)} line(s) do not have the expected fields (line "
            f"{example['line']}: {example['reason']}: {example['text'][:80]!r}) against {good} "
            f"good one(s). Is the file {_sep_name(spec.sep)}-separated? Pass --source with an "
            "official MovieLens release."
        )
    if seen:
        log.warning("%s: %d malformed line(s) set aside for the rejects table", label, len(seen))


def _parse_error(label: str, spec: _Table, exc: Exception) -> DataContractError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataContractError(
        f"{label} could not be parsed as {_sep_name(spec.sep)}-separated {spec.what} ({text}). "
        "Pass --source with an official MovieLens release."
    )


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ",": "comma", "|": "'|'", "::": "'::'"}.get(sep, repr(sep))


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


def malformed_frame(rows: list[dict]) -> pd.DataFrame:
    """Lines set aside by the readers, for the rejects table: member, line, reason, text."""
    frame = pd.DataFrame(rows, columns=list(MALFORMED_COLUMNS))
    frame["line"] = pd.array(frame["line"].tolist(), dtype="Int64")
    for col in ("member", "reason", "text"):
        frame[col] = frame[col].astype("str")
    return frame
