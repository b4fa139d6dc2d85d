"""Run bookkeeping: the run folder and the published champion to compare against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.runtime import flow_run

from recsys_core.publishing import read_manifest
from recsys_core.runs import RunContext, start_run
from tasks.artifacts import logger


@task(name="start-run")
def open_run(data_dir: Path) -> RunContext:
    """The Prefect flow-run name is appended so UI and folders can be matched by eye."""
    run = start_run(Path(data_dir))
    logger().info("run %s (flow run %s), folder %s", run.run_id, flow_run.get_name(), run.folder)
    return run


@task(name="read-champion")
def read_champion(data_dir: Path, dataset: str, split: str) -> dict[str, Any] | None:
    """The published run's manifest, if it is comparable (same dataset and split)."""
    manifest = read_manifest(Path(data_dir))
    if manifest and manifest.get("dataset") == dataset and manifest.get("split") == split:
        return manifest
    return None
