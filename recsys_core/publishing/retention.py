"""Which published runs exist, and pruning them to the last K.

A published run is a partition ``recommendations/dt=<day>/run_id=<id>/``; its run folder
``runs/<id>/`` holds the model and reports. Retention keeps the newest ``keep`` published runs
and never the one ``_latest.json`` names, whatever its age. A pruned partition is first renamed
into ``recommendations/_trash/`` (one atomic rename, and dataset readers skip ``_`` folders), so
a reader scanning the dataset never sees half of a run; then it is deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from recsys_core.errors import ManifestError
from recsys_core.publishing.table import publish_lock, read_manifest, recommendations_root

TRASH = "_trash"
STALE_AFTER_S = 24 * 3600


@dataclass(frozen=True)
class PublishedRun:
    run_id: str
    dt: str
    path: Path

    @property
    def run_folder(self) -> Path:
        """``<data_dir>/runs/<run_id>`` (the partition sits at ``<data_dir>/recommendations/dt=/run_id=``)."""
        return self.path.parents[2] / "runs" / self.run_id


def list_published_runs(data_dir: Path) -> list[PublishedRun]:
    """Every published partition, newest first (run ids sort by their UTC start time)."""
    runs = [
        PublishedRun(p.name.removeprefix("run_id="), p.parent.name.removeprefix("dt="), p)
        for p in recommendations_root(data_dir).glob("dt=*/run_id=*")
        if p.is_dir()
    ]
    return sorted(runs, key=lambda r: (r.run_id, r.dt), reverse=True)


def plan_retention(runs: list[PublishedRun], keep: int, latest_run_id: str | None) -> list[PublishedRun]:
    """The runs to delete: all but the newest ``keep``, never the one the manifest names."""
    if keep < 1:
        raise ValueError(f"retention must keep at least 1 run, got {keep}")
    return [r for r in runs[keep:] if r.run_id != latest_run_id]


def _stale_run_folders(data_dir: Path, kept: list[PublishedRun], latest_run_id: str | None) -> list[Path]:
    """Folders of unpublished (failed) runs older than the oldest kept run and idle for a day.

    The idle guard protects a slow run that started before the kept ones and is still going.
    """
    if not kept:
        return []
    oldest = min(r.run_id for r in kept)
    keep_ids = {r.run_id for r in kept} | {latest_run_id}
    cutoff = time.time() - STALE_AFTER_S
    return [
        p
        for p in (Path(data_dir) / "runs").glob("*")
        if p.is_dir() and p.name < oldest and p.name not in keep_ids and p.stat().st_mtime < cutoff
    ]


def apply_retention(data_dir: Path, keep: int) -> list[str]:
    """Delete published runs beyond the newest ``keep`` (and their run folders); returns their ids.

    Holds the publish lock, so the manifest cannot move to another run while we decide.
    """
    data_dir = Path(data_dir)
    removed: list[str] = []
    with publish_lock(data_dir):
        manifest = read_manifest(data_dir)
        latest = manifest.get("run_id") if manifest else None
        runs = list_published_runs(data_dir)
        doomed = plan_retention(runs, keep, latest)
        trash = recommendations_root(data_dir) / TRASH
        for run in doomed:
            trash.mkdir(parents=True, exist_ok=True)
            target = trash / f"{run.dt}-{run.run_id}"
            os.rename(run.path, target)
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(run.run_folder, ignore_errors=True)
            _remove_if_empty(run.path.parent)
            removed.append(run.run_id)
        kept = [r for r in runs if r not in doomed]
        for folder in _stale_run_folders(data_dir, kept, latest):
            shutil.rmtree(folder, ignore_errors=True)
    return removed


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def describe_published_runs(data_dir: Path, *, ignore_manifest_errors: bool = False) -> list[dict[str, Any]]:
    """One row per published run for `recsys runs`: rows from Parquet footers, metrics from the run folder."""
    try:
        manifest = read_manifest(Path(data_dir))
    except ManifestError:
        if not ignore_manifest_errors:
            raise
        manifest = None
    latest = manifest.get("run_id") if manifest else None
    rows = []
    for run in list_published_runs(data_dir):
        n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(run.path.glob("part-*.parquet")))
        metrics_file = run.run_folder / "metrics.json"
        try:
            evaluation = json.loads(metrics_file.read_text())
        except (OSError, ValueError):
            evaluation = {}
        rows.append(
            {
                "run_id": run.run_id,
                "dt": run.dt,
                "latest": run.run_id == latest,
                "rows": n_rows,
                "model": evaluation.get("model"),
                "split": evaluation.get("split"),
                "metrics": evaluation.get("metrics", {}),
                "path": str(run.path),
            }
        )
    return rows
