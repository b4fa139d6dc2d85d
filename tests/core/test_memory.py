"""Freed Arrow-backed frames go back to the operating system."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from recsys_core.memory import _malloc_trim, release_unused_memory, use_system_arrow_pool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads resident memory from /proc")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


@pytest.fixture
def default_pool() -> Iterator[None]:
    """Tests here change the process-wide Arrow pool; put the one they found back."""
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


def _make_and_free_frame() -> None:
    values = pa.array(np.random.default_rng(0).random(30_000_000))  # 240 MB
    frame = pa.table({"x": values}).to_pandas()
    del values, frame


def test_a_pooling_allocator_keeps_freed_pages_until_released(default_pool: None) -> None:
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
    except NotImplementedError:
        pytest.skip("this pyarrow build has no mimalloc pool")
    release_unused_memory()
    _make_and_free_frame()
    before = _rss_mb()
    release_unused_memory()
    assert before - _rss_mb() > 100, "the pool kept the freed frame's pages"


def test_the_system_pool_returns_a_freed_frame_at_once(default_pool: None) -> None:
    use_system_arrow_pool()
    assert pa.default_memory_pool().backend_name == "system"
    start = _rss_mb()
    _make_and_free_frame()
    assert _rss_mb() - start < 100, "the freed frame stayed resident"
    use_system_arrow_pool()  # idempotent
    assert pa.default_memory_pool().backend_name == "system"


def test_release_is_safe_to_repeat() -> None:
    release_unused_memory()
    release_unused_memory()
    assert _malloc_trim() is not None
