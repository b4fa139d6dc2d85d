"""A SIGTERM that reaches a night is never lost, wherever it lands.

Why: Prefect's flow engine turns SIGTERM into a ``TerminationSignal`` raised wherever the main
thread is. Raised inside a C extension's callback (TensorFlow's structure flattening imports
modules from C), the exception can be swallowed (Python prints "SystemError: <built-in function
__import__> returned a result with an exception set") or come back as an unrelated error
("ValueError: Could not pack sequence"). The night then went on and published after it was
told to stop, or failed with an error that hid the signal.

How: at the start of a night the flow wraps Prefect's handler so that the signal is first
recorded (``arm_termination_record``). Every stage (``tasks.stage``) checks the record before it
starts, and turns whatever it raises after a signal into a ``TerminationSignal``. So at worst
the stage the signal was lost in finishes, the next one stops the run, the run ends Crashed and
nothing more is published.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from prefect.exceptions import TerminationSignal

_received = threading.Event()


def arm_termination_record(fresh: bool = True) -> None:
    """Record SIGTERM before the handler in place (Prefect's, inside a flow) runs.

    Called at the start of each night, in the main thread (elsewhere signals cannot be handled,
    and nothing is armed). With ``fresh`` the record starts empty: a night is stopped only by its
    own signal. A sub-flow (scoring) arms again with ``fresh=False``: Prefect puts its own handler
    back for a sub-flow's duration, and the night's record must survive it."""
    if fresh:
        _received.clear()
    try:
        inner = signal.getsignal(signal.SIGTERM)
    except ValueError:  # pragma: no cover - getsignal works in any thread; kept for symmetry
        return

    def record_then_handle(signum: int, frame: Any) -> None:
        _received.set()
        if callable(inner):
            inner(signum, frame)
        elif inner == signal.SIG_DFL:  # pragma: no cover - Prefect installs its own inside a flow
            raise TerminationSignal(signum)

    try:
        signal.signal(signal.SIGTERM, record_then_handle)
    except ValueError:  # not the main thread (a flow run in a worker thread): nothing to arm
        return


def termination_received() -> bool:
    """Whether this night has been sent SIGTERM (since ``arm_termination_record``)."""
    return _received.is_set()


def raise_if_terminated() -> None:
    """A stage does not start after a SIGTERM, even one that library code swallowed."""
    if _received.is_set():
        raise TerminationSignal(signal.SIGTERM)
