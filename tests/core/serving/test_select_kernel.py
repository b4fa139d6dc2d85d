"""The compiled selection kernel: same answer as its Python source and as a stable argsort."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.serving import select_kernel
from recsys_core.serving.select import Layout, select_padded, select_unseen


def reference(scores: np.ndarray, seen: sp.csr_matrix, users: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Masked stable argsort: what every selection path must return."""
    s = np.where(np.isnan(scores), -np.inf, scores).astype(np.float32)
    s[seen[users].toarray() != 0] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :n]
    vals = np.take_along_axis(s, order, axis=1)
    idx = np.where(vals > -np.inf, order, -1)
    pad = n - idx.shape[1]
    if pad > 0:
        idx = np.hstack([idx, np.full((len(idx), pad), -1)])
        vals = np.hstack([vals, np.full((len(vals), pad), -np.inf, np.float32)])
    return idx.astype(np.int32), vals


def make_tile(chunk: int, n_movies: int, seed: int) -> tuple[Layout, np.ndarray, sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    users = np.array([4, 0, 7, 2, 9], dtype=np.int64)  # rows are users of a larger seen matrix
    scores = rng.integers(-4, 5, (len(users), n_movies)).astype(np.float32)  # many ties
    scores[1, ::3] = np.nan
    scores[2, 5] = np.inf
    seen = sp.csr_matrix((rng.random((10, n_movies)) < 0.3).astype(np.float32))
    chunks = -(-n_movies // chunk)
    return Layout(n_movies, chunk, chunks), scores, seen, users


@pytest.mark.parametrize(("chunk", "n"), [(1, 4), (4, 4), (7, 20), (4, 60)])
def test_kernel_and_its_python_source_equal_a_masked_stable_argsort(chunk: int, n: int) -> None:
    layout, scores, seen, users = make_tile(chunk, 53, seed=chunk + n)
    want = reference(scores, seen, users, n)
    indptr, indices = seen.indptr.astype(np.int64), seen.indices.astype(np.int32)
    for run in (select_kernel.top_n_unseen, select_kernel.compiled()):
        buf = layout.new_buffer(len(users))
        layout.load(buf, scores)
        idx = np.full((len(users), n), -1, np.int32)
        val = np.full((len(users), n), -np.inf, np.float32)
        run(buf, users, indptr, indices, n, idx, val)
        np.testing.assert_array_equal(idx, want[0])
        np.testing.assert_array_equal(val, want[1])


def test_select_unseen_needs_a_contiguous_float32_buffer() -> None:
    layout, scores, seen, users = make_tile(4, 53, seed=1)
    buf = layout.new_buffer(len(users) + 1)[:, : len(users)]  # a strided view
    with pytest.raises(ValueError, match="C-contiguous float32"):
        select_unseen(buf, 3, layout, users, seen.indptr.astype(np.int64), seen.indices.astype(np.int32))


def test_compiles_without_a_disk_cache_where_numba_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    numba = pytest.importorskip("numba")
    real = numba.njit

    def no_cache_dir(*args: object, cache: bool = False, **kwargs: object) -> object:
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", no_cache_dir)
    select_kernel.compiled.cache_clear()
    try:
        kernel = select_kernel.compiled()
        layout, scores, seen, users = make_tile(4, 53, seed=2)
        buf = layout.new_buffer(len(users))
        layout.load(buf, scores)
        idx = np.full((len(users), 5), -1, np.int32)
        kernel(
            buf,
            users,
            seen.indptr.astype(np.int64),
            seen.indices.astype(np.int32),
            5,
            idx,
            np.zeros((5, 5), np.float32),
        )
        np.testing.assert_array_equal(idx, reference(scores, seen, users, 5)[0])
    finally:
        select_kernel.compiled.cache_clear()  # the next caller gets the cached build again


def test_select_padded_reads_a_read_only_buffer() -> None:
    layout, scores, seen, users = make_tile(4, 53, seed=3)
    buf = layout.new_buffer(len(users))
    layout.load(buf, scores)
    buf.setflags(write=False)
    idx, _ = select_padded(buf, 6, layout)
    no_seen = sp.csr_matrix(seen.shape, dtype=np.float32)
    np.testing.assert_array_equal(idx, reference(scores, no_seen, np.arange(len(users)), 6)[0])
