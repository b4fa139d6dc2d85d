"""Stage 2: read the archive into canonical frames."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from recsys_core.data.datasets import get_dataset
from recsys_core.data.readers import Release, read_release
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage


@task(name="load", on_failure=[remember_failed_stage])
def load_release(archive: Path, dataset: str) -> Release:
    release = read_release(archive, get_dataset(dataset).layout)
    logger().info(
        "read %s ratings, %s movies, folds %s",
        f"{len(release.ratings):,}",
        f"{len(release.movies):,}",
        sorted(release.folds) or "none",
    )
    return release
