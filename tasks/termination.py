"""A SIGTERM that reaches a night is never lost, wherever it lands.

Why: Prefect's flow engine turns SIGTERM into a ``TerminationSignal`` raised wherever the main
thread is. Raised inside a C extension's callback (TensorFlow's structure flattening imports
modules from C), the exception can be swallowed (Python prints "SystemError: <built-in function
__import__> returned a result with an exception set") or come back as an unrelated error
("ValueError: Could not pack sequence"). The night then went on and published after it was
told to stop, or failed with an error that hid the signal.

How: Prefect's SIGTERM bridge (``prefect.utilities.engine._prefect_sigterm_handler``, prefect
3.8.8 as pinned) is replaced by one that records the signal, then does what Prefect's does.
It replaces the module's name too, not only the installed handler, because Prefect checks by
identity that its bridge is installed before it acknowledges a runner's cancel request, and
nested flows reuse the bridge by that same check. Every stage (``tasks.stage``) checks the
record before it starts, and turns whatever it raises after a signal into a
``TerminationSignal``. So at worst the stage the signal was lost in finishes, the next one stops
the run, and the CLI exits 143. The record is never cleared in a process: once told to stop,
no later night in it (a backfill's next one) starts either.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from prefect.exceptions import TerminationSignal

log = logging.getLogger(__name__)
_received = threading.Event()
_MARK = "_recsys_records_termination"


def arm_termination_record() -> None:
    """Make Prefect's SIGTERM bridge record the signal first (idempotent; call inside a flow).

    Inside a flow Prefect has already installed its bridge: in the main thread it is swapped for
    the recording one on the spot. A flow run outside the main thread cannot handle signals and
    installs nothing, so nothing is swapped there."""
    from prefect.utilities import engine

    with engine._prefect_sigterm_bridge_lock:
        bridge = getattr(engine, "_prefect_sigterm_handler", None)
        if bridge is None:  # pragma: no cover - a Prefect other than the pinned one
            log.warning("prefect has no _prefect_sigterm_handler: a SIGTERM swallowed by library code may be lost")
            return
        if not getattr(bridge, _MARK, False):
            original = bridge

            def recording_bridge(sig_num: int, *args: object) -> Any:
                _received.set()
                return original(sig_num, *args)

            setattr(recording_bridge, _MARK, True)
            engine._prefect_sigterm_handler = recording_bridge
            try:
                if signal.getsignal(signal.SIGTERM) is original:
                    signal.signal(signal.SIGTERM, recording_bridge)
            except ValueError:  # not the main thread: no handler to swap
                pass


def termination_received() -> bool:
    """Whether this process's night has been sent SIGTERM (through Prefect's bridge)."""
    return _received.is_set()


def raise_if_terminated() -> None:
    """A stage does not start after a SIGTERM, even one that library code swallowed."""
    if _received.is_set():
        raise TerminationSignal(signal.SIGTERM)
