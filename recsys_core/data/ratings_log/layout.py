"""Where things live in a ratings log folder, and which day files a night's cutoff prunes.

A log is a folder ``DIR`` holding ``ratings/`` (``*.parquet`` or ``*.csv`` files, optionally in
``dt=YYYY-MM-DD/`` subfolders), ``movies.parquet`` or ``movies.csv``, and ``dataset.json``.
Names starting with ``.`` or ``_`` (``_SUCCESS``, ``.crc`` files, half-written temp folders)
are skipped, as Spark and pyarrow do; other files under ``ratings/`` are skipped with a warning.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from recsys_core.errors import DataContractError
from recsys_core.nights.calendar import cutoff_seconds

log = logging.getLogger(__name__)

RATINGS_DIR = "ratings"
SPEC_FILE = "dataset.json"
MOVIES_FILES = ("movies.parquet", "movies.csv")
DATA_SUFFIXES = (".parquet", ".csv")
PARTITION_KEY = "dt"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LOG_CONTENTS = (
    "ratings/ (Parquet or CSV files with user_id, movie_id, rating, timestamp, optionally in dt=YYYY-MM-DD/ "
    'subfolders), movies.parquet or movies.csv, and dataset.json (e.g. {"name": "my-app", '
    '"rating_values": [1, 2, 3, 4, 5]})'
)


@dataclass(frozen=True)
class DayFile:
    """One ratings file: where it is, its path relative to the log, and its partition's day."""

    path: Path
    relative: str  # posix path relative to the log folder, e.g. "ratings/dt=2024-01-02/part-0.parquet"
    day: date | None  # the dt= partition's UTC day; None for a file outside any partition

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"


def check_log_directory(directory: Path) -> None:
    """Raise :class:`DataContractError` (one paragraph) unless ``directory`` looks like a log."""
    root = Path(directory)
    if not root.exists():
        raise DataContractError(
            f"The ratings log folder {root} does not exist. With --dataset log, --source is a folder holding "
            f"{LOG_CONTENTS}; `recsys export-log` writes one from a MovieLens release."
        )
    if not root.is_dir():
        raise DataContractError(
            f"{root} is a file, not a ratings log folder. With --dataset log, --source is a folder holding "
            f"{LOG_CONTENTS}; for a release archive (.zip) pass its --dataset (ml-100k, ml-latest-small, ...)."
        )
    if not (root / RATINGS_DIR).is_dir():
        raise DataContractError(
            f"The ratings log {root} has no {RATINGS_DIR}/ folder. A log holds {LOG_CONTENTS}. "
            "Add the ratings there, or pass the right folder with --source."
        )
    find_movies_file(root)
    if not (root / SPEC_FILE).is_file():
        raise DataContractError(
            f"The ratings log {root} has no {SPEC_FILE}. Write one naming the log and its rating scale, e.g. "
            '{"name": "my-app", "rating_values": [1, 2, 3, 4, 5]} (half stars: [0.5, 1, ..., 5]).'
        )
    if not list_rating_files(root):
        raise DataContractError(
            f"The ratings log {root} has no *.parquet or *.csv file under {RATINGS_DIR}/. Put the ratings there "
            "(optionally in dt=YYYY-MM-DD/ subfolders), or pass the right folder with --source."
        )


def find_movies_file(directory: Path) -> Path:
    """The log's one movies file (``movies.parquet`` or ``movies.csv``)."""
    root = Path(directory)
    found = [root / name for name in MOVIES_FILES if (root / name).is_file()]
    if not found:
        raise DataContractError(
            f"The ratings log {root} has neither movies.parquet nor movies.csv. Add the catalogue "
            "(columns movie_id, title, and optionally genres and year) as one of them."
        )
    if len(found) > 1:
        raise DataContractError(
            f"The ratings log {root} has both movies.parquet and movies.csv, so which catalogue to use is "
            "unclear. Keep one of them and move the other out of the folder."
        )
    return found[0]


def list_rating_files(directory: Path) -> list[DayFile]:
    """Every ratings file under ``ratings/``, sorted by path (so by day in a dt= layout)."""
    root = Path(directory)
    files, ignored = [], []
    for folder, subdirs, names in os.walk(root / RATINGS_DIR):
        subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
        for name in sorted(names):
            if _is_hidden(name):
                continue
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.suffix.lower() not in DATA_SUFFIXES:
                ignored.append(relative)
                continue
            files.append(DayFile(path, relative, partition_day(root, path)))
    if ignored:
        shown = ", ".join(ignored[:5])
        log.warning(
            "ratings log %s: skipped %d file(s) that are neither .parquet nor .csv: %s", root, len(ignored), shown
        )
    return sorted(files, key=lambda f: f.relative)


def partition_day(root: Path, path: Path) -> date | None:
    """The day of the ``dt=YYYY-MM-DD`` folder ``path`` sits in (None outside any partition)."""
    folders = path.relative_to(root / RATINGS_DIR).parts[:-1]
    keys = [part for part in folders if part.startswith(f"{PARTITION_KEY}=")]
    if not keys:
        return None
    where = root / RATINGS_DIR / Path(*folders)
    if len(keys) > 1:
        raise DataContractError(
            f"The ratings log folder {where} is nested in {len(keys)} dt= partitions; a file belongs to one day. "
            "Move its files into a single dt=YYYY-MM-DD/ folder."
        )
    value = keys[0].split("=", 1)[1]
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise DataContractError(
            f"The ratings log folder {where} has the partition {keys[0]!r}, which is not dt=YYYY-MM-DD (a UTC "
            "day); its files cannot be placed in time. Rename the folder to the day its ratings were made."
        ) from None


def is_pruned(day: date | None, cutoff: int | None) -> bool:
    """True when a night with ``cutoff`` needs nothing from the partition of ``day``.

    A partition is pruned when its day starts at or after the cutoff; for a night's cutoff
    (midnight UTC) that is every day on or after the night. Un-partitioned files are never pruned.
    """
    return day is not None and cutoff is not None and cutoff_seconds(day) >= cutoff


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "_"))
