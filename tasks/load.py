"""Stage 2: read the archive into canonical frames."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from recsys_core.data.datasets import DatasetSpec
from recsys_core.data.readers import Release, read_release
from recsys_core.data.sources import as_spec, is_log
from recsys_core.nights.calendar import cutoff_seconds
from tasks.artifacts import logger
from tasks.stage import stage


@stage("load")
def load_release(archive: Path, dataset: str | DatasetSpec, as_of: date | None = None) -> Release:
    """A release archive is read whole (its span names the dates in errors); a log only through
    the night's cutoff (later ``dt=`` partitions are never opened)."""
    spec = as_spec(dataset)
    cutoff = cutoff_seconds(as_of) if as_of is not None and is_log(spec) else None
    release = read_release(archive, spec.layout, cutoff=cutoff)
    logger().info(
        "read %s ratings, %s movies, folds %s",
        f"{len(release.ratings):,}",
        f"{len(release.movies):,}",
        sorted(release.folds) or "none",
    )
    return release
