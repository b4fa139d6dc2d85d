"""A new night is served within 5 s without a restart, and no response mixes two runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from recsys_api.app import create_app
from recsys_core.publishing.table import read_table
from tests.api.conftest import RUN_A, RUN_B, publish_ease

USERS = (1, 2, 3, 40, 999_999)


def expected_lists(manifest: dict) -> dict[int, list[int]]:
    table = read_table(Path(manifest["path"])).sort_values(["user_id", "rank"])
    return {u: table[table.user_id == u].movie_id.tolist() for u in USERS if u in set(table.user_id)}


def test_hot_swap_while_a_thread_sends_requests(tmp_path: Path) -> None:
    first = publish_ease(tmp_path, RUN_A, seed=0, day=1)
    expected = {RUN_A: expected_lists(first)}
    seen: list[tuple[str, str, int, list[int], str]] = []
    errors: list[str] = []
    stop = threading.Event()

    with TestClient(create_app(tmp_path, poll_interval=0.2)) as client:

        def hammer() -> None:
            deadline = time.monotonic() + 30  # bounded in time and count
            for i in range(5_000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                user = USERS[i % len(USERS)]
                r = client.get(f"/users/{user}/recommendations")
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text}")
                    continue
                body = r.json()
                seen.append(
                    (
                        body["run_id"],
                        r.headers["X-Run-Id"],
                        user,
                        [it["movie_id"] for it in body["items"]],
                        body["source"],
                    )
                )

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            time.sleep(0.3)
            second = publish_ease(tmp_path, RUN_B, seed=1, day=2)
            expected[RUN_B] = expected_lists(second)
            published_at = time.monotonic()
            while time.monotonic() - published_at < 5:
                if client.get("/health").json()["run_id"] == RUN_B:
                    break
                time.sleep(0.05)
            swap_seconds = time.monotonic() - published_at
            time.sleep(0.3)
        finally:
            stop.set()
            thread.join(timeout=30)

    assert not errors, errors[:3]
    assert swap_seconds < 5, f"new run served after {swap_seconds:.1f} s"
    runs = [s[0] for s in seen]
    assert RUN_A in runs and RUN_B in runs
    assert runs.index(RUN_B) > 0 and RUN_A not in runs[runs.index(RUN_B) :], "never back to the old run"
    assert expected[RUN_A] != expected[RUN_B]
    for body_run, header_run, user, movies, source in seen:
        assert body_run == header_run
        if source == "personal":
            assert movies == expected[body_run][user], "a response mixed two runs"
