"""Which published runs exist, and pruning them to the last K nights.

A published run is a partition ``recommendations/dt=<night>/run_id=<id>/``; its run folder
``runs/<id>/`` holds the model and reports. Retention keeps the current run (``_night.json``) of
the newest ``keep`` nights, drops runs a re-run of their night superseded, and never touches the
run ``_latest.json`` names, whatever its age. A pruned partition is first renamed
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
from recsys_core.publishing.nights import NIGHT_POINTER, read_night
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


def current_runs(data_dir: Path, runs: list[PublishedRun]) -> dict[str, str]:
    """Each night's current run id: its ``_night.json``, else (older layouts) its newest run."""
    current: dict[str, str] = {}
    for run in runs:  # newest first
        if run.dt not in current:
            pointer = read_night(data_dir, run.dt)
            current[run.dt] = (pointer or {}).get("run_id") or run.run_id
    return current


def plan_retention(
    runs: list[PublishedRun], keep: int, latest_run_id: str | None, current: dict[str, str] | None = None
) -> list[PublishedRun]:
    """The runs to delete: all but the current runs of the newest ``keep`` nights and the newest
    ``keep`` runs (a run a re-run superseded a moment ago may still be being read).

    ``runs`` are newest first; ``current`` maps a night to its current run id (default: each
    night's newest run). The run the manifest names is never deleted.
    """
    if keep < 1:
        raise ValueError(f"retention must keep at least 1 night, got {keep}")
    if current is None:
        current = {}
        for run in runs:
            current.setdefault(run.dt, run.run_id)
    kept_nights = sorted(current, reverse=True)[:keep]
    kept = {current[night] for night in kept_nights} | {r.run_id for r in runs[:keep]} | {latest_run_id}
    return [r for r in runs if r.run_id not in kept]


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
        doomed = plan_retention(runs, keep, latest, current_runs(data_dir, runs))
        trash = recommendations_root(data_dir) / TRASH
        for run in doomed:
            trash.mkdir(parents=True, exist_ok=True)
            target = trash / f"{run.dt}-{run.run_id}"
            os.rename(run.path, target)
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(run.run_folder, ignore_errors=True)
            _drop_pointer_of_empty_night(run.path.parent)
            removed.append(run.run_id)
        kept = [r for r in runs if r not in doomed]
        for folder in _stale_run_folders(data_dir, kept, latest):
            shutil.rmtree(folder, ignore_errors=True)
    return removed


def _drop_pointer_of_empty_night(folder: Path) -> None:
    """A night whose last run went loses its pointer and folder."""
    if any(folder.glob("run_id=*")):
        return
    (folder / NIGHT_POINTER).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def describe_published_runs(
    data_dir: Path, *, ignore_manifest_errors: bool = False, include_superseded: bool = False
) -> list[dict[str, Any]]:
    """One row per published night (newest first) for `recsys runs`: its current run, rows from
    the Parquet footers, metrics and online metrics from the night's manifest (or, for runs
    published before nights existed, the run folder's metrics.json)."""
    try:
        manifest = read_manifest(Path(data_dir))
    except ManifestError:
        if not ignore_manifest_errors:
            raise
        manifest = None
    latest = manifest.get("run_id") if manifest else None
    runs = list_published_runs(data_dir)
    current = current_runs(data_dir, runs)
    rows = []
    for run in sorted(runs, key=lambda r: (r.dt, r.run_id), reverse=True):
        is_current = current.get(run.dt) == run.run_id
        if not is_current and not include_superseded:
            continue
        night = (read_night(data_dir, run.dt) or {}) if is_current else {}
        if night.get("run_id") != run.run_id:
            night = {}
        n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(run.path.glob("part-*.parquet")))
        evaluation = night or _read_json(run.run_folder / "metrics.json")
        rows.append(
            {
                "run_id": run.run_id,
                "dt": run.dt,
                "latest": run.run_id == latest,
                "current": is_current,
                "rows": n_rows,
                "model": evaluation.get("model"),
                "split": evaluation.get("split"),
                "metrics": evaluation.get("metrics") or {},
                "online_metrics": night.get("online_metrics"),
                "path": str(run.path),
            }
        )
    return rows


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
