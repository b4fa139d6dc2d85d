"""Tasks as standalone task runs against the session's Prefect test API."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_core.runs.context import start_run
from tasks.clean import merge_and_average
from tasks.download import download_archive
from tasks.load import load_release
from tasks.run import read_champions
from tasks.validate import validate_release

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_download_load_validate_write_run_artifacts(tiny_ml100k, tmp_path):
    run = start_run(tmp_path / "data")
    fetched = download_archive("ml-100k", str(tiny_ml100k), run.cache_dir)
    assert fetched.path == tiny_ml100k and len(fetched.sha256) == 64
    release = load_release(fetched.path, "ml-100k")
    assert {"u1", "ua"} <= set(release.folds)
    gated = validate_release(release, "ml-100k", run.folder)
    assert (run.folder / "validation.html").read_text().count("<tr") > 5
    assert len(gated.rejects) == 0
    clean = merge_and_average(gated.ratings, gated.movies)
    assert len(clean) == len(release.ratings)


def test_validate_writes_rejects_parquet(tiny_ml100k, tmp_path):
    run = start_run(tmp_path / "data")
    release = load_release(tiny_ml100k, "ml-100k")
    release.ratings = release.ratings.copy()
    release.ratings.loc[0, "rating"] = 11.0
    gated = validate_release(release, "ml-100k", run.folder, reject_threshold=0.5)
    rejects = pd.read_parquet(run.folder / "rejects.parquet")
    assert len(rejects) == len(gated.rejects) == 1 and "scale" in rejects["reason"].iloc[0]


def test_champion_only_when_comparable(tmp_path):
    from datetime import date

    from recsys_core.publishing.nights import point_night
    from recsys_core.publishing.table import write_manifest

    write_manifest(tmp_path, {"dataset": "ml-100k", "split": "u1", "metrics": {}})  # before nights existed
    assert len(read_champions(tmp_path, "ml-100k", "u1")) == 1
    assert read_champions(tmp_path, "ml-100k", "ua") == []
    assert read_champions(tmp_path, "ml-1m", "u1") == []
    for night, split in [("1998-01-01", "u1"), ("1998-01-08", "ua"), ("1998-01-15", "u1"), ("1998-01-22", "u1")]:
        point_night(tmp_path, {"as_of": night, "run_id": night, "dataset": "ml-100k", "split": split})
    # newest first, never a night after tonight's, same split only
    assert [m["as_of"] for m in read_champions(tmp_path, "ml-100k", "u1", date(1998, 1, 15))] == [
        "1998-01-15",
        "1998-01-01",
    ]


@pytest.mark.parametrize(
    ("scheduled", "night"),
    [("2024-03-01T03:00:00+00:00", "2024-03-01"), ("2024-03-01T22:30:00-05:00", "2024-03-02")],
)
def test_the_default_night_is_the_scheduled_start_date_in_utc(monkeypatch, scheduled, night):
    """A late or retried run computes the night it was scheduled for, not the day it started."""
    from datetime import date, datetime

    from tasks import run

    monkeypatch.setattr(run.flow_run, "scheduled_start_time", datetime.fromisoformat(scheduled), raising=False)
    assert run.scheduled_night() == date.fromisoformat(night)


def test_no_stage_hashes_its_inputs():
    """Prefect's default cache policy hashes a task's inputs (cloudpickle) before it runs: for
    a 25M-rating frame that is 1.6 s and its pickled bytes per input, and the report stage,
    which takes the release, the split and the model, peaked 2 GB above the rest of the run.
    Only the download is cached (by its own key: source, checksum, size, mtime)."""
    import importlib
    import pkgutil

    from prefect import Task
    from prefect.cache_policies import NO_CACHE

    import tasks

    stages = {}
    for module in pkgutil.iter_modules(tasks.__path__):
        for value in vars(importlib.import_module(f"tasks.{module.name}")).values():
            if isinstance(value, Task):
                stages[value.name] = value
    assert len(stages) > 20
    hashing = {name for name, stage in stages.items() if stage.cache_policy not in (None, NO_CACHE)}
    assert hashing == {"download"}
    assert stages["download"].cache_key_fn is not None
