"""Prefect's SIGTERM bridge records the signal; stages neither start nor hide it after one."""

from __future__ import annotations

import os
import signal

import pytest
from prefect import flow
from prefect.exceptions import TerminationSignal
from prefect.utilities import engine

from tasks import termination
from tasks.stage import stage


@pytest.fixture
def bridge(monkeypatch):
    """Prefect's own bridge installed, as inside a flow; everything put back afterwards."""
    monkeypatch.setattr(engine, "_prefect_sigterm_handler", engine._prefect_sigterm_handler)
    previous = signal.signal(signal.SIGTERM, engine._prefect_sigterm_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        termination._received.clear()


def test_the_bridge_records_the_signal_then_raises_as_prefects_does(bridge):
    termination.arm_termination_record()
    termination.arm_termination_record()  # idempotent: one recording bridge, not two
    installed = signal.getsignal(signal.SIGTERM)
    assert installed is engine._prefect_sigterm_handler  # Prefect's identity checks (cancel handshake) hold
    assert engine.is_prefect_sigterm_handler_installed() and engine.can_ack_control_intent()
    assert not termination.termination_received()
    termination.raise_if_terminated()  # nothing yet
    with pytest.raises(TerminationSignal):
        os.kill(os.getpid(), signal.SIGTERM)
    assert termination.termination_received()
    with pytest.raises(TerminationSignal):
        termination.raise_if_terminated()


def test_inside_a_flow_the_installed_bridge_is_the_recording_one(prefect_harness, monkeypatch):
    monkeypatch.setattr(engine, "_prefect_sigterm_handler", engine._prefect_sigterm_handler)

    @flow
    def armed() -> tuple[bool, bool]:
        termination.arm_termination_record()
        handler = signal.getsignal(signal.SIGTERM)
        return getattr(handler, termination._MARK, False), engine.is_prefect_sigterm_handler_installed()

    assert armed() == (True, True)


@stage("demo-stage")
def _swallowing_stage(value: int) -> int:
    """Stands for a stage whose library code swallowed the signal, or turned it into another error."""
    if value < 0:
        raise ValueError("Could not pack sequence")
    return value


def test_after_a_signal_no_stage_starts_and_errors_become_the_signal():
    try:
        assert _swallowing_stage.fn(3) == 3
        with pytest.raises(ValueError):
            _swallowing_stage.fn(-1)  # no signal: the error is the error
        termination._received.set()
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
    finally:
        termination._received.clear()
