"""The compiled half of top-N selection: mask, chunk maxima and ranking in one kernel.

Why compiled: after the matrix product, numpy needed five more passes per tile (seen mask,
chunk maxima, threshold partition, candidate search, a lexsort of the candidates), each a
separate call over a buffer larger than L2. At ml-25m shapes that put all-user scoring at
1.4-1.5x the bare products. Here one loop per row writes the row's seen movies to -inf, takes
the chunk maxima in one vectorised read, finds the n-th best maximum and ranks the few scores
that reach it, so the score buffer is read once more and everything else stays in L1.

Compiled with numba on first use (about a second) and cached on disk beside this file, or in
numba's per-user cache where that is read-only; nothing is compiled at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

_LOWEST = np.float32(np.finfo(np.float32).min)  # thresholds never go below it: -inf is never a candidate


def top_n_unseen(
    buf: np.ndarray,
    users: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    n: int,
    out_idx: np.ndarray,
    out_val: np.ndarray,
) -> None:
    """Exact top-n of each row of a (chunk, rows, chunks) score buffer, seen movies excluded.

    Movie m of row r sits at ``buf[m // chunks, r, m % chunks]``. Row r's seen movies are
    ``indices[indptr[users[r]]:indptr[users[r] + 1]]``; they are written to -inf in ``buf``.
    Results go to ``out_idx`` / ``out_val`` (rows x n), best first, -1 / -inf padded. Ties
    rank the lower movie first (as a stable argsort of ``-scores``); NaN and -inf are never
    returned. Plain Python here; ``compiled()`` gives the numba version the scorer runs.
    """
    chunk, rows, k = buf.shape
    cmax = np.empty(k, np.float32)
    best = np.empty(n, np.float32)
    cols = np.empty(k, np.int64)
    for r in range(rows):
        u = users[r]
        for e in range(indptr[u], indptr[u + 1]):
            m = indices[e]
            buf[m // k, r, m % k] = -np.inf
        # chunk maxima: one pass over the row, vectorised; NaN never wins (v > NaN is false)
        for c in range(k):
            cmax[c] = -np.inf
        for s in range(chunk):
            seg = buf[s, r]
            for c in range(k):
                v = seg[c]
                cmax[c] = v if v > cmax[c] else cmax[c]
        # threshold: the n-th best chunk maximum; n chunks reach it, so >= n scores do
        for i in range(n):
            best[i] = -np.inf
        for c in range(k):
            v = cmax[c]
            if v > best[n - 1]:
                p = n - 1
                while p > 0 and best[p - 1] < v:
                    best[p] = best[p - 1]
                    p -= 1
                best[p] = v
        thr = best[n - 1] if best[n - 1] > _LOWEST else _LOWEST
        n_cols = 0
        for c in range(k):
            if cmax[c] >= thr:
                cols[n_cols] = c
                n_cols += 1
        # rank the scores that reach it, in movie order, so an equal score never displaces
        # a lower movie
        vals = out_val[r]
        idx = out_idx[r]
        for i in range(n):
            vals[i] = -np.inf
            idx[i] = -1
        for s in range(chunk):
            seg = buf[s, r]
            for q in range(n_cols):
                c = cols[q]
                v = seg[c]
                if v >= thr and v > vals[n - 1]:
                    p = n - 1
                    while p > 0 and vals[p - 1] < v:
                        vals[p] = vals[p - 1]
                        idx[p] = idx[p - 1]
                        p -= 1
                    vals[p] = v
                    idx[p] = s * k + c


@functools.cache
def compiled() -> Callable[..., None]:
    """``top_n_unseen`` compiled (nogil: the scorer's worker threads run it side by side).

    Cached on disk when numba can find a writable cache directory; compiled per process
    otherwise (numba refuses ``cache=True`` where it has none).
    """
    import numba  # deferred: importing numba costs ~0.3 s, only scoring needs it

    options = {"nogil": True, "boundscheck": False, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(top_n_unseen)
    except RuntimeError:  # no writable cache location
        return numba.njit(cache=False, **options)(top_n_unseen)
