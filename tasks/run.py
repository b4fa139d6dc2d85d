"""Run bookkeeping: the run folder, stale staging, and the published champion to compare against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.runtime import flow_run

from recsys_core.config import NightlyConfig, build_config
from recsys_core.errors import ManifestError
from recsys_core.publishing.table import read_manifest, sweep_stale_staging
from recsys_core.runs.context import RunContext, start_run
from recsys_core.runs.failures import converts_storage_errors, mark_run_folder
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage


@task(name="check-config", on_failure=[remember_failed_stage])
def check_config(parameters: dict[str, Any]) -> NightlyConfig:
    """The flow's parameters as one validated config, paths absolute against the working directory.

    A deployment's `data_dir: data` resolves against the clone (the pull step's directory).
    """
    config = build_config(parameters)
    logger().info("configuration: %s", config.summary())
    return config


@task(name="start-run", on_failure=[remember_failed_stage])
@converts_storage_errors
def open_run(data_dir: Path) -> RunContext:
    """Creates the run folder (tied to this flow run) after sweeping staging left by killed runs."""
    swept = sweep_stale_staging(Path(data_dir))
    if swept:
        logger().warning("removed staging left by interrupted runs: %s", ", ".join(swept))
    run = start_run(Path(data_dir))
    mark_run_folder(run.folder, flow_run.get_id())
    logger().info("run %s (flow run %s), folder %s", run.run_id, flow_run.get_name(), run.folder)
    return run


@task(name="read-champion", on_failure=[remember_failed_stage])
def read_champion(data_dir: Path, dataset: str, split: str) -> dict[str, Any] | None:
    """The published run's manifest, if it is comparable (same dataset and split).

    An unreadable manifest is no reason to stop tonight's run: it is gated against the baselines
    only, and publishing replaces the broken file.
    """
    try:
        manifest = read_manifest(Path(data_dir))
    except ManifestError as exc:
        logger().warning("%s No champion tonight: the quality gate compares with the baselines only.", exc)
        return None
    if manifest and manifest.get("dataset") == dataset and manifest.get("split") == split:
        return manifest
    return None
