"""The decorator every pipeline stage uses: one place for what all stages share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.failure import remember_failed_stage


def stage(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A Prefect task named ``name`` that names itself in the run's failure report and never
    hashes its inputs: Prefect's default cache policy cloudpickles every input to compute a
    key before each run (1.6 s per 25M-row frame), and no stage's result is cached. The
    download, cached by its own key, is the one task that does not use this."""
    return task(name=name, on_failure=[remember_failed_stage], cache_policy=NO_CACHE, **options)
