"""Prefect's temporary server under `recsys run`: out of reach of the command's signals, stopped by it.

Without ``PREFECT_API_URL``, Prefect starts a temporary API server as a child process
(``SubprocessASGIServer``, prefect==3.8.8 as pinned). In the command's process group, a
terminal's Ctrl-C or a signal sent to the group (`timeout`, a shell's job control) stops the
server at once, while the flow is still reporting its crash to it. The client then retried the
dead server for ~70 s, gave up with "Connection refused", exited 1, and left the run "Running" in
the database. Here the server gets a session of its own, so the signal reaches `recsys run`
only. The command reports the crash, sends its last logs, and then stops the server itself.
"""

from __future__ import annotations

import logging
import subprocess
from typing import Any


class _IsolatedSubprocess:
    """The ``subprocess`` module as Prefect's server module sees it, except that ``Popen``
    starts a new session (its own process group, no controlling terminal)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:  # noqa: N802 - stands in for subprocess.Popen
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(*args, **kwargs)


def isolate_temporary_server() -> None:
    """Start any temporary server of this process in its own session (idempotent; nothing to do
    when ``PREFECT_API_URL`` names a server, as no temporary one starts then).

    Prefect's server module starts uvicorn with ``subprocess.Popen`` and nothing else there
    spawns processes; only that module's name for ``subprocess`` is replaced. The command must
    then stop the server itself on every signal that ends it (``recsys_cli.main.ENDING_SIGNALS``);
    after SIGKILL, as before, the server is left behind."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    from prefect.server.api import server as prefect_server

    if not isinstance(prefect_server.subprocess, _IsolatedSubprocess):
        prefect_server.subprocess = _IsolatedSubprocess()


def stop_temporary_servers() -> None:
    """After a signal: send the run's last logs and events, then stop the temporary server.

    Prefect stops its temporary server at interpreter exit, after its log and event workers
    have drained. After a signal we stop the server sooner, so it cannot outlive the command,
    and these steps keep that safe:
    - API log handlers are detached first, so nothing new is queued for the server.
    - Queued logs and events are drained with a 5 s limit. The workers share one registry, so
      ``APILogWorker.drain_all`` drains the events worker too.
    - If the drain does not finish, the server is left to Prefect's exit order (drain, then
      stop). Otherwise a worker would retry a stopped server for ~70 s at exit."""
    try:
        from prefect.logging.handlers import APILogHandler, APILogWorker
        from prefect.server.api.server import SubprocessASGIServer
    except ImportError:
        return
    detach_handlers(APILogHandler)
    try:
        _, pending = APILogWorker.drain_all(timeout=5)
    except Exception:  # noqa: BLE001 - best effort while exiting
        return
    if pending:
        return
    for server in list(getattr(SubprocessASGIServer, "_instances", {}).values()):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort while exiting
            pass


def detach_handlers(kind: type[logging.Handler]) -> int:
    """Remove every ``kind`` handler from the root logger and every named logger; how many."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    removed = 0
    for logger in loggers:
        if not isinstance(logger, logging.Logger):  # a PlaceHolder for an unused parent name
            continue
        for handler in [h for h in logger.handlers if isinstance(h, kind)]:
            logger.removeHandler(handler)
            removed += 1
    return removed
