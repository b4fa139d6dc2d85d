"""Bad options fail in seconds: one paragraph, exit 2, no traceback, nothing created, no Prefect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys_cli.main import app

runner = CliRunner()

BAD_OPTIONS = [
    (["--dataset", "ml-7"], ["--dataset", "known releases", "ml-100k"]),
    (["--model", "nope"], ["--model", "known models", "combined"]),
    (["--split", "u9"], ["--split", "stratified"]),
    (["--split", "ua", "--dataset", "ml-1m"], ["--split", "does not ship"]),
    (["--top-n", "0"], ["--top-n", "greater than or equal to 1"]),
    (["--top-n", "5000"], ["--top-n", "above the 1,682 movies"]),
    (["--seed", "-1"], ["--seed", "greater than or equal to 0"]),
    (["--reject-threshold", "1.5"], ["--reject-threshold", "less than or equal to 1"]),
    (["--reject-threshold", "-0.1"], ["--reject-threshold"]),
    (["--source", ""], ["--source", "is empty"]),
    (["--source", "  "], ["--source", "is empty"]),
    (["--source", "no/such/archive.zip"], ["--source", "does not exist"]),
    (["--refit-mode", "later"], ["--refit-mode", "RECSYS_REFIT_MODE", "'warm'"]),
    (["--explore-slots", "10"], ["--explore-slots 10", "between 0 and --top-n - 1 (9)"]),
    (["--explore-slots", "-1"], ["--explore-slots", "greater than or equal to 0"]),
    (["--explore-slots", "2", "--explore-depth", "10"], ["--explore-depth 10", "above --top-n 10"]),
    (["--explore-coverage", "1.5"], ["--explore-coverage / RECSYS_EXPLORE_COVERAGE", "less than or equal to 1"]),
    (["--explore-coverage", "0"], ["--explore-coverage", "greater than 0"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD_OPTIONS, ids=lambda v: " ".join(v))
def test_bad_option_exits_2_with_one_paragraph_and_creates_nothing(tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = result.output.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    assert not (tmp_path / "data").exists(), "a rejected run must not create its data dir"


def test_top_n_above_the_catalogue_names_the_catalogue(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--top-n", "1683"])
    assert result.exit_code == 2 and "1,682 movies of ml-100k" in result.output


def test_empty_data_dir_from_flag_or_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--data-dir", ""])
    assert result.exit_code == 2 and "--data-dir" in result.output and "is empty" in result.output
    monkeypatch.setenv("RECSYS_DATA_DIR", "")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2 and "RECSYS_DATA_DIR" in result.output
    assert list(tmp_path.iterdir()) == []


def test_data_dir_that_is_a_file(tmp_path):
    target = tmp_path / "data"
    target.write_text("not a folder")
    result = runner.invoke(app, ["run", "--data-dir", str(target)])
    assert result.exit_code == 2 and f"--data-dir {target} is a file" in result.output


def test_data_dir_that_cannot_be_written(tmp_path):
    # /proc refuses new entries even to root, so this holds in CI (which runs as root).
    result = runner.invoke(app, ["run", "--data-dir", "/proc/recsys-test/data"])
    assert result.exit_code == 2, result.output
    assert "--data-dir /proc/recsys-test/data cannot be created" in result.output
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = runner.invoke(app, ["run", "--data-dir", str(locked / "data")])
        assert result.exit_code == 2 and "not writable" in result.output


def test_bad_options_are_refused_before_prefect_or_tensorflow_load(tmp_path):
    """In a fresh interpreter: the check imports neither Prefect nor TensorFlow (seconds, not minutes)."""
    code = (
        "import sys\nfrom recsys_cli.main import app\n"
        "try:\n    app(['run', '--model', 'nope', '--data-dir', 'd'])\n"
        "except SystemExit as exc:\n"
        "    print('EXIT', exc.code, 'prefect' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.stdout.strip().splitlines()[-1] == "EXIT 2 False False", done.stdout + done.stderr
    assert "unknown model 'nope'" in done.stderr
    assert not (tmp_path / "d").exists()


def test_a_long_list_within_the_catalogue_is_accepted(tmp_path):
    from recsys_core.config import load_config

    assert load_config(top_n=1682, dataset="ml-100k", data_dir=str(tmp_path / "d")).top_n == 1682
