"""After publish: keep the last K published runs (never the one _latest.json names)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.publishing.retention import apply_retention
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage


@task(name="retention", on_failure=[remember_failed_stage], cache_policy=NO_CACHE)
def prune_published_runs(data_dir: Path, keep: int) -> list[str]:
    """Disk stays bounded across nights; readers of the latest table are never affected."""
    removed = apply_retention(Path(data_dir), keep)
    logger().info(
        "retention keeps the newest %d nights (and runs); removed %d: %s", keep, len(removed), ", ".join(removed) or "-"
    )
    return removed
