"""`recsys export-log`: a release archive becomes a ratings log folder; bad options exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.data.ratings_log import load_log_spec, read_ratings_log
from recsys_core.data.readers import read_release

runner = CliRunner()


def test_export_writes_a_log_that_reads_back(tiny_ml100k: Path, tmp_path: Path) -> None:
    out = tmp_path / "log"
    result = runner.invoke(app, ["export-log", "--dataset", "ml-100k", "--source", str(tiny_ml100k), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "day partitions" in result.output and f"--dataset log --source {out}" in result.output
    release = read_release(tiny_ml100k, "ml-100k")
    assert len(read_ratings_log(out).ratings) == len(release.ratings)
    assert load_log_spec(out).rating_values == (1.0, 2.0, 3.0, 4.0, 5.0)
    again = runner.invoke(app, ["export-log", "--dataset", "log", "--source", str(out), "--out", str(tmp_path / "b")])
    assert again.exit_code == 2 and "already a ratings log" in again.output
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--out", "{full}"], "not empty"),
        (["--out", ""], "--out is empty"),
        (["--out", "{full}/keep.txt"], "is a file"),
    ],
)
def test_an_unusable_out_exits_2_and_touches_nothing(tiny_ml100k: Path, tmp_path: Path, args, needle) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    args = [a.format(full=full) for a in args]
    result = runner.invoke(app, ["export-log", "--dataset", "ml-100k", "--source", str(tiny_ml100k), *args])
    assert result.exit_code == 2 and needle in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "ml-100k.zip"]
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_a_missing_archive_exits_2(tmp_path: Path) -> None:
    args = ["export-log", "--dataset", "ml-100k", "--source", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp_path / "o").exists()


def test_export_loads_neither_prefect_nor_tensorflow(tiny_ml100k: Path, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom recsys_cli.main import app\n"
        f"try:\n    app(['export-log', '--source', {str(tiny_ml100k)!r}, '--out', 'log'])\n"
        "except SystemExit as exc:\n"
        "    print('EXIT', exc.code, 'prefect' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("RECSYS_DATASET", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.stdout.strip().splitlines()[-1] == "EXIT 0 False False", done.stdout + done.stderr
    assert (tmp_path / "log" / "dataset.json").is_file()
