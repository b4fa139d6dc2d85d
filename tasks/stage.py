"""The decorator every pipeline stage uses: one place for what all stages share."""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal

from tasks.failure import remember_failed_stage
from tasks.termination import raise_if_terminated, termination_received


def stage(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A Prefect task named ``name`` that names itself in the run's failure report and never
    hashes its inputs: Prefect's default cache policy cloudpickles every input to compute a
    key before each run (1.6 s per 25M-row frame), and no stage's result is cached. The
    download, cached by its own key, is the one task that does not use this.

    After a SIGTERM (``tasks.termination``) a stage does not start, and what a running stage
    raises becomes a ``TerminationSignal``: a signal that library code swallowed or turned into
    another error still ends the run Crashed."""

    def decorate(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            raise_if_terminated()
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                if termination_received() and not isinstance(exc, TerminationSignal):
                    raise TerminationSignal(signal.SIGTERM) from exc
                raise

        return task(name=name, on_failure=[remember_failed_stage], cache_policy=NO_CACHE, **options)(guarded)

    return decorate
