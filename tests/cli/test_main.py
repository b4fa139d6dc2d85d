"""The `recsys` command: settings precedence, errors without tracebacks, read commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.config import load_config
from recsys_core.publishing.table import run_partition, write_manifest, write_part

runner = CliRunner()


def test_flags_override_environment(monkeypatch):
    monkeypatch.setenv("RECSYS_TOP_N", "7")
    monkeypatch.setenv("RECSYS_DATASET", "ml-1m")
    s = load_config(top_n=None, dataset="ml-100k", check_paths=False)
    assert s.top_n == 7 and s.dataset == "ml-100k"
    monkeypatch.delenv("RECSYS_DATASET")
    assert load_config(check_paths=False).data_dir == Path.cwd() / "data"


def test_models_lists_the_registry():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name in ("biased_mf", "popularity", "bias", "global_mean"):
        assert name in result.output


def test_recommend_without_a_run_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["recommend", "--user", "1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "recsys run" in result.output and "Traceback" not in result.output


def test_recommend_reads_the_latest_table(tmp_path):
    now = datetime(2026, 11, 21, tzinfo=UTC)
    table = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "rank": pd.array([1, 2, 1], dtype="int16"),
            "movie_id": [10, 11, 10],
            "title": ["Ten", "Eleven", "Ten"],
            "score": pd.array([0.9, 0.5, 0.7], dtype="float32"),
            "predicted_rating": pd.array([4.5, 4.0, None], dtype="Float32"),
            "model": "m@v1",
            "run_id": "r",
            "generated_at": pd.Timestamp(now).as_unit("us"),
        }
    )
    folder = write_part(table, run_partition(tmp_path, "r", now)).parent
    write_manifest(tmp_path, {"run_id": "r", "path": str(folder), "users": 2, "model": "m@v1"})
    result = runner.invoke(app, ["recommend", "--user", "1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1. Ten [10]" in result.output and "predicted 4.50" in result.output
    lines = runner.invoke(app, ["recommend", "--user", "1", "--data-dir", str(tmp_path), "--json"]).output.splitlines()
    assert [json.loads(x)["movie_id"] for x in lines] == [10, 11]
    # a ranking-only model publishes no predicted rating: printed without one, null in JSON
    ranked_only = runner.invoke(app, ["recommend", "--user", "2", "--data-dir", str(tmp_path)])
    assert ranked_only.exit_code == 0, ranked_only.output
    assert "1. Ten [10]  score 0.700" in ranked_only.output and "predicted" not in ranked_only.output
    as_json = runner.invoke(app, ["recommend", "--user", "2", "--data-dir", str(tmp_path), "--json"])
    (line,) = as_json.output.splitlines()
    assert json.loads(line)["predicted_rating"] is None
    missing = runner.invoke(app, ["recommend", "--user", "99", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "not in the latest table" in missing.output


def test_synth_writes_a_readable_archive(tmp_path):
    out = tmp_path / "s.zip"
    result = runner.invoke(app, ["synth", "--users", "30", "--movies", "40", "--ratings", "900", "--out", str(out)])
    assert result.exit_code == 0 and out.is_file()
    bad = runner.invoke(app, ["synth", "--users", "30", "--movies", "2", "--ratings", "900", "--out", str(out)])
    assert bad.exit_code == 1 and "--ratings" in bad.output


@pytest.mark.slow
def test_evaluate_prints_one_json_object(tiny_ml100k, tmp_path):
    result = runner.invoke(
        app, ["evaluate", "--source", str(tiny_ml100k), "--split", "u1", "--model", "bias", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "rmse",
        "mae",
        "precision_at_k",
        "recall_at_k",
        "ndcg_at_k",
        "map_at_k",
        "coverage",
        "k",
        "model",
        "split",
        "train_seconds",
    ):
        assert key in metrics
    assert metrics["split"] == "u1" and metrics["k"] == 10


def test_unknown_dataset_and_model_are_clear(tmp_path):
    r = runner.invoke(app, ["evaluate", "--dataset", "ml-7", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "known releases" in r.output and "--dataset" in r.output


def test_models_marks_the_default():
    lines = runner.invoke(app, ["models"]).output.splitlines()
    [default] = [line for line in lines if line.startswith("*")]
    assert default.split()[1] == "combined" and default.endswith("(default)")


def test_runs_columns_stay_aligned_whatever_the_model_label():
    from recsys_cli.main import format_runs_table

    rows = [
        {
            "latest": True,
            "run_id": "20261122T030000Z-aaaaaa",
            "dt": "2026-11-22",
            "rows": 9430,
            "model": "combined@v1[ease@v1+blend@v1(autorec,dot_bias,hybrid_mf)]",
            "split": "stratified",
            "metrics": {"rmse": 0.88, "ndcg_at_k": 0.43, "coverage": 0.2},
            "online_metrics": {"ndcg_at_k": 0.1234, "hit_rate_at_k": 0.5},
        },
        {
            "latest": False,
            "run_id": "20261121T030000Z-bbbbbb",
            "dt": "2026-11-21",
            "rows": 10,
            "model": "bias@v1",
            "split": "random",
            "metrics": {},
        },
    ]
    lines = format_runs_table(rows).splitlines()
    starts = [line.index("2026112") for line in lines[1:]]
    assert len(set(starts)) == 1 and lines[0].index("run_id") == starts[0]
    assert lines[1].split()[-3:] == ["0.2000", "0.1234", "0.5000"] and lines[2].split()[-1] == "-"
    assert lines[1].split()[1] == "2026-11-22" and lines[0].split()[0] == "night"
    split_col = lines[0].index("split")
    assert lines[1][split_col:].startswith("stratified") and lines[2][split_col:].startswith("random")


def test_read_commands_ignore_unrelated_settings(tmp_path, monkeypatch):
    """`recsys runs` reads only the data dir: a bad RECSYS_TOP_N for runs must not stop it."""
    monkeypatch.setenv("RECSYS_TOP_N", "5000")
    monkeypatch.setenv("RECSYS_SOURCE", "")
    result = runner.invoke(app, ["runs", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "No published runs" in result.output
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["runs"]).exit_code == 0


def test_flow_parameters_carry_every_setting(tmp_path, monkeypatch):
    """`recsys run` and `recsys serve` hand the flow the whole configuration (env included)."""
    from recsys_cli.main import flow_parameters
    from recsys_core.config import load_config

    monkeypatch.setenv("RECSYS_SEED", "7")
    monkeypatch.setenv("RECSYS_SHARDS", "3")
    params = flow_parameters(load_config(data_dir=str(tmp_path), check_paths=False))
    assert params["seed"] == 7 and params["n_shards"] == 3 and params["data_dir"] == str(tmp_path)


class TerminationSignal(BaseException):
    """Stands in for Prefect's exception of the same name (matched by name, as Prefect's is)."""


def wrapped_signal() -> TypeError:
    """A SIGTERM that landed while TensorFlow imported: TerminationSignal -> SystemError -> TypeError."""
    try:
        try:
            raise SystemError("<built-in function __import__> returned a result with an exception set") from (
                TerminationSignal("SIGTERM")
            )
        except SystemError:
            raise TypeError("Invalid input to `zip`.")  # noqa: B904 - implicit context, as tf.data does
    except TypeError as exc:
        return exc


def test_a_sigterm_wrapped_by_library_code_still_ends_as_a_termination(monkeypatch):
    import typer

    from recsys_cli import main
    from recsys_cli.main import _guard, termination_in_chain

    stops: list[bool] = []  # the real one would stop this process's servers and API logging
    monkeypatch.setattr(main, "stop_temporary_servers", lambda: stops.append(True))

    exc = wrapped_signal()
    assert isinstance(termination_in_chain(exc), TerminationSignal)
    assert termination_in_chain(ValueError("plain")) is None

    def stopped():
        raise exc

    with pytest.raises(typer.Exit) as ended:
        _guard(stopped)
    assert ended.value.exit_code == 143 and stops == [True]
    with pytest.raises(typer.Exit) as failed:
        _guard(lambda: (_ for _ in ()).throw(ValueError("a real bug")))
    assert failed.value.exit_code == 1


def test_a_closed_terminal_ends_the_command_like_ctrl_c_with_its_own_status(monkeypatch):
    """SIGHUP and SIGQUIT run the same cleanup (the temporary server no longer dies with the
    process group) and exit 128 + the signal's number."""
    import signal

    from recsys_cli import main

    stops: list[bool] = []
    monkeypatch.setattr(main, "stop_temporary_servers", lambda: stops.append(True))
    assert set(main.ENDING_SIGNALS) == {signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}
    for signum, status in ((signal.SIGHUP, 129), (signal.SIGQUIT, 131), (signal.SIGTERM, 143)):
        assert main._interrupted(main._Terminated(f"signal {signum}", signum)).exit_code == status
    assert main._interrupted(KeyboardInterrupt()).exit_code == 130
    assert stops == [True] * 4


def test_the_socks_probe_of_requests_is_not_a_warning_on_the_terminal():
    """A fresh clone's first `make run` printed urllib3's PySocks DependencyWarning (which thread
    imports requests first decides it); flow commands ignore it, and only it."""
    import importlib
    import sys
    import warnings

    from recsys_cli.main import _quiet_known_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _quiet_known_warnings()
        sys.modules.pop("urllib3.contrib.socks", None)
        with pytest.raises(ImportError):  # PySocks is not installed: the probe fails, as in a run
            importlib.import_module("urllib3.contrib.socks")
        warnings.warn("another warning still shows", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another warning still shows"]
