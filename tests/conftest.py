"""Shared fixtures: real-data paths, synthetic archives, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import build_ml100k_zip

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "recsys_core")

SHARED_DATASETS = Path(
    os.environ.get("RECSYS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)


def shared_archive(name: str) -> Path:
    """Path to a real release in ../shared/datasets, or skip the test with the reason."""
    path = SHARED_DATASETS / f"{name}.zip"
    if not path.is_file():
        pytest.skip(f"real-data test: {path} is absent (set RECSYS_SHARED_DATASETS to its folder)")
    return path


@pytest.fixture
def ml100k_real() -> Path:
    return shared_archive("ml-100k")


@pytest.fixture
def ml_latest_small_real() -> Path:
    return shared_archive("ml-latest-small")


@pytest.fixture
def tiny_ml100k(tmp_path: Path) -> Path:
    """A small synthetic archive in the ml-100k layout, with u1/ua folds."""
    return build_ml100k_zip(tmp_path / "ml-100k.zip")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output readable
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve a temporary folder over HTTP on a free loopback port: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (its start costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(autouse=True)
def _temporary_server_module_restored() -> Iterator[None]:
    """`recsys run` under CliRunner starts later temporary servers in their own session
    (``recsys_cli.temporary_server``); no test leaves that to the next one."""
    yield
    import subprocess
    import sys

    module = sys.modules.get("prefect.server.api.server")
    if module is not None and module.subprocess is not subprocess:
        module.subprocess = subprocess


@pytest.fixture(autouse=True)
def _prefect_logging_on_a_live_stream() -> Iterator[None]:
    """`recsys run` under CliRunner configures Prefect's console handler on the runner's captured
    stream, which closes when the invocation ends; later flow logs would then fail (and, inside a
    flow with log_prints, recurse). Re-configure logging after any test that left such a handler."""
    yield
    import logging
    import sys

    if "prefect" not in sys.modules:
        return
    for handler in logging.getLogger("prefect").handlers + logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None and getattr(stream, "closed", False):
            from prefect.logging.configuration import setup_logging

            setup_logging(incremental=False)
            return
