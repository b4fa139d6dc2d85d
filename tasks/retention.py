"""After publish: keep the last K published runs (never the one _latest.json names)."""

from __future__ import annotations

from pathlib import Path

from recsys_core.publishing.retention import apply_retention
from tasks.artifacts import logger
from tasks.stage import stage


@stage("retention")
def prune_published_runs(data_dir: Path, keep: int) -> list[str]:
    """Disk stays bounded across nights; readers of the latest table are never affected."""
    removed = apply_retention(Path(data_dir), keep)
    logger().info(
        "retention keeps the newest %d nights (and runs); removed %d: %s", keep, len(removed), ", ".join(removed) or "-"
    )
    return removed
