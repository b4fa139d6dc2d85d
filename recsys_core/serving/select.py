"""Exact top-N per row by chunk maxima: the selection half of all-user scoring.

A full ``argpartition`` of each 59k-wide score row costs more than the matrix product itself,
so each row is cut into chunks; one max per chunk, then a threshold: the n-th best chunk
maximum. At least n scores reach it, so every top-n score does too, and only chunks whose
maximum reaches it can hold one. Those few chunks are read again and only their scores at or
above the threshold are ranked. Ties follow ``np.argsort(-scores, kind="stable")``: equal
scores rank the lower column first; NaN and -inf are never returned.

Scores live in a ``(chunk, rows, chunks)`` buffer (see ``Layout``): a row's chunk maxima are
then an elementwise max over ``chunk`` contiguous slices, which vectorises. The per-row work
runs in one compiled kernel (``select_kernel``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_core.serving.select_kernel import compiled

CHUNK = 128  # movies per chunk; 64 measured the same at ml-25m shapes (fewer candidates, more chunks)
DIRECT_MAX_MOVIES = 4096  # below this each movie is its own chunk (no reduction pass)


@dataclass(frozen=True)
class Layout:
    """Where movie m sits in a score buffer of shape ``(chunk, rows, chunks)``.

    Movie m is at ``[m // chunks, row, m % chunks]``; chunk j of a row holds movies j,
    j + chunks, j + 2 * chunks, ... Slots past the catalogue hold -inf.
    """

    n_movies: int
    chunk: int  # movies per chunk; 1 when the catalogue is small enough to rank directly
    chunks: int

    @property
    def width(self) -> int:
        return self.chunk * self.chunks

    @classmethod
    def for_catalogue(cls, n_movies: int, n: int) -> Layout:
        chunks = -(-n_movies // CHUNK)
        if n_movies <= DIRECT_MAX_MOVIES or chunks < 8 * (n + 1):
            return cls(n_movies, 1, n_movies)
        return cls(n_movies, CHUNK, chunks)

    def new_buffer(self, rows: int) -> np.ndarray:
        return np.empty((self.chunk, rows, self.chunks), np.float32)

    def view(self, buf: np.ndarray, rows: int) -> np.ndarray:
        """A C-contiguous (chunk, rows, chunks) buffer in the first cells of ``buf``.

        A short last tile gets a compact view rather than ``buf[:, :rows]``, so the kernel
        always walks contiguous rows.
        """
        return buf.reshape(-1)[: self.width * rows].reshape(self.chunk, rows, self.chunks)

    def pad(self, buf: np.ndarray) -> None:
        """-inf in the slots past the catalogue (the last ``width - n_movies`` movies)."""
        full, rest = divmod(self.n_movies, max(1, self.chunks))
        if full < self.chunk:
            buf[full, :, rest:] = -np.inf
            buf[full + 1 :] = -np.inf

    def load(self, buf: np.ndarray, scores: np.ndarray) -> None:
        """Copy (rows, n_movies) scores into a (chunk, rows, chunks) buffer, padding included."""
        rows, k = scores.shape[0], self.chunks
        full, rest = divmod(self.n_movies, max(1, k))
        buf[:full] = scores[:, : full * k].reshape(rows, full, k).transpose(1, 0, 2)
        if rest:
            buf[full, :, :rest] = scores[:, full * k :]
        self.pad(buf)


def select_top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the n largest scores per row, best first; -1 / -inf pad.

    Ties rank the lower column first (as a stable argsort of ``-scores``); NaN ranks last.
    """
    n_rows, n_cols = scores.shape
    layout = Layout.for_catalogue(n_cols, n)
    buf = layout.new_buffer(n_rows)
    layout.load(buf, scores)
    return select_padded(buf, n, layout)


def select_padded(buf: np.ndarray, n: int, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-n of each row of a (chunk, rows, chunks) float32 buffer; reads, never writes it."""
    if not (buf.flags.c_contiguous and buf.flags.writeable and buf.dtype == np.float32):
        buf = np.array(buf, np.float32, order="C")  # the kernel takes writable arrays; with nothing seen it only reads
    rows = buf.shape[1]
    no_seen = np.zeros(rows + 1, np.int64)
    return select_unseen(buf, n, layout, np.arange(rows, dtype=np.int64), no_seen, np.zeros(0, np.int32))


def select_unseen(
    buf: np.ndarray, n: int, layout: Layout, users: np.ndarray, indptr: np.ndarray, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-n of each row of a C-contiguous (chunk, rows, chunks) float32 buffer.

    Row r is user ``users[r]`` of a CSR seen matrix given by ``indptr`` (int64) and
    ``indices`` (int32); those movies are written to -inf in ``buf`` and never returned.
    The work is one compiled pass per row (``select_kernel``).
    """
    rows, k = buf.shape[1], layout.chunks
    out_idx = np.full((rows, max(n, 0)), -1, np.int32)
    out_val = np.full((rows, max(n, 0)), -np.inf, np.float32)
    if rows == 0 or k == 0 or n <= 0:
        return out_idx, out_val
    if buf.dtype != np.float32 or not buf.flags.c_contiguous:
        raise ValueError("select_unseen needs a C-contiguous float32 (chunk, rows, chunks) buffer")
    compiled()(buf, users, indptr, indices, n, out_idx, out_val)
    return out_idx, out_val
