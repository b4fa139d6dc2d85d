"""Retention keeps the newest K published runs and never the one _latest.json names."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.publishing.retention import (
    apply_retention,
    describe_published_runs,
    list_published_runs,
    plan_retention,
)
from recsys_core.publishing.table import read_latest, recommendations_root, write_manifest


def publish_fake(data_dir: Path, run_id: str, day: str = "2026-01-01", rows: int = 3) -> Path:
    """A partition with one small Parquet file and a run folder with metrics.json."""
    part = recommendations_root(data_dir) / f"dt={day}" / f"run_id={run_id}"
    part.mkdir(parents=True)
    pd.DataFrame({"user_id": range(rows), "run_id": run_id}).to_parquet(part / "part-00000.parquet")
    run_folder = data_dir / "runs" / run_id
    (run_folder / "model").mkdir(parents=True)
    (run_folder / "metrics.json").write_text(json.dumps({"model": "m@v1", "split": "u1", "metrics": {"rmse": 0.9}}))
    return part


def name_latest(data_dir: Path, run_id: str, part: Path) -> None:
    write_manifest(data_dir, {"run_id": run_id, "path": str(part), "rows": 3})


def run_ids(n: int) -> list[str]:
    return [f"202601{d:02d}T030000Z-00000{d % 10}" for d in range(1, n + 1)]


def test_keeps_newest_k_and_removes_partitions_and_run_folders(tmp_path: Path) -> None:
    ids = run_ids(5)
    parts = {rid: publish_fake(tmp_path, rid, day=f"2026-01-{i:02d}") for i, rid in enumerate(ids, 1)}
    name_latest(tmp_path, ids[-1], parts[ids[-1]])
    removed = apply_retention(tmp_path, keep=2)
    assert sorted(removed) == ids[:3]
    assert [r.run_id for r in list_published_runs(tmp_path)] == [ids[4], ids[3]]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ids[3:]
    assert not list(recommendations_root(tmp_path).glob("dt=2026-01-01"))  # empty day folders go too
    assert not list((recommendations_root(tmp_path) / "_trash").iterdir())
    manifest, table = read_latest(tmp_path)
    assert manifest["run_id"] == ids[-1] and len(table) == 3


def test_never_deletes_the_run_latest_names_even_when_old(tmp_path: Path) -> None:
    """E.g. newer runs were published by hand elsewhere, or the manifest was rolled back."""
    ids = run_ids(4)
    parts = {rid: publish_fake(tmp_path, rid) for rid in ids}
    name_latest(tmp_path, ids[0], parts[ids[0]])
    removed = apply_retention(tmp_path, keep=1)
    assert sorted(removed) == ids[1:3]
    assert sorted(r.run_id for r in list_published_runs(tmp_path)) == [ids[0], ids[3]]
    assert read_latest(tmp_path)[0]["run_id"] == ids[0]


def test_plan_rejects_keep_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_retention([], 0, None)


def test_failed_run_folders_go_only_when_old_and_idle(tmp_path: Path) -> None:
    ids = run_ids(4)
    parts = {rid: publish_fake(tmp_path, rid) for rid in ids[2:]}
    name_latest(tmp_path, ids[3], parts[ids[3]])
    stale, busy = tmp_path / "runs" / ids[0], tmp_path / "runs" / ids[1]
    stale.mkdir(parents=True)
    busy.mkdir(parents=True)
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (day_ago, day_ago))  # a failed run from days ago; `busy` may still be running
    apply_retention(tmp_path, keep=5)
    assert not stale.exists() and busy.exists()


def test_describe_published_runs_for_the_cli(tmp_path: Path) -> None:
    ids = run_ids(2)
    parts = {rid: publish_fake(tmp_path, rid, day=f"2026-01-0{i}", rows=4) for i, rid in enumerate(ids, 1)}
    name_latest(tmp_path, ids[1], parts[ids[1]])
    rows = describe_published_runs(tmp_path)
    assert [(r["run_id"], r["dt"], r["latest"], r["rows"]) for r in rows] == [
        (ids[1], "2026-01-02", True, 4),
        (ids[0], "2026-01-01", False, 4),
    ]
    assert rows[0]["metrics"]["rmse"] == 0.9 and rows[0]["split"] == "u1"
    assert describe_published_runs(tmp_path / "empty") == []


def test_a_rerun_night_lists_once_and_its_superseded_run_is_pruned(tmp_path: Path) -> None:
    """Two runs of one night: the night's pointer names the current one (here the older run id)."""
    ids = run_ids(3)
    parts = {rid: publish_fake(tmp_path, rid, day="2026-01-05") for rid in ids[:2]}
    parts[ids[2]] = publish_fake(tmp_path, ids[2], day="2026-01-06")
    night = recommendations_root(tmp_path) / "dt=2026-01-05" / "_night.json"
    night.write_text(json.dumps({"run_id": ids[0], "as_of": "2026-01-05", "metrics": {"ndcg_at_k": 0.3}}))
    name_latest(tmp_path, ids[2], parts[ids[2]])
    rows = describe_published_runs(tmp_path)
    assert [(r["dt"], r["run_id"]) for r in rows] == [("2026-01-06", ids[2]), ("2026-01-05", ids[0])]
    assert rows[1]["metrics"] == {"ndcg_at_k": 0.3}  # from the night's manifest
    assert len(describe_published_runs(tmp_path, include_superseded=True)) == 3
    assert apply_retention(tmp_path, keep=2) == []  # the superseded run is still among the newest 2
    assert apply_retention(tmp_path, keep=1) == [ids[1], ids[0]]
    assert not night.exists() and not night.parent.exists()
