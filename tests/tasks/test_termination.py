"""A SIGTERM is recorded before Prefect's handler runs; stages neither start nor hide it after one."""

from __future__ import annotations

import os
import signal

import pytest
from prefect.exceptions import TerminationSignal

from tasks import termination
from tasks.stage import stage


@pytest.fixture
def armed():
    """The record armed over a handler that only counts (what Prefect's would raise is not needed)."""
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        termination.arm_termination_record()
        yield calls
    finally:
        signal.signal(signal.SIGTERM, previous)
        termination._received.clear()


def test_the_signal_is_recorded_then_handed_to_the_handler_in_place(armed):
    assert not termination.termination_received()
    termination.raise_if_terminated()  # nothing yet
    os.kill(os.getpid(), signal.SIGTERM)
    assert armed == [signal.SIGTERM] and termination.termination_received()
    with pytest.raises(TerminationSignal):
        termination.raise_if_terminated()


def test_arming_again_starts_a_new_record_unless_a_sub_flow_arms(armed):
    os.kill(os.getpid(), signal.SIGTERM)
    termination.arm_termination_record(fresh=False)  # the scoring sub-flow, inside the same night
    assert termination.termination_received()
    termination.arm_termination_record()  # the next night
    assert not termination.termination_received()
    os.kill(os.getpid(), signal.SIGTERM)  # through both wrappers to the handler they wrap, once
    assert termination.termination_received() and armed == [signal.SIGTERM, signal.SIGTERM]


@stage("demo-stage")
def _swallowing_stage(value: int) -> int:
    """Stands for a stage whose library code swallowed the signal, or turned it into another error."""
    if value < 0:
        raise ValueError("Could not pack sequence")
    return value


def test_after_a_signal_no_stage_starts_and_errors_become_the_signal(armed):
    assert _swallowing_stage.fn(3) == 3
    with pytest.raises(ValueError):
        _swallowing_stage.fn(-1)  # no signal: the error is the error
    os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(TerminationSignal):
        _swallowing_stage.fn(3)  # does not start
    termination._received.clear()

    @stage("demo-late")
    def late(value: int) -> int:
        termination._received.set()  # the signal arrives while the stage runs
        raise ValueError("Could not pack sequence")

    with pytest.raises(TerminationSignal) as raised:
        late.fn(1)
    assert isinstance(raised.value.__cause__, ValueError)
