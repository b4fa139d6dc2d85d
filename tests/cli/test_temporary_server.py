"""Prefect's temporary server under `recsys run`: its own session, and nothing logged to it once stopped."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from recsys_cli.temporary_server import detach_handlers, isolate_temporary_server


def test_the_temporary_server_starts_in_a_session_of_its_own(monkeypatch):
    """A terminal's Ctrl-C reaches the command's process group; the server must not be in it."""
    from prefect.server.api import server as prefect_server
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setattr(prefect_server, "subprocess", prefect_server.subprocess)  # restored afterwards
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        isolate_temporary_server()  # a named server: no temporary one will start
    assert prefect_server.subprocess is subprocess
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        isolate_temporary_server()
        isolate_temporary_server()  # idempotent: one wrapper, not two
    shim = prefect_server.subprocess
    assert shim is not subprocess and shim.TimeoutExpired is subprocess.TimeoutExpired  # stop() still works
    child = shim.Popen([sys.executable, "-c", "import os; print(os.getsid(0), os.getpgid(0))"], stdout=subprocess.PIPE)
    out, _ = child.communicate(timeout=60)
    session, group = (int(v) for v in out.split())
    assert session == group == child.pid and session != os.getsid(0)


def test_after_a_signal_no_logger_can_queue_logs_for_the_stopped_server():
    """``detach_handlers`` removes one kind of handler everywhere, and only that kind."""

    class Doomed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise AssertionError("a detached handler was called")

    kept = logging.NullHandler()
    named, child = logging.getLogger("recsys_test_detach"), logging.getLogger("recsys_test_detach.child")
    named.addHandler(Doomed())
    child.addHandler(Doomed())
    child.addHandler(kept)
    try:
        assert detach_handlers(Doomed) == 2
        assert named.handlers == [] and child.handlers == [kept]
        child.warning("goes to the kept handler only")
        assert detach_handlers(Doomed) == 0
    finally:
        child.removeHandler(kept)
