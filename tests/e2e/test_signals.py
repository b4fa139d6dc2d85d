"""SIGTERM or Ctrl-C during `recsys run`: the flow run ends Crashed, the temporary Prefect server stops too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import build_ml100k_zip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc, no extra dependency)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def run_and_signal(tmp_path: Path, signum: int, whole_group: bool) -> tuple[int, str, set[int]]:
    """`recsys run` on a tiny archive, sent ``signum`` mid-run; (exit status, output, its server pids).

    ``whole_group`` signals the command's process group, as a terminal's Ctrl-C does."""
    archive = build_ml100k_zip(tmp_path / "ml-100k.zip")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = tmp_path / "run.log"
    # The signal must land mid-run: it is sent once the stage before training has logged (Prefect
    # logs a task when it ends), and the refit searches again, so training takes seconds even on
    # this tiny archive (a warm refit finishes the run too soon after training to be a target).
    args = ["run", "--source", str(archive), "--split", "random", "--no-quality-gate", "--data-dir", "data"]
    args += ["--refit-mode", "search"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recsys_cli.main", *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=whole_group,
            # a pytest started in the background inherits SIGINT ignored; the command must not
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 180
        while "Task run 'reuse-model" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        servers = descendants(proc.pid)
        assert servers, "the temporary Prefect server should run as a child process"
        if whole_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        code = proc.wait(timeout=90)
    return code, log.read_text(errors="replace"), servers


def assert_stopped_cleanly(tmp_path: Path, text: str, servers: set[int]) -> None:
    """Crashed (not left Running), told, nothing published, the server gone, no retried logs."""
    assert "Finished in state Crashed" in text and "Stopping temporary server" in text, text[-3000:]
    assert "_latest.json still names the previous run" in text
    # The run's logs were sent before the server stopped and none was queued after: Prefect's log
    # worker retried a stopped server for ~70 s at exit before this (printing this line).
    assert "Error logging to API" not in text, text[-3000:]
    time.sleep(1)
    assert not [p for p in servers if alive(p)], "the temporary server outlived `recsys run`"
    assert not (tmp_path / "data" / "recommendations" / "_latest.json").exists()
    [folder] = (tmp_path / "data" / "runs").iterdir()
    assert (folder / "failure.json").is_file() and not (folder / "model").exists()


def test_sigterm_crashes_the_run_and_stops_the_temporary_server(tmp_path):
    code, text, servers = run_and_signal(tmp_path, signal.SIGTERM, whole_group=False)
    assert code == 143, text[-3000:]
    assert_stopped_cleanly(tmp_path, text, servers)


def test_ctrl_c_to_the_whole_group_still_reports_the_crash_to_the_server(tmp_path):
    """The temporary server has a session of its own, so the group's SIGINT cannot stop it
    while the run reports its crash. Before, it exited 1 after ~70 s of retries, the run left Running."""
    code, text, servers = run_and_signal(tmp_path, signal.SIGINT, whole_group=True)
    assert code == 130, text[-3000:]
    assert_stopped_cleanly(tmp_path, text, servers)
