"""Exact top-N per row by chunk maxima: the selection half of all-user scoring.

A full ``argpartition`` of each 59k-wide score row costs more than the matrix product itself,
so each row is cut into chunks; one vectorised max per chunk, then a threshold: the n-th best
chunk maximum. At least n scores reach it, so every top-n score does too, and only chunks whose
maximum reaches it can hold one. Those few chunks are read again and only their scores at or
above the threshold are ranked. Ties follow ``np.argsort(-scores, kind="stable")``: equal
scores rank the lower column first; NaN and -inf are never returned.

Scores live in a ``(chunk, rows, chunks)`` buffer (see ``Layout``): the chunk maxima are then
one elementwise max over ``chunk`` contiguous slices, the fastest reduction numpy has here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CHUNK = 128  # movies per chunk; 64 measured the same at ml-25m shapes (fewer candidates, more chunks)
GROUP = 16  # slices per group: candidates are re-read 16 at a time (8: 1.07x slower, 32: same, none: 1.1-1.4x)
DIRECT_MAX_MOVIES = 4096  # below this each movie is its own chunk (no reduction pass)
_LOWEST = np.finfo(np.float32).min  # thresholds never go below it, so -inf is never a candidate


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

    @property
    def group(self) -> int:
        """Slices whose maxima are kept apart, so a chosen chunk is re-read a group at a time."""
        return math.gcd(self.chunk, GROUP)

    @classmethod
    def for_catalogue(cls, n_movies: int, n: int) -> Layout:
        chunks = -(-n_movies // CHUNK)
        if n_movies <= DIRECT_MAX_MOVIES or chunks < 8 * (n + 1):
            return cls(n_movies, 1, n_movies)
        return cls(n_movies, CHUNK, chunks)

    def new_buffer(self, rows: int) -> np.ndarray:
        return np.empty((self.chunk, rows, self.chunks), np.float32)

    def movie_offsets(self, rows: int) -> np.ndarray:
        """Flat offset of each movie for row 0 of a ``new_buffer(rows)``; add ``row * chunks``."""
        m = np.arange(self.n_movies, dtype=np.int64)
        return m // self.chunks * (rows * self.chunks) + m % self.chunks

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
    """Exact top-n of each row of a (chunk, rows, chunks) float32 buffer; reads, never writes it.

    Candidates are narrowed twice: chunks whose maximum reaches the threshold, then groups of
    ``layout.group`` slices within them, so only a few dozen scores per row are read again.
    """
    rows, k, group = buf.shape[1], layout.chunks, layout.group
    if rows == 0 or k == 0 or n <= 0:
        return np.full((rows, max(n, 0)), -1, np.int32), np.full((rows, max(n, 0)), -np.inf, np.float32)
    by_group = buf.reshape(-1, group, rows, k)  # (groups, group, rows, chunks)
    gmax, cmax = _maxima(by_group)
    thr = _threshold(cmax, n)
    row_at, chunk_at = _where_at_least(cmax, thr[:, None])  # chunks that can hold a top-n score
    hit, grp = _where_at_least(gmax.transpose(1, 2, 0)[row_at, chunk_at], thr[row_at, None])
    row_at, chunk_at = row_at[hit], chunk_at[hit]
    cand = by_group.transpose(0, 2, 3, 1)[grp, row_at, chunk_at]  # (hits, group) scores
    hit, slot = _where_at_least(cand, thr[row_at, None])
    movies = (grp[hit] * group + slot) * k + chunk_at[hit]
    return _first_n(row_at[hit], movies, cand[hit, slot], rows, n)


def _where_at_least(values: np.ndarray, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every value >= thr; a flat nonzero is twice as fast as a 2-D one."""
    return np.divmod(np.flatnonzero(values >= thr), values.shape[1])


def _maxima(by_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(groups, rows, chunks) group maxima and (rows, chunks) chunk maxima; NaN is skipped."""
    gmax = np.maximum.reduce(by_group, axis=1)
    cmax = np.maximum.reduce(gmax, axis=0)
    bad = np.flatnonzero(np.isnan(cmax).any(axis=1))
    if len(bad):  # NaN wins np.maximum; rank it last instead (a group of NaN only: -inf)
        fixed = np.fmax.reduce(by_group[:, :, bad], axis=1)
        fixed[np.isnan(fixed)] = -np.inf
        gmax[:, bad] = fixed
        cmax[bad] = np.maximum.reduce(fixed, axis=0)
    return gmax, cmax


def _threshold(cmax: np.ndarray, n: int) -> np.ndarray:
    """The n-th best chunk maximum per row, floored at the lowest finite float32.

    n chunks reach it, so at least n scores do: every top-n score is at or above it.
    The floor keeps -inf (seen, padding) out when a row has fewer than n finite chunks.
    """
    k = cmax.shape[1]
    if k <= n:
        return np.full(cmax.shape[0], _LOWEST, np.float32)
    return np.maximum(np.partition(cmax, k - n, axis=1)[:, k - n], _LOWEST)


def _first_n(
    rows_at: np.ndarray, movies: np.ndarray, vals: np.ndarray, n_rows: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rank candidates per row by (value desc, movie asc), keep n per row, -1 / -inf pad."""
    order = np.lexsort((_order_keys(vals, movies), rows_at))
    rows_at, movies, vals = rows_at[order], movies[order], vals[order]
    rank = np.arange(len(rows_at)) - np.searchsorted(rows_at, rows_at)  # rows_at is sorted now
    keep = rank < n
    idx = np.full((n_rows, n), -1, np.int32)
    val = np.full((n_rows, n), -np.inf, np.float32)
    idx[rows_at[keep], rank[keep]] = movies[keep]
    val[rows_at[keep], rank[keep]] = vals[keep]
    return idx, val


def _order_keys(vals: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Ascending keys = descending value, then ascending position (total order, no ties)."""
    v = vals.astype(np.float32)  # a copy we may change
    v += np.float32(0.0)  # -0.0 -> +0.0, as comparisons see them
    bits = v.view(np.int32)
    bits ^= (bits >> 31) & 0x7FFFFFFF  # now int order == float order
    keys = np.int64(0x7FFFFFFF) - bits  # 0 .. 2**32-1, smaller is better
    keys <<= 32
    keys |= pos
    return keys.view(np.uint64)
