"""Downstream readers and publish faults, with real processes and the real publish task.

Each publish runs the flow's publish tasks ``stage-table``, ``check-table`` and ``publish``
(staging, Great Expectations check, atomic rename, manifest replace, publish lock) on a small table scored by a bias
baseline; only its Prefect artifact and logger calls are swapped for plain ones. Publishers
and readers run as separate processes, as downstream programs and concurrent runs would.

Run as a script (``python -m tests.e2e.test_readers publish DATA_DIR TOP_N [mode]``) this
module is the publisher those tests start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow]

# The reader: loops reading _latest.json and then the table it names (and the same run through
# a Hive-partitioned dataset scan) until STOP exists; prints what it saw as JSON.
READER = r"""
import json, sys, time
from pathlib import Path
import pyarrow.dataset as ds
import pyarrow.parquet as pq

root, stop, ready = Path(sys.argv[1]) / "recommendations", Path(sys.argv[2]), Path(sys.argv[3])
reads, seen, problems = 0, set(), []
while not stop.exists() or reads == 0:
    try:
        manifest = json.loads((root / "_latest.json").read_text())
    except FileNotFoundError:
        continue
    table = pq.read_table(manifest["path"])
    run_ids = set(table.column("run_id").to_pylist())
    if run_ids != {manifest["run_id"]} or table.num_rows != manifest["rows"]:
        problems.append({"manifest": manifest["run_id"], "rows": manifest["rows"],
                         "saw": sorted(run_ids), "n": table.num_rows})
    part = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        filter=ds.field("run_id") == manifest["run_id"], columns=["user_id"])
    if part.num_rows != manifest["rows"]:
        problems.append({"scan": manifest["run_id"], "rows": manifest["rows"], "n": part.num_rows})
    reads += 1
    seen.add(manifest["run_id"])
    ready.touch()
print(json.dumps({"reads": reads, "runs": sorted(seen), "problems": problems[:5], "n_problems": len(problems)}))
"""


def publish_args(data_dir: Path, top_n: int) -> dict[str, Any]:
    """Inputs of the publish task: a bias baseline's top-N on synthetic ratings (no TensorFlow)."""
    import numpy as np
    import pandas as pd

    from recsys_core.data.archive_cache import FetchedArchive
    from recsys_core.models.baselines import BiasBaseline
    from recsys_core.prep.encoding import fit_vocabulary
    from recsys_core.prep.interactions import to_interactions
    from recsys_core.runs.context import start_run
    from recsys_core.serving.topn import recommend_top_n
    from tests.builders import synth_ratings

    ratings = synth_ratings().astype({"rating": "float32"})
    movies = pd.DataFrame({"movie_id": np.arange(1, 41, dtype=np.int64), "title": [f"Movie {i}" for i in range(1, 41)]})
    vocab = fit_vocabulary(ratings)
    interactions = to_interactions(ratings, vocab)
    model = BiasBaseline().fit(interactions)
    top = recommend_top_n(model, interactions.to_csr(), top_n)
    archive = FetchedArchive(
        path=data_dir / "none.zip", source="test", md5="", sha256="0" * 64, size=0, from_cache=True
    )
    evaluation = {"metrics": {"rmse": 1.0, "k": 10}, "split": "random", "baselines": {}}
    return {
        "tops": [top],
        "vocab": vocab,
        "movies": movies,
        "ratings": ratings,
        "model": model,
        "run": start_run(data_dir),
        "top_n": top_n,
        "dataset": "ml-100k",
        "evaluation": evaluation,
        "archive": archive,
    }


def publish_steps(args: dict[str, Any]) -> dict[str, Any]:
    """The flow's three publish tasks in order: stage, check, commit."""
    import tasks.publish as publish

    staging_keys = ("tops", "vocab", "movies", "ratings", "model", "run", "top_n")
    staged = publish.stage_recommendations.fn(**{k: args[k] for k in staging_keys})
    checks = publish.check_staged_table.fn(staged, args["ratings"], args["vocab"], args["top_n"])
    rest = {k: v for k, v in args.items() if k != "tops"}
    return publish.publish_recommendations.fn(staged, checks, **rest)


def publish_once(data_dir: Path, top_n: int, mode: str = "normal") -> dict[str, Any]:
    """One real publish. ``mode``: normal | slow (holds the lock 1.5 s) | kill (SIGKILL after staging)."""
    import contextlib
    import logging
    import signal

    import recsys_core.publishing.steps as steps
    import tasks.publish as publish

    events: dict[str, float] = {}
    real_lock, real_promote = steps.publish_lock, steps.promote

    @contextlib.contextmanager
    def timed_lock(*a: Any, **k: Any):
        with real_lock(*a, **k):
            events["locked"] = time.time()
            if mode == "slow":
                time.sleep(1.5)
            yield
            events["unlocked"] = time.time()

    def killing_promote(staging: Path, final: Path) -> Path:
        assert any(staging.glob("part-*.parquet")), "staging should hold the written table"
        os.kill(os.getpid(), signal.SIGKILL)
        return real_promote(staging, final)

    quiet = {"publish_markdown": lambda *a, **k: None, "logger": lambda: logging.getLogger("test-publisher")}
    faults = {"publish_lock": timed_lock, **({"promote": killing_promote} if mode == "kill" else {})}
    # restored afterwards: other tests use the real modules
    with mock.patch.multiple(publish, **quiet), mock.patch.multiple(steps, **faults):
        manifest = publish_steps(publish_args(data_dir, top_n))
    return {"run_id": manifest["run_id"], "rows": manifest["rows"], **events}


def start_publisher(data_dir: Path, top_n: int, mode: str = "normal") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.test_readers", "publish", str(data_dir), str(top_n), mode],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"},
    )


def finish(proc: subprocess.Popen, timeout: int = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"publisher failed ({proc.returncode}):\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def test_reader_sees_old_or_new_table_never_a_mix(tmp_path: Path) -> None:
    """A reader process loops over manifest+table while another process publishes 6 runs."""
    data_dir, stop = tmp_path / "data", tmp_path / "stop"
    first = publish_once(data_dir, 3)  # a first table, so the reader always has one
    ready = tmp_path / "ready"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(data_dir), str(stop), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():  # publish only once the reader is reading
            assert reader.poll() is None and time.monotonic() < deadline, reader.communicate()[1][-3000:]
            time.sleep(0.05)
        published = [publish_once(data_dir, n) for n in (4, 5, 6, 7, 8, 9)]  # sizes differ: a mix would show
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err[-3000:]
    seen = json.loads(out)
    assert seen["n_problems"] == 0, seen["problems"]
    assert seen["reads"] > 20, seen  # it really read during the publishes
    assert len(set(seen["runs"])) >= 2, seen  # and saw the table change under it
    assert set(seen["runs"]) <= {r["run_id"] for r in [first, *published]}, seen


def test_run_killed_during_publish_keeps_previous_table_and_next_run_succeeds(tmp_path: Path) -> None:
    from recsys_core.publishing.table import read_latest, recommendations_root

    data_dir = tmp_path / "data"
    first = publish_once(data_dir, 5)
    manifest_file = recommendations_root(data_dir) / "_latest.json"
    before = manifest_file.read_bytes()

    killed = start_publisher(data_dir, 7, "kill")
    killed.communicate(timeout=120)
    assert killed.returncode == -9  # SIGKILL after staging was written, before promote

    assert manifest_file.read_bytes() == before
    manifest, table = read_latest(data_dir)
    assert manifest["run_id"] == first["run_id"] and len(table) == first["rows"]
    leftovers = list((recommendations_root(data_dir) / "_staging").glob("run_id=*/part-*.parquet"))
    assert leftovers, "the killed run's staging stays (nothing ran its cleanup) but is invisible"
    assert len(list(recommendations_root(data_dir).glob("dt=*/run_id=*"))) == 1

    nxt = publish_once(data_dir, 7)  # the lock died with the process; the next run publishes
    manifest, table = read_latest(data_dir)
    assert manifest["run_id"] == nxt["run_id"] and len(table) == nxt["rows"] == 30 * 7


def test_two_runs_at_once_are_serialised_by_the_lock(tmp_path: Path) -> None:
    from recsys_core.errors import PublishError
    from recsys_core.publishing.table import publish_lock, read_latest, read_table, recommendations_root

    data_dir = tmp_path / "data"
    slow = start_publisher(data_dir, 4, "slow")
    lock_file = recommendations_root(data_dir) / ".publish.lock"

    def slow_holds_lock() -> bool:
        if not lock_file.exists():
            return False
        try:
            with publish_lock(data_dir, wait=False):
                return False
        except PublishError:
            return True

    deadline = time.monotonic() + 60
    while not slow_holds_lock():
        assert slow.poll() is None and time.monotonic() < deadline, "the slow publisher never took the lock"
        time.sleep(0.05)
    with pytest.raises(PublishError, match="Another run is publishing"):
        with publish_lock(data_dir, wait=False):
            pass
    fast = start_publisher(data_dir, 6)  # starts while the lock is held: must wait, not interleave
    a, b = finish(slow), finish(fast)
    first, second = sorted((a, b), key=lambda r: r["locked"])
    assert first["unlocked"] <= second["locked"], (a, b)
    for run in (a, b):
        [folder] = recommendations_root(data_dir).glob(f"dt=*/run_id={run['run_id']}")
        assert len(read_table(folder)) == run["rows"]
    manifest, table = read_latest(data_dir)
    assert manifest["run_id"] == second["run_id"] and len(table) == second["rows"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        result = publish_once(Path(sys.argv[2]), int(sys.argv[3]), *(sys.argv[4:5] or ["normal"]))
        print(json.dumps(result))
