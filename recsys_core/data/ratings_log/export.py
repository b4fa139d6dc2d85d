"""Write a release as a ratings log: one Parquet file per UTC day, the catalogue and dataset.json."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys_core.data.datasets import DatasetSpec
from recsys_core.data.ratings_log.columns import RATING_TYPES, RATINGS_SCHEMA
from recsys_core.data.ratings_log.layout import PARTITION_KEY, RATINGS_DIR, SPEC_FILE
from recsys_core.data.ratings_log.movies import movies_to_table
from recsys_core.data.ratings_log.spec import describe_log_spec
from recsys_core.data.readers import Release
from recsys_core.errors import ConfigError, DataContractError

DAY_SECONDS = 86_400
PART_NAME = "part-0.parquet"
_EPOCH = date(1970, 1, 1)


def export_log(release: Release, spec: DatasetSpec, out_dir: Path) -> dict[str, Any]:
    """Write ``release`` to ``out_dir`` as a day-partitioned log; return what was written.

    ``ratings/dt=YYYY-MM-DD/part-0.parquet`` holds the ratings of that UTC day, then
    ``movies.parquet`` and ``dataset.json``. Everything is written to a hidden sibling folder
    that is renamed into place at the end, so ``out_dir`` either appears whole or not at all.
    Folds, users and the reader's malformed lines are not part of a log and are not written.
    """
    out_dir = Path(out_dir)
    check_export_target(out_dir)
    ratings = ratings_table(release)
    if ratings.num_rows == 0:
        raise DataContractError(f"The {spec.name} release has no ratings, so there is no log to write to {out_dir}.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.export-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        days = write_day_partitions(ratings, staging / RATINGS_DIR)
        pq.write_table(movies_to_table(release.movies), staging / "movies.parquet")
        payload = describe_log_spec(spec, f"exported from {spec.name} by recsys export-log")
        (staging / SPEC_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        publish_folder(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "path": str(out_dir),
        "name": spec.name,
        "ratings": ratings.num_rows,
        "days": len(days),
        "first_day": days[0].isoformat(),
        "last_day": days[-1].isoformat(),
        "movies": len(release.movies),
        "malformed_not_written": len(release.malformed),
    }


def check_export_target(out_dir: Path) -> None:
    """``out_dir`` must not exist, or be an empty folder: an export never overwrites anything."""
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        return
    if out_dir.exists() or out_dir.is_symlink():
        what = "a folder that is not empty" if out_dir.is_dir() else "a file"
        raise ConfigError(
            f"--out {out_dir} is {what}. An export writes a new ratings log and never overwrites one: "
            "pass a folder that does not exist yet (or is empty), or move this one away."
        )
    parent = next((p for p in out_dir.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"--out {out_dir} cannot be created: {parent} is a file. Pass another folder.")


def ratings_table(release: Release) -> pa.Table:
    """The release's ratings in canonical Arrow types; a row without a usable value is refused."""
    frame = release.ratings
    empty = frame[list(RATING_TYPES)].isna().any(axis=1)
    if empty.any():
        raise DataContractError(
            f"{int(empty.sum()):,} ratings of the release have no usable user_id, movie_id, rating or timestamp, "
            "so they cannot be placed in a day. Export an intact release (fetch it again), or run the data gate "
            "on it first and export what passed."
        )
    columns = {
        name: pa.array(frame[name].to_numpy(dtype=typ.to_pandas_dtype()), typ) for name, typ in RATING_TYPES.items()
    }
    return pa.table(columns, schema=RATINGS_SCHEMA)


def write_day_partitions(ratings: pa.Table, folder: Path) -> list[date]:
    """One ``dt=YYYY-MM-DD/part-0.parquet`` per UTC day (rows keep their order within a day)."""
    day_numbers = ratings["timestamp"].to_numpy() // DAY_SECONDS
    order = np.argsort(day_numbers, kind="stable")
    sorted_days = day_numbers[order]
    starts = np.flatnonzero(np.r_[True, sorted_days[1:] != sorted_days[:-1]])
    ends = np.r_[starts[1:], len(order)]
    table = ratings.take(pa.array(order))
    days = []
    for start, end in zip(starts, ends, strict=True):
        day = _EPOCH + timedelta(days=int(sorted_days[start]))
        target = folder / f"{PARTITION_KEY}={day.isoformat()}"
        target.mkdir(parents=True)
        pq.write_table(table.slice(start, end - start), target / PART_NAME)
        days.append(day)
    return days


def publish_folder(staging: Path, out_dir: Path) -> None:
    """Rename the finished folder into place (replacing an empty ``out_dir``)."""
    try:
        os.replace(staging, out_dir)
    except OSError as exc:
        raise ConfigError(
            f"--out {out_dir} could not be created ({exc.strerror or exc}); it may have been filled meanwhile. "
            "Pass a folder that does not exist yet."
        ) from None
