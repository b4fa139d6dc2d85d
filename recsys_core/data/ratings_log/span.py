"""The first and last rating day of a whole log, without reading what a night does not need.

A night reads only through its cutoff, but its messages ("too early: the log runs from ... to
...", "nothing is new since ...") need the whole log's span. Partition names give it for free;
files outside any ``dt=`` partition are read for their timestamp column only.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys_core.data.ratings_log.layout import DayFile, list_rating_files
from recsys_core.nights.calendar import date_of_seconds


def timestamp_span(day_file: DayFile) -> tuple[date, date] | None:
    """Min and max day of an unpartitioned file's timestamps; None when it cannot be read."""
    try:
        if day_file.is_parquet:
            column = pq.read_table(day_file.path, columns=["timestamp"])["timestamp"]
        else:
            options = pacsv.ConvertOptions(include_columns=["timestamp"], column_types={"timestamp": pa.int64()})
            column = pacsv.read_csv(day_file.path, convert_options=options)["timestamp"]
        low, high = pc.min_max(column.cast(pa.int64())).values()
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return None
    if not low.is_valid:
        return None
    return date_of_seconds(low.as_py()), date_of_seconds(high.as_py())


def describe_log_span(directory: Path) -> tuple[date | None, date | None]:
    """UTC days of the log's first and last ratings (partition days, else the files' timestamps)."""
    days: list[date] = []
    for day_file in list_rating_files(Path(directory)):
        if day_file.day is not None:
            days.append(day_file.day)
        else:
            span = timestamp_span(day_file)
            days.extend(span or ())
    return (min(days), max(days)) if days else (None, None)
