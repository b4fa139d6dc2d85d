"""The nightly deployment end to end on a real Prefect server, as an operator would run it.

Starts `prefect server start` on a free loopback port (own PREFECT_HOME), creates the process
pool `local`, deploys from prefect.yaml, checks the cron schedule is live (the scheduler made
a run for 03:00 UTC), triggers `nightly-recommendations/nightly` on a tiny local archive, runs
a worker until the run ends, and checks through the API and on disk that it published.
Everything talks to the server over HTTP or through CLI subprocesses, so it does not touch
any Prefect settings of the test process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsys_core.publishing.table import read_latest
from tests.conftest import SHARED_DATASETS

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = "nightly-recommendations/nightly"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = [pytest.mark.flow, pytest.mark.slow, pytest.mark.timeout(600)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_env(home: Path, api_url: str) -> dict[str, str]:
    """The caller's environment minus its Prefect settings, pointed at the test server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        # Let the recent-deployments scheduler notice the new deployment quickly.
        PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS="2",
        PREFECT_WORKER_QUERY_SECONDS="2",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return env


def spawn(args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> subprocess.Popen:
    """A background process in its own group so teardown can end it and its children."""
    fh = open(log, "wb")  # noqa: SIM115 - closed with the process in stop()
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


def tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def prefect_cli(args: list[str], env: dict[str, str], timeout: int = 120, cwd: Path = REPO) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def wait_until(check: Any, timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_with_worker(
    client: httpx.Client, flow_run_id: str, env: dict[str, str], log: Path, cwd: Path = REPO
) -> dict[str, Any]:
    """Start a worker on pool `local`, wait for the flow run to end, stop the worker; its state."""
    args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", "local", "--limit", "1"]
    worker = spawn(args, env, log, cwd=cwd)

    def finished() -> dict[str, Any] | None:
        assert worker.poll() is None, f"worker exited:\n{tail(log)}"
        state = client.get(f"/flow_runs/{flow_run_id}").raise_for_status().json()["state"]
        return state if state and state["type"] in TERMINAL else None

    try:
        return wait_until(finished, 420, f"flow run {flow_run_id} to finish", interval=2)
    finally:
        stop(worker)


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A real server on a free port; (api_url, env for CLI calls, log folder). Always stopped."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = prefect_env(tmp_path / "prefect-home", api)
    server = spawn(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env,
        logs / "server.log",
    )

    def healthy() -> bool:
        assert server.poll() is None, f"server exited:\n{tail(logs / 'server.log')}"
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 120, "the Prefect server to answer /health")
        yield api, env, logs
    finally:
        stop(server)


def copy_clone(target: Path) -> Path:
    """The repository's tracked files in a fresh folder: a clone whose `./data` is the test's own."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / rel).is_file():
            shutil.copy2(REPO / rel, dest)
    return target


def test_nightly_deployment_runs_on_a_real_server(prefect_server, tmp_path: Path) -> None:
    """Deployed from a clone with prefect.yaml's own parameters; only `source` is overridden."""
    from tests.builders import build_ml100k_zip

    api, env, logs = prefect_server
    clone = copy_clone(tmp_path / "clone")
    real = SHARED_DATASETS / "ml-100k.zip"
    archive = real if real.is_file() else build_ml100k_zip(tmp_path / "ml-100k.zip")
    data_dir = clone / "data"  # prefect.yaml's relative `data_dir: data`, resolved in the clone
    client = httpx.Client(base_url=api, timeout=30)

    prefect_cli(["work-pool", "create", "local", "--type", "process", "--overwrite"], env, cwd=clone)
    out = prefect_cli(["--no-prompt", "deploy", "--all"], env, timeout=180, cwd=clone)
    assert DEPLOYMENT in out, out

    # The deployment is what prefect.yaml says, and its pull step points at this clone.
    dep = client.get(f"/deployments/name/{DEPLOYMENT}").raise_for_status().json()
    assert dep["work_pool_name"] == "local"
    assert dep["entrypoint"] == "flows/nightly.py:nightly_recommendations"
    assert {"dataset", "source", "data_dir", "model", "top_n"} <= set(dep["parameters"])
    assert dep["global_concurrency_limit"]["limit"] == 1
    [sched] = dep["schedules"]
    assert sched["active"] is True and sched["slug"] == "nightly-0300-utc"
    assert sched["schedule"]["cron"] == "0 3 * * *" and sched["schedule"]["timezone"] == "UTC"
    [pull] = dep["pull_steps"]
    assert Path(pull["prefect.deployments.steps.set_working_directory"]["directory"]) == clone
    assert dep["parameters"]["data_dir"] == "data" and dep["parameters"]["model"] == "combined"

    # The scheduler is alive (SQLAlchemy pin): it creates the 03:00 UTC runs by itself.
    def scheduled_runs() -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [dep["id"]]}}, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}
        return client.post("/flow_runs/filter", json=body).raise_for_status().json()

    runs = wait_until(scheduled_runs, 60, "the scheduler to create the nightly runs", interval=2)
    starts = [datetime.fromisoformat(r["expected_start_time"].replace("Z", "+00:00")) for r in runs]
    assert all((t.hour, t.minute, t.utcoffset().total_seconds()) == (3, 0, 0) for t in starts), starts

    # Trigger one run now with the deployment's own parameters, only `source` overridden (the
    # real release when ../shared is there; the tiny synthetic one cannot pass the quality gate).
    params = {"source": str(archive)} if real.is_file() else {"source": str(archive), "quality_gate": False}
    run = client.post(f"/deployments/{dep['id']}/create_flow_run", json={"parameters": params})
    run = run.raise_for_status().json()
    state = run_with_worker(client, run["id"], env, logs / "worker.log", cwd=clone)
    assert state["type"] == "COMPLETED", f"{state}\nworker log:\n{tail(logs / 'worker.log', 8000)}"

    # Published: the manifest names a complete table produced by this run.
    manifest, table = read_latest(data_dir)
    assert manifest["rows"] == len(table) > 0
    assert table["run_id"].unique().tolist() == [manifest["run_id"]]
    assert set(table["rank"]) == set(range(1, 11)) and manifest["model"].startswith("combined")
    assert Path(manifest["path"]).is_relative_to(data_dir)
    assert json.loads((data_dir / "recommendations" / "_latest.json").read_text())["run_id"] == manifest["run_id"]

    # The UI has the run's artifacts under their stable keys.
    body = {"flow_runs": {"id": {"any_": [run["id"]]}}}
    keys = {a["key"] for a in client.post("/artifacts/filter", json=body).raise_for_status().json()}
    assert {"metrics", "published-table", "validation-summary", "run-report"} <= keys, keys
    assert (Path(manifest["run_folder"]) / "report.html").is_file()

    # A permanent failure (the source is not a MovieLens archive): the run is Failed with the
    # reason in its state message, and the published table and manifest stay as they were.
    broken = tmp_path / "broken.zip"
    broken.write_text("not a zip archive")
    before = (data_dir / "recommendations" / "_latest.json").read_bytes()
    bad = (
        client.post(f"/deployments/{dep['id']}/create_flow_run", json={"parameters": {**params, "source": str(broken)}})
        .raise_for_status()
        .json()
    )
    state = run_with_worker(client, bad["id"], env, logs / "worker-2.log", cwd=clone)
    assert state["type"] == "FAILED", state
    assert "zip" in state["message"].lower() and str(broken) in state["message"], state["message"]
    assert (data_dir / "recommendations" / "_latest.json").read_bytes() == before
    body = {"flow_runs": {"id": {"any_": [bad["id"]]}}, "artifacts": {"key": {"any_": ["failure"]}}}
    [failure] = client.post("/artifacts/filter", json=body).raise_for_status().json()
    assert "at stage `" in failure["data"] and str(broken) in failure["data"], failure["data"]


def test_serve_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    """An ephemeral server never fires schedules, so `recsys serve` must refuse and explain."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    done = subprocess.run(
        [sys.executable, "-m", "recsys_cli.main", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "PREFECT_API_URL is not set" in done.stderr and "make server" in done.stderr
    assert "export PREFECT_API_URL=http://127.0.0.1:4200/api" in done.stderr
