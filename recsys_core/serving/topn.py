"""All-user top-N over every unseen movie, exact, in bounded memory, on every core.

Why it is shaped like this (measured at ml-25m size on 2 cores, see benchmarks/results):
a full ``argpartition`` of each 59k-wide score row costs more than the matrix product
itself, so selection is done by *chunk maxima* (``select.py``): one vectorised max per chunk,
a threshold from the n-th best chunk maximum, then an exact ranking of the few scores that
reach it, all in one compiled pass per row that also writes the row's seen movies to -inf
(``select_kernel.py``). Ties follow ``np.argsort(-scores, kind="stable")``: equal scores rank
the lower movie index first, whatever the block or shard a user is scored in.

Work is split into user tiles scored by a small thread pool (BLAS and the selection kernel
release the GIL), one BLAS thread each. Dot-product models (``factors()``) get one
batched matrix product per tile that writes the (chunk, users, chunks) score layout directly:
each of its slices is a small product whose output stays in cache, which measured faster than
one tile-wide product, and the chunk maxima are then a max over contiguous slices. Other
models are scored by ``score_users`` in large blocks sized from the memory budget and copied
into the same layout.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.models.base import Recommender
from recsys_core.serving.scorers import FactorScorer
from recsys_core.serving.select import Layout, select_unseen

DEFAULT_BUDGET = 2 * 1024**3  # bytes of score buffers, all threads together
BYTES_PER_CELL = 16  # generic path: model output + our float32 copy + temporaries
TILE_USERS = 32  # users per thread tile (7.5 MB at 59k movies; each slice's product 59 KB);
# ml-25m shapes, 2 threads, loaded machine: 32 took 0.76-0.87x the time of 64, 16 and 48 between, 128 1.05-1.1x
MERGE_ROWS = 8192  # rows per block when merging two top-n lists (bounds the sort's temporaries)
COVERED_TILE_USERS = 1024  # covered path (a sparse product per tile): EASE's 5,000 head movies at
# ml-25m size, 2 threads: 1024 users took 0.45x the time of 32 (per-call overhead of the product), 2048 1.1x of 1024


@dataclass
class TopN:
    """Top-N per user; rows with fewer than N unseen movies are padded with -1 / -inf."""

    user_idx: np.ndarray  # (U,) int32
    movie_idx: np.ndarray  # (U, N) int32
    scores: np.ndarray  # (U, N) float32

    def valid(self) -> np.ndarray:
        return self.movie_idx >= 0


def choose_block_size(n_movies: int, memory_budget_bytes: int, *, max_block: int = 8192) -> int:
    """Users per block so that one block's working set fits in the budget."""
    per_user = max(1, n_movies) * BYTES_PER_CELL
    return int(max(1, min(max_block, memory_budget_bytes // per_user)))


def choose_tile_size(n_movies: int, memory_budget_bytes: int, n_threads: int, max_users: int | None = None) -> int:
    """Users per thread tile: small enough to stay near cache, and all tiles within budget.

    Each worker holds one float32 tile buffer; selection temporaries are a few percent more.
    """
    per_user = max(1, n_movies) * 4 * 2  # buffer + headroom for selection temporaries
    cap = TILE_USERS if max_users is None else max_users
    return int(max(1, min(cap, memory_budget_bytes // max(1, n_threads) // per_user)))


def choose_n_threads(n_threads: int | None = None) -> int:
    """Worker threads: the cores this process may run on, unless told otherwise."""
    if n_threads is not None:
        return max(1, int(n_threads))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def plan_tiles(
    n_movies: int,
    n: int,
    memory_budget_bytes: int = DEFAULT_BUDGET,
    n_threads: int | None = None,
    max_tile_users: int | None = None,
) -> tuple[Layout, int, int]:
    """(score layout, users per tile, worker threads) as ``recommend_top_n`` will use them.

    Public so that benchmarks can time bare matrix products over exactly the same tiles.
    """
    layout = Layout.for_catalogue(n_movies, n)
    threads = choose_n_threads(n_threads)
    return layout, choose_tile_size(layout.width, memory_budget_bytes, threads, max_tile_users), threads


def shard_users(n_users: int, n_shards: int) -> list[np.ndarray]:
    """Split user indices 0..n_users-1 into ``n_shards`` contiguous, near-equal int32 arrays.

    Each shard can be scored on its own (another task, process or Dask worker); concatenating
    the shards' results in order gives exactly the one-process result.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return np.array_split(np.arange(n_users, dtype=np.int32), n_shards)


def concat_top_n(parts: list[TopN]) -> TopN:
    """Union of shard results, in the order given (shards from ``shard_users`` stay sorted)."""
    if not parts:
        raise ValueError("concat_top_n needs at least one part")
    return TopN(
        np.concatenate([p.user_idx for p in parts]).astype(np.int32, copy=False),
        np.concatenate([p.movie_idx for p in parts]),
        np.concatenate([p.scores for p in parts]),
    )


def recommend_top_n(
    model: Recommender,
    seen: sp.csr_matrix,
    n: int,
    *,
    user_idx: np.ndarray | None = None,
    memory_budget_bytes: int = DEFAULT_BUDGET,
    progress: Callable[[int, int], None] | None = None,
    n_threads: int | None = None,
) -> TopN:
    """Top-``n`` unseen movies for each user in ``user_idx`` (default: every user).

    ``seen`` is users x movies; its stored entries are excluded. ``n_threads`` defaults to
    the available cores; pass 1 when shards already run in parallel threads.
    """
    seen = seen if sp.isspmatrix_csr(seen) or isinstance(seen, sp.csr_array) else sp.csr_matrix(seen)
    n_all_users, n_movies = seen.shape
    users = np.arange(n_all_users, dtype=np.int32) if user_idx is None else np.asarray(user_idx, np.int32).ravel()
    if len(users) and (users.min() < 0 or users.max() >= n_all_users):
        raise ValueError(
            f"user_idx holds {int(users.min())}..{int(users.max())}, but the seen matrix has rows "
            f"0..{n_all_users - 1}; pass indices of the vocabulary the model was trained on."
        )
    out_idx = np.full((len(users), n), -1, np.int32)
    out_val = np.full((len(users), n), -np.inf, np.float32)
    if len(users) == 0 or n <= 0 or n_movies == 0:
        return TopN(users, out_idx, out_val)
    factors = model.factors()
    covered_scorer = getattr(model, "covered_scorer", None)  # duck-typed models may lack it
    covered = covered_scorer() if factors is None and covered_scorer is not None else None
    tail_factors = getattr(model, "tail_factors", None)  # duck-typed models may lack it
    tail = tail_factors() if covered is not None and tail_factors is not None else None
    if covered is not None and tail is not None:  # head list + tail list, merged: exact
        return _head_and_tail_top_n(covered, tail, seen, users, n, memory_budget_bytes, n_threads, progress)
    if covered is not None and 0 < len(covered[0]) < n_movies:
        redo = _covered_top_n(covered, seen, users, n, memory_budget_bytes, n_threads, out_idx, out_val, progress)
        if len(redo):  # their n-th best covered score is not above the uncovered movies' 0
            rest = recommend_top_n(
                _WholeRows(model),
                seen,
                n,
                user_idx=users[redo],
                memory_budget_bytes=memory_budget_bytes,
                n_threads=n_threads,
            )
            out_idx[redo], out_val[redo] = rest.movie_idx, rest.scores
        return TopN(users, out_idx, out_val)
    layout, tile_size, threads = plan_tiles(n_movies, n, memory_budget_bytes, n_threads)
    if factors is not None:
        tiles = _factor_tiles(factors, users, layout, tile_size)
    else:
        tiles = _generic_tiles(model, users, layout, tile_size, memory_budget_bytes)
    with _single_threaded_blas():
        _run_tiles(tiles, n, layout, tile_size, threads, seen, out_idx, out_val, progress, len(users))
    return TopN(users, out_idx, out_val)


class _WholeRows(Recommender):
    """A model seen through ``score_users`` only: the full-row path, for the users the covered
    columns cannot decide."""

    name = "whole_rows"

    def __init__(self, model: Recommender) -> None:
        super().__init__()
        self._model = model

    def fit(self, train: Any, validation: Any = None) -> _WholeRows:  # pragma: no cover - never trained
        raise NotImplementedError("_WholeRows wraps a fitted model")

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._model.score_users(user_idx)


def _head_and_tail_top_n(
    covered: tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]],
    tail: tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], np.ndarray],
    seen: sp.csr_matrix,
    users: np.ndarray,
    n: int,
    budget: int,
    n_threads: int | None,
    progress: Callable[[int, int], None] | None,
) -> TopN:
    """Top-n of a model scored in two parts that cover the catalogue between them: the covered
    head columns and a factor model on every other column (EASE with tail factors).

    Each part's own top-n holds every movie of the merged top-n from that part, so merging the
    two lists by (score desc, movie asc) is exact, ties included. A user whose tail scores are
    all bounded below their n-th head score (Cauchy-Schwarz: |u . v| <= |u| max |v|) skips the
    tail: 88% of users on ml-latest-small, whose tail movies score low for everyone."""
    head_idx = np.full((len(users), n), -1, np.int32)
    head_val = np.full((len(users), n), -np.inf, np.float32)
    _covered_top_n(covered, seen, users, n, budget, n_threads, head_idx, head_val, progress)
    columns, user_vectors, movie_vecs = tail
    columns = np.asarray(columns, np.int64)
    vecs = user_vectors(users)
    need = np.flatnonzero(~(tail_bound(vecs, movie_vecs) < head_val[:, n - 1]))
    tail_idx = np.full((len(users), n), -1, np.int32)
    tail_val = np.full((len(users), n), -np.inf, np.float32)
    if len(need):
        top = recommend_top_n(  # only these users' vectors, as rows 0.. of their own seen rows
            FactorScorer(vecs[need], movie_vecs),
            seen[users[need]][:, columns].tocsr(),
            n,
            memory_budget_bytes=budget,
            n_threads=n_threads,
        )
        tail_idx[need] = np.where(top.movie_idx >= 0, columns[np.maximum(top.movie_idx, 0)], -1)
        tail_val[need] = top.scores
    merge_top_n((head_idx, head_val), (tail_idx, tail_val), n, out=(head_idx, head_val))  # in place
    return TopN(users, head_idx, head_val)


def tail_bound(user_vecs: np.ndarray, movie_vecs: np.ndarray) -> np.ndarray:
    """An upper bound on every user's best dot product with any movie vector, with room for
    float32 rounding in the products (relative 1e-4 on 64-dimensional sums is ample)."""
    if not len(movie_vecs) or not user_vecs.shape[1]:
        return np.zeros(len(user_vecs))
    longest = float(np.sqrt(np.max(np.sum(np.square(movie_vecs, dtype=np.float64), axis=1))))
    norms = np.sqrt(np.sum(np.square(user_vecs, dtype=np.float64), axis=1))
    return norms * longest * (1 + 1e-4) + 1e-12


def merge_top_n(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    n: int,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The n best per row of two (rows, n) lists over disjoint movies, by (score desc, movie
    asc); -1 / -inf padding sorts last and stays padding.

    Merged in blocks of ``MERGE_ROWS`` rows: the sort's temporaries are ~20 bytes per cell of the
    two lists together, 2 GB for every ml-25m user at n = 200 (exploration's depth) in one piece.
    ``out`` (two (rows, n) arrays, which may be ``a``'s own: a block is copied before it is
    written) receives the result instead of new arrays."""
    rows = len(a[0])
    out_idx, out_val = out if out is not None else (np.empty((rows, n), np.int32), np.empty((rows, n), np.float32))
    for start in range(0, rows, MERGE_ROWS):
        block = slice(start, start + MERGE_ROWS)
        idx = np.hstack([a[0][block], b[0][block]])
        val = np.hstack([a[1][block], b[1][block]])
        movie_key = np.where(idx < 0, np.iinfo(np.int32).max, idx)
        order = np.lexsort((movie_key, -val), axis=-1)[:, :n]
        idx, val = np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)
        out_idx[block], out_val[block] = np.where(val > -np.inf, idx, -1), val
    return out_idx, out_val


def _covered_top_n(
    covered: tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]],
    seen: sp.csr_matrix,
    users: np.ndarray,
    n: int,
    budget: int,
    n_threads: int | None,
    out_idx: np.ndarray,
    out_val: np.ndarray,
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    """Top-n over the covered columns only; returns the positions (in ``users``) still to do.

    Exact: every uncovered movie scores 0.0, so where the n-th best covered unseen score is
    above 0 no uncovered movie can enter the list; columns stay in movie order, so ties still
    give the lower movie index. The scorer runs inside the workers (scipy's sparse product
    releases the GIL), a tile of up to ``COVERED_TILE_USERS`` at a time."""
    columns, score = covered
    columns = np.asarray(columns, np.int64)
    sub_seen = seen[:, columns].tocsr()  # scipy keeps the columns' order: movie order
    layout, tile_size, threads = plan_tiles(len(columns), n, budget, n_threads, COVERED_TILE_USERS)
    tiles = (_scored_tile(score, ub, start, layout) for start, ub in _tile_users(users, tile_size))
    with _single_threaded_blas():
        _run_tiles(tiles, n, layout, tile_size, threads, sub_seen, out_idx, out_val, progress, len(users))
    found = out_idx >= 0
    out_idx[found] = columns[out_idx[found]]
    return np.flatnonzero(~(out_val[:, n - 1] > 0))


def _scored_tile(score: Callable[[np.ndarray], np.ndarray], ub: np.ndarray, start: int, layout: Layout) -> _Tile:
    def fill(buf: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        out = layout.view(buf, len(ub))
        layout.load(out, np.asarray(score(ub), np.float32))
        return start, out, ub

    return fill


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER: contextlib.AbstractContextManager | None = None
_BLAS_CONTROL: ThreadPoolExecutor | None = None


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """One BLAS thread per worker while any scoring call runs.

    Measured: letting OpenBLAS spawn its own threads under our workers doubles CPU time. The
    limit is process-wide, so concurrent calls share one limiter and the last one out
    restores it. threadpoolctl only obeys the thread that set a limit, so one dedicated
    thread both sets and restores it, whichever scoring threads come and go.
    """
    global _BLAS_USERS, _BLAS_LIMITER, _BLAS_CONTROL
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            if _BLAS_CONTROL is None:
                _BLAS_CONTROL = ThreadPoolExecutor(1, thread_name_prefix="recsys-blas-limit")
            _BLAS_LIMITER = _BLAS_CONTROL.submit(_blas_limiter).result()
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0 and _BLAS_LIMITER is not None and _BLAS_CONTROL is not None:
                _BLAS_CONTROL.submit(_BLAS_LIMITER.__exit__, None, None, None).result()
                _BLAS_LIMITER = None


def _blas_limiter() -> contextlib.AbstractContextManager:
    """Set one BLAS thread now (threadpool_limits acts on creation); exit restores it."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover - scoring still works, only slower
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# --- tiles: where scores come from -----------------------------------------------------------

_Tile = Callable[[np.ndarray], tuple[int, np.ndarray, np.ndarray]]  # buffer -> (start, scores view, users)


def _tile_users(users: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, len(users), size):
        yield start, users[start : start + size]


def _factor_tiles(
    factors: tuple[np.ndarray, np.ndarray],
    users: np.ndarray,
    layout: Layout,
    tile_size: int,
) -> Iterator[_Tile]:
    """One batched matrix product per tile, written straight into the buffer's layout."""
    user_vecs, movie_vecs = (np.asarray(f, np.float32) for f in factors)
    if movie_vecs.shape[0] != layout.n_movies:
        raise ValueError(
            f"The model has {movie_vecs.shape[0]} movies but the seen matrix has {layout.n_movies} "
            "columns; score with the vocabulary the model was trained on."
        )
    sliced = movies_by_slot(movie_vecs, layout)

    def tile(start: int, ub: np.ndarray) -> _Tile:
        def fill(buf: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
            out = layout.view(buf, len(ub))
            np.matmul(user_vecs[ub], sliced, out=out)
            layout.pad(out)
            return start, out, ub

        return fill

    for start, ub in _tile_users(users, tile_size):
        yield tile(start, ub)


def movies_by_slot(movie_vecs: np.ndarray, layout: Layout) -> np.ndarray:
    """(chunk, dim, chunks) movie factors, zero past the catalogue: one product per slice.

    ``users @ movies_by_slot`` is then the (chunk, users, chunks) score buffer itself.
    """
    padded = np.zeros((layout.width, movie_vecs.shape[1]), np.float32)
    padded[: layout.n_movies] = movie_vecs
    return np.ascontiguousarray(padded.reshape(layout.chunk, layout.chunks, -1).transpose(0, 2, 1))


def _generic_tiles(
    model: Recommender,
    users: np.ndarray,
    layout: Layout,
    tile_size: int,
    budget: int,
) -> Iterator[_Tile]:
    """``score_users`` on large blocks (model code may batch or thread itself), split in tiles."""
    block = choose_block_size(layout.n_movies, budget)
    for b_start, ub in _tile_users(users, block):
        scores = np.asarray(model.score_users(ub))
        if scores.shape != (len(ub), layout.n_movies):
            raise ValueError(
                f"{type(model).__name__}.score_users returned shape {scores.shape}, expected "
                f"({len(ub)}, {layout.n_movies})."
            )
        for t_start in range(0, len(ub), tile_size):
            part = scores[t_start : t_start + tile_size]
            yield _copy_tile(part, ub[t_start : t_start + len(part)], b_start + t_start, layout)


def _copy_tile(part: np.ndarray, ub: np.ndarray, start: int, layout: Layout) -> _Tile:
    def fill(buf: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        out = layout.view(buf, len(part))
        layout.load(out, part)
        return start, out, ub

    return fill


def _run_tiles(
    tiles: Iterator[_Tile],
    n: int,
    layout: Layout,
    tile_size: int,
    threads: int,
    seen: sp.csr_matrix,
    out_idx: np.ndarray,
    out_val: np.ndarray,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> None:
    """Fill and select every tile on ``threads`` workers, each with one reused buffer.

    The selection kernel writes each row's seen movies to -inf before ranking it.
    """
    local = threading.local()
    indptr = seen.indptr.astype(np.int64, copy=False)  # the kernel's one signature: int64 offsets, int32 movies
    indices = seen.indices.astype(np.int32, copy=False)

    def work(fill: _Tile) -> int:
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = layout.new_buffer(tile_size)
        start, scores, ub = fill(buf)
        idx, val = select_unseen(scores, n, layout, ub.astype(np.int64), indptr, indices)
        out_idx[start : start + len(idx)], out_val[start : start + len(idx)] = idx, val
        return len(idx)

    done, reported = 0, 0
    step = max(1, total // 100)  # at most ~100 progress calls, whatever the tile size

    def advance(count: int) -> None:
        nonlocal done, reported
        done += count
        if progress and (done - reported >= step or done == total):
            reported = done
            progress(done, total)

    if threads == 1:
        for fill in tiles:
            advance(work(fill))
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="recsys-score") as pool:
        pending = []
        for fill in tiles:  # a bounded queue, so generic blocks are not all held at once
            pending.append(pool.submit(work, fill))
            if len(pending) >= 4 * threads:
                advance(pending.pop(0).result())
        for fut in pending:
            advance(fut.result())


def threads_per_shard(n_shards: int, dask_address: str | None) -> int | None:
    """Local shards share this machine's cores; on Dask each worker uses its own (None)."""
    if dask_address:
        return None
    return max(1, choose_n_threads() // max(1, n_shards))
