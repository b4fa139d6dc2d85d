"""What operators meet: relative paths, a broken manifest, stale staging, failed runs, the UI's view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.nightly import nightly_recommendations
from recsys_cli.main import app
from recsys_core.publishing.table import read_latest, staging_dir
from recsys_core.runs.failures import FAILURE_FILE
from tests.builders import build_ml100k_zip

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

FAST = {"split": "random", "quality_gate": False, "refit_full": False, "model": "bias", "top_n": 3}
runner = CliRunner()


@pytest.fixture
def archive(tmp_path_factory) -> Path:
    return build_ml100k_zip(tmp_path_factory.mktemp("src") / "ml-100k.zip")


def flow_artifacts(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found if a.key}


def test_relative_data_dir_from_another_working_directory(tmp_path, monkeypatch, archive):
    """`data_dir="data"` resolves against the working directory once; Great Expectations gets absolute paths."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    manifest = nightly_recommendations(source=str(archive), data_dir="data", **FAST)
    assert Path(manifest["path"]).is_absolute()
    assert Path(manifest["path"]).is_relative_to(elsewhere / "data" / "recommendations")
    assert (elsewhere / "data" / "runs" / manifest["run_id"] / "data_docs" / "index.html").is_file()
    # The CLI with a relative source and data dir, from the same folder.
    (elsewhere / "src.zip").write_bytes(archive.read_bytes())
    result = runner.invoke(
        app,
        [
            "run",
            "--source",
            "src.zip",
            "--data-dir",
            "data2",
            "--split",
            "random",
            "--model",
            "bias",
            "--top-n",
            "3",
            "--no-quality-gate",
        ],
    )
    assert result.exit_code == 0, result.output
    latest, table = read_latest(elsewhere / "data2")
    assert len(table) == latest["rows"] > 0
    result = runner.invoke(app, ["recommend", "--user", "1", "--data-dir", "data2", "--top-n", "2"])
    assert result.exit_code == 0 and result.output.count("\n") == 3, result.output


def test_broken_manifest_warns_then_a_run_replaces_it(tmp_path, archive):
    data_dir = tmp_path / "data"
    first = nightly_recommendations(source=str(archive), data_dir=str(data_dir), **FAST)
    manifest = data_dir / "recommendations" / "_latest.json"
    manifest.write_text('{"run_id": "trunc')
    for command in (["recommend", "--user", "1"], ["runs"]):
        result = runner.invoke(app, [*command, "--data-dir", str(data_dir)])
        assert result.exit_code == 1, result.output
        assert "unreadable" in result.output and str(manifest) in result.output, result.output
        assert "Traceback" not in result.output
    # The next run is gated against baselines only, publishes and replaces the broken file.
    second = nightly_recommendations(
        source=str(archive), data_dir=str(data_dir), **{**FAST, "quality_gate": True, "model": "ease"}
    )
    assert json.loads(manifest.read_text())["run_id"] == second["run_id"] != first["run_id"]
    assert runner.invoke(app, ["runs", "--data-dir", str(data_dir)]).exit_code == 0


def test_missing_table_files_are_named(tmp_path, archive):
    data_dir = tmp_path / "data"
    manifest = nightly_recommendations(source=str(archive), data_dir=str(data_dir), **FAST)
    for part in Path(manifest["path"]).glob("part-*.parquet"):
        part.unlink()
    for command in (["recommend", "--user", "1"], ["runs"], ["similar", "--movie", "1"]):
        result = runner.invoke(app, [*command, "--data-dir", str(data_dir)])
        assert result.exit_code == 1, (command, result.output)
        assert manifest["path"] in result.output and "recsys run" in result.output, result.output
        assert "ArrowInvalid" not in result.output


def test_failed_run_cleans_up_and_says_why_in_the_ui(tmp_path, archive):
    data_dir = tmp_path / "data"
    nightly_recommendations(source=str(archive), data_dir=str(data_dir), **FAST)
    # A killed publish left staging behind; the next run sweeps it under the publish lock.
    leftover = staging_dir(data_dir, "20200101T000000Z-dead00")
    leftover.mkdir(parents=True)
    (leftover / "part-00000.parquet").write_bytes(b"partial")
    state = nightly_recommendations(
        source=str(archive),
        data_dir=str(data_dir),
        **{**FAST, "model": "popularity", "quality_gate": True},
        return_state=True,
    )
    assert state.is_failed()
    assert not leftover.exists()
    [failed] = [p for p in (data_dir / "runs").iterdir() if (p / FAILURE_FILE).is_file()]
    note = json.loads((failed / FAILURE_FILE).read_text())
    assert note["stage"] == "quality-gate" and "quality gate" in note["message"]
    assert not (failed / "model").exists() and not (failed / "metrics.json").exists()
    flow_run_id = state.state_details.flow_run_id
    artifacts = flow_artifacts(flow_run_id)
    assert "failure" in artifacts, artifacts.keys()
    assert "`quality-gate`" in artifacts["failure"] and "unchanged" in artifacts["failure"]


def test_a_table_failing_its_check_is_rolled_back(tmp_path, archive, monkeypatch):
    """The publish transaction: check-table fails -> the staged folder goes, readers see nothing new."""
    import tasks.publish as publish
    from recsys_core.errors import PublishError

    data_dir = tmp_path / "data"
    first = nightly_recommendations(source=str(archive), data_dir=str(data_dir), **FAST)
    before = (data_dir / "recommendations" / "_latest.json").read_bytes()

    def broken_check(report, path):
        assert Path(path).is_dir() and any(Path(path).glob("part-*.parquet"))  # it was staged
        raise PublishError(f"The new recommendation table at {path} failed its checks (simulated).")

    monkeypatch.setattr(publish, "raise_if_invalid", broken_check)
    state = nightly_recommendations(source=str(archive), data_dir=str(data_dir), **FAST, return_state=True)
    assert state.is_failed()
    assert (data_dir / "recommendations" / "_latest.json").read_bytes() == before
    staging_root = data_dir / "recommendations" / "_staging"
    assert not staging_root.exists() or not list(staging_root.iterdir())
    [failed] = [p for p in (data_dir / "runs").iterdir() if (p / FAILURE_FILE).is_file()]
    assert json.loads((failed / FAILURE_FILE).read_text())["stage"] == "check-table"
    assert read_latest(data_dir)[0]["run_id"] == first["run_id"]


def test_a_failure_after_publishing_keeps_the_published_runs_folder(tmp_path, archive, monkeypatch):
    """The report stage fails after `_latest.json` moved: the run folder stays servable."""
    import errno

    import tasks.report as report

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "data" / "runs" / "x.png"))

    monkeypatch.setattr(report, "write_plots", full_disk)
    data_dir = tmp_path / "data"
    state = nightly_recommendations(source=str(archive), data_dir=str(data_dir), **FAST, return_state=True)
    assert state.is_failed()
    manifest, table = read_latest(data_dir)  # published before the report failed
    folder = Path(manifest["run_folder"])
    assert (folder / "model").is_dir() and (folder / "catalog.parquet").is_file()
    assert not (folder / FAILURE_FILE).exists()
    failure = flow_artifacts(state.state_details.flow_run_id)["failure"]
    assert "already published" in failure and "`report`" in failure and "disk is full" in failure


def test_a_signal_that_library_code_swallowed_still_stops_the_night(tmp_path, archive, monkeypatch):
    """SIGTERM lost inside a stage (TensorFlow swallows it in C code): the next stage does not
    start, the run ends Crashed and nothing is published (tasks/termination.py)."""
    import signal

    from prefect.exceptions import TerminationSignal

    from recsys_core import pipeline
    from tasks import termination

    delivered = []  # Prefect re-sends the signal to the handler it replaced: this one, not pytest's default
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: delivered.append(signum))
    real_train = pipeline.train

    def train_then_lose_the_signal(*args, **kwargs):
        trained = real_train(*args, **kwargs)
        termination._received.set()  # what the wrapped handler records before Prefect's raises
        return trained

    monkeypatch.setattr(pipeline, "train", train_then_lose_the_signal)
    evaluated = []
    monkeypatch.setattr(pipeline, "evaluate", lambda *args, **kwargs: evaluated.append(args))
    try:
        with pytest.raises(TerminationSignal):  # the run crashes, as on a signal Prefect itself raised
            nightly_recommendations(source=str(archive), data_dir=str(tmp_path / "data"), **FAST)
    finally:
        signal.signal(signal.SIGTERM, previous)
        termination._received.clear()
    assert delivered == [signal.SIGTERM]
    assert not (tmp_path / "data" / "recommendations" / "_latest.json").exists()
    [folder] = (tmp_path / "data" / "runs").iterdir()
    assert evaluated == []  # the stage after the lost signal never started
    failure = json.loads((folder / FAILURE_FILE).read_text())
    # the crashed stage's name comes from the API, which may not have it yet when the hook runs
    assert failure["state"] == "Crashed" and failure["stage"] in ("evaluate", None)
