"""Night pointers: the newest night is `_latest.json` whatever order nights are published in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from recsys_core.publishing.nights import latest_night_before, list_nights, point_night, read_night
from recsys_core.publishing.table import read_manifest, write_manifest


def manifest(as_of: str, run_id: str) -> dict:
    return {"as_of": as_of, "run_id": run_id, "path": f"/x/{run_id}"}


def test_out_of_order_nights_never_displace_the_newest(tmp_path: Path) -> None:
    assert point_night(tmp_path, manifest("2024-01-08", "a"))
    assert not point_night(tmp_path, manifest("2024-01-01", "b"))  # a backfill of an older night
    assert read_manifest(tmp_path)["run_id"] == "a"
    assert read_night(tmp_path, "2024-01-01")["run_id"] == "b"
    assert point_night(tmp_path, manifest("2024-01-15", "c"))
    assert [m["as_of"] for m in list_nights(tmp_path)] == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert read_manifest(tmp_path)["run_id"] == "c"


def test_rerunning_a_night_moves_its_pointer_and_latest_when_newest(tmp_path: Path) -> None:
    point_night(tmp_path, manifest("2024-01-01", "a"))
    point_night(tmp_path, manifest("2024-01-08", "b"))
    assert not point_night(tmp_path, manifest("2024-01-01", "a2"))
    assert read_night(tmp_path, date(2024, 1, 1))["run_id"] == "a2"
    assert point_night(tmp_path, manifest("2024-01-08", "b2"))
    assert read_manifest(tmp_path)["run_id"] == "b2"


def test_a_manifest_from_before_nights_is_replaced(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"run_id": "old", "path": "/x"})
    assert point_night(tmp_path, manifest("1998-04-23", "new"))
    (tmp_path / "recommendations" / "_latest.json").write_text("{not json")
    # an unreadable _latest.json is repaired from the newest night, not from the night being published
    assert not point_night(tmp_path, manifest("1998-04-01", "older-night"))
    assert read_manifest(tmp_path)["run_id"] == "new"


def test_latest_night_before(tmp_path: Path) -> None:
    for night, run in [("2024-01-01", "a"), ("2024-01-08", "b")]:
        point_night(tmp_path, manifest(night, run))
    assert latest_night_before(tmp_path, date(2024, 1, 8))["run_id"] == "a"
    assert latest_night_before(tmp_path, date(2024, 1, 8), inclusive=True)["run_id"] == "b"
    assert latest_night_before(tmp_path, date(2024, 1, 1)) is None
    (tmp_path / "recommendations" / "dt=2024-01-05").mkdir()
    (tmp_path / "recommendations" / "dt=2024-01-05" / "_night.json").write_text("garbage")
    assert latest_night_before(tmp_path, date(2024, 1, 6))["run_id"] == "a"
