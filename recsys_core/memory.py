"""Give memory back to the operating system after large Arrow jobs."""

from __future__ import annotations


def release_arrow_memory() -> None:
    """Return the free pages Arrow's allocator keeps for reuse to the OS.

    pyarrow's default pool (mimalloc here) keeps the pages of freed buffers: reading a 25M-row
    ratings CSV left ~0.9 GB of them resident next to the 0.7 GB table, for the rest of the
    run. A run does one large Arrow job at a time (read, write the training pairs, write the
    table), so keeping them buys nothing."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
