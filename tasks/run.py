"""Run bookkeeping: the run folder, stale staging, and the published champion to compare against."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from recsys_core.config import NightlyConfig, build_config
from recsys_core.errors import ManifestError
from recsys_core.nights.calendar import parse_as_of
from recsys_core.publishing.nights import list_nights
from recsys_core.publishing.table import read_manifest, sweep_stale_staging
from recsys_core.runs.context import RunContext, start_run
from recsys_core.runs.failures import converts_storage_errors, mark_run_folder
from tasks.artifacts import logger
from tasks.stage import stage


@stage("check-config")
def check_config(parameters: dict[str, Any]) -> NightlyConfig:
    """The flow's parameters as one validated config, paths absolute against the working directory.

    A deployment's `data_dir: data` resolves against the clone (the pull step's directory).
    Without ``as_of`` the night is the flow run's scheduled date (UTC): a late or retried run
    computes its own night, and a manual run (scheduled now) today's.
    """
    config = build_config(parameters)
    if config.as_of is None:
        config = config.model_copy(update={"as_of": scheduled_night()})
    logger().info("night %s; configuration: %s", config.as_of, config.summary())
    return config


def scheduled_night() -> date:
    """The UTC date of the flow run's scheduled start (now, outside a scheduled run)."""
    night = parse_as_of(flow_run.scheduled_start_time)
    assert night is not None
    return night


@stage("start-run")
@converts_storage_errors
def open_run(data_dir: Path, as_of: date | None = None) -> RunContext:
    """Creates the run folder (tied to this flow run) after sweeping staging left by killed runs."""
    swept = sweep_stale_staging(Path(data_dir))
    if swept:
        logger().warning("removed staging left by interrupted runs: %s", ", ".join(swept))
    run = start_run(Path(data_dir), as_of=as_of)
    mark_run_folder(run.folder, flow_run.get_id())
    logger().info("run %s (flow run %s), folder %s", run.run_id, flow_run.get_name(), run.folder)
    return run


@stage("read-champion")
def read_champions(
    data_dir: Path, dataset: str, split: str, as_of: date | None = None, limit: int = 7
) -> list[dict[str, Any]]:
    """Tonight's possible champions, newest first: published nights at or before ``as_of`` (a
    backfilled night is never judged by a model that saw its future) of the same dataset and
    split, at most ``limit``. Without nights on disk (older layouts), ``_latest.json``.

    The gate compares with the newest of them that has enough fresh test users. An unreadable
    manifest is no reason to stop tonight's run: it is gated against the baselines only, and
    publishing replaces the broken file.
    """
    nights = list_nights(Path(data_dir))
    same = [m for m in reversed(nights) if m.get("dataset") == dataset and m.get("split") == split]
    if as_of is not None:
        same = [m for m in same if m["as_of"] <= as_of.isoformat()]
    if nights:
        return same[:limit]
    try:
        manifest = read_manifest(Path(data_dir))
    except ManifestError as exc:
        logger().warning("%s No champion tonight: the quality gate compares with the baselines only.", exc)
        return []
    if manifest and manifest.get("dataset") == dataset and manifest.get("split") == split:
        return [manifest]
    return []
