"""Read a ratings log up to a night's cutoff into a :class:`Release`.

Only the files a night needs are opened: ``dt=`` partitions whose day starts at or after the
cutoff are skipped unread (partition pruning); every other file is read and its rows filtered
to ``timestamp < cutoff``. Row faults go to ``Release.malformed`` for the data gate, which
counts them against ``--reject-threshold`` and writes them to the rejects table; a file that
cannot be read at all stops the read with a :class:`DataContractError` (see the package
docstring for why).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys_core.data.ratings_log.columns import RATING_TYPES, RATINGS_SCHEMA, UnusableColumn, coerce_column
from recsys_core.data.ratings_log.layout import DayFile, check_log_directory, is_pruned, list_rating_files
from recsys_core.data.ratings_log.movies import read_log_movies
from recsys_core.data.readers import Release, malformed_frame, table_to_ratings
from recsys_core.errors import DataContractError
from recsys_core.nights.calendar import cutoff_seconds

log = logging.getLogger(__name__)

READ_ERRORS = (pa.ArrowException, OSError, ValueError)
_TEXT_LIMIT = 500


def read_ratings_log(directory: Path | str, cutoff: int | None = None) -> Release:
    """The log's ratings before ``cutoff`` (Unix seconds; None: all), its movies and malformed rows.

    Nothing in ``directory`` is modified. No folds and no users: a log has neither.
    """
    root = Path(directory)
    check_log_directory(root)
    bad: list[dict] = []
    wanted = [f for f in list_rating_files(root) if not is_pruned(f.day, cutoff)]
    tables = [read_day_file(f, cutoff, bad) for f in wanted]
    table = pa.concat_tables(tables) if tables else RATINGS_SCHEMA.empty_table()
    movies = read_log_movies(root, bad)
    if bad:
        log.warning("ratings log %s: %d malformed row(s) set aside for the rejects table", root, len(bad))
    log.info("ratings log %s: %s ratings from %d of its files", root, f"{table.num_rows:,}", len(wanted))
    return Release(table_to_ratings(table), movies, {}, None, malformed_frame(bad))


def read_day_file(day_file: DayFile, cutoff: int | None, bad: list[dict]) -> pa.Table:
    """One file's usable rows before ``cutoff``, canonical types; faulty rows appended to ``bad``."""
    raw, lines = read_parquet_ratings(day_file) if day_file.is_parquet else read_csv_ratings(day_file, bad)
    typed = pa.table({name: _coerce(day_file, raw, name) for name in RATING_TYPES})
    valid = _all_valid(typed)
    ts = typed["timestamp"].to_numpy(zero_copy_only=False)  # float with NaN where a timestamp is missing
    outside = _outside_day(ts, day_file.day)
    faulty = ~valid | outside
    with np.errstate(invalid="ignore"):  # NaN (no timestamp) is not known to be late
        late = ts >= cutoff if cutoff is not None else np.zeros(len(ts), dtype=bool)
    if faulty.any():
        report = np.flatnonzero(faulty & (outside | ~late))  # a bad row after the cutoff is not tonight's business
        bad.extend(describe_rows(day_file, raw, typed, report, lines))
    return typed.filter(pa.array(~faulty & ~late)).cast(RATINGS_SCHEMA)


def read_parquet_ratings(day_file: DayFile) -> tuple[pa.Table, np.ndarray]:
    """The four canonical columns of a Parquet file, as stored; rows are numbered from 1."""
    try:
        with pq.ParquetFile(day_file.path) as parquet:
            names = parquet.schema_arrow.names
            table = parquet.read(columns=[c for c in RATING_TYPES if c in names])
    except READ_ERRORS as exc:
        raise file_error(day_file, f"it cannot be read as Parquet ({_first_line(exc)})") from None
    _require_columns(day_file, names)
    return table, np.arange(1, table.num_rows + 1)


def read_csv_ratings(day_file: DayFile, bad: list[dict]) -> tuple[pa.Table, np.ndarray]:
    """The four canonical columns of a CSV file with a header; rows with too few or many fields
    go to ``bad``. Returns the table and each row's line number (the header is line 1)."""
    _require_columns(day_file, _csv_header(day_file))
    skipped: list[dict] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        text = (row.text or "")[:_TEXT_LIMIT]
        reason = f"{row.actual_columns} field(s), expected {row.expected_columns}"
        number = row.number if row.number is not None and row.number > 0 else None
        skipped.append({"member": day_file.relative, "line": number, "reason": reason, "text": text})
        return "skip"

    def parse(types: dict[str, pa.DataType], threads: bool = True) -> pa.Table:
        skipped.clear()
        return pacsv.read_csv(
            day_file.path,
            read_options=pacsv.ReadOptions(use_threads=threads),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(RATING_TYPES)),
        )

    types = RATING_TYPES
    try:
        try:
            table = parse(types)
        except pa.ArrowInvalid as exc:  # a value that is not a number: read as text, coerce per value
            if "conversion error" not in str(exc).lower():
                raise
            types = dict.fromkeys(RATING_TYPES, pa.string())
            table = parse(types)
        if any(s["line"] is None for s in skipped):  # threaded parsing does not number lines: once more, in order
            table = parse(types, threads=False)
    except READ_ERRORS as exc:
        raise file_error(day_file, f"it cannot be parsed as comma-separated text ({_first_line(exc)})") from None
    bad.extend(skipped)
    return table, _data_lines(table.num_rows, [s["line"] for s in skipped])


def describe_rows(day_file: DayFile, raw: pa.Table, typed: pa.Table, rows: np.ndarray, lines: np.ndarray) -> list[dict]:
    """Malformed entries (member, line, reason, text) for the given row positions.

    A row with every value usable is there because its timestamp is outside its partition's day.
    """
    if not len(rows):
        return []
    index = pa.array(rows)
    texts = [pc.cast(raw[n].take(index), pa.string(), safe=False).to_pylist() for n in RATING_TYPES]
    nulls = [typed[n].take(index).is_null().to_numpy(zero_copy_only=False) for n in RATING_TYPES]
    out = []
    for j, row in enumerate(rows):
        missing = [name for name, isnull in zip(RATING_TYPES, nulls, strict=True) if isnull[j]]
        if missing:
            reason = f"not a number or missing: {', '.join(missing)}"
        else:
            reason = f"timestamp outside its partition dt={day_file.day}"
        out.append(
            {
                "member": day_file.relative,
                "line": int(lines[row]) if lines[row] > 0 else None,
                "reason": reason,
                "text": ",".join("" if t[j] is None else str(t[j]) for t in texts)[:_TEXT_LIMIT],
            }
        )
    return out


def file_error(day_file: DayFile, problem: str) -> DataContractError:
    """The one paragraph for a ratings file the night cannot use."""
    return DataContractError(
        f"The ratings log file {day_file.path}: {problem}. The run stops rather than leave that file's "
        "ratings out unnoticed; nothing in the log was changed. Replace the file with a good copy (e.g. "
        f"re-export that day), or move it out of {day_file.path.parent} if its ratings should be skipped, "
        "then run again."
    )


def _require_columns(day_file: DayFile, names: list[str]) -> None:
    missing = [c for c in RATING_TYPES if c not in names]
    if missing:
        found = ", ".join(names[:8]) or "none"
        raise file_error(
            day_file,
            f"it has no {', '.join(missing)} column(s) (found: {found}); a ratings file holds the columns "
            f"{', '.join(RATING_TYPES)} (timestamp in Unix seconds)",
        )


def _csv_header(day_file: DayFile) -> list[str]:
    try:
        with open(day_file.path, "rb") as fh:
            first = fh.readline().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise file_error(day_file, f"it cannot be opened ({exc.strerror or exc})") from None
    if not first.strip():
        raise file_error(day_file, "it is empty or its first line is blank, where the header should be")
    return [name.strip().strip('"') for name in first.rstrip("\r\n").split(",")]


def _all_valid(typed: pa.Table) -> np.ndarray:
    valid = np.ones(typed.num_rows, dtype=bool)
    for column in typed.columns:
        if column.null_count:
            valid &= column.is_valid().to_numpy(zero_copy_only=False)
    return valid


def _outside_day(ts: np.ndarray, day: date | None) -> np.ndarray:
    """Rows whose timestamp is known and not within the partition's UTC day."""
    if day is None:
        return np.zeros(len(ts), dtype=bool)
    start = cutoff_seconds(day)
    with np.errstate(invalid="ignore"):
        return (ts < start) | (ts >= start + 86_400)


def _data_lines(n_rows: int, skipped: list[int]) -> np.ndarray:
    """Line numbers of the rows pyarrow kept, given the lines it skipped (-1: lines unknown)."""
    if any(s is None for s in skipped):
        return np.full(n_rows, -1)
    lines = np.arange(2, 2 + n_rows + len(skipped))
    return np.setdiff1d(lines, np.asarray(skipped, dtype=lines.dtype), assume_unique=True)[:n_rows]


def _coerce(day_file: DayFile, raw: pa.Table, name: str) -> pa.ChunkedArray:
    try:
        return coerce_column(raw[name], RATING_TYPES[name])
    except UnusableColumn as exc:
        raise file_error(day_file, f"its column {name!r} {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
