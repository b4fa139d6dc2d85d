"""Scoring: exact top-N against brute force, seen masking, padding, budget, shards, generic path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.serving import select as selection
from recsys_core.serving import topn as scoring
from recsys_core.serving.select import Layout, select_top_n
from recsys_core.serving.topn import (
    choose_block_size,
    choose_tile_size,
    concat_top_n,
    recommend_top_n,
    shard_users,
)


class FactorModel:
    def __init__(self, users: np.ndarray, movies: np.ndarray):
        self.users, self.movies = users, movies

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.users, self.movies

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self.users[user_idx] @ self.movies.T


class ScoreOnlyModel(FactorModel):
    """No factors(): forces the generic score_users path (float64 output on purpose)."""

    def factors(self) -> None:
        return None

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return (self.users[user_idx] @ self.movies.T).astype(np.float64)


def brute_force(scores: np.ndarray, seen: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """argsort of masked dense scores: ties rank the lower movie index first."""
    s = scores.astype(np.float32).copy()
    s[seen.toarray() != 0] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :n]
    vals = np.take_along_axis(s, order, axis=1)
    idx = np.where(np.isfinite(vals), order, -1)
    if idx.shape[1] < n:
        pad = n - idx.shape[1]
        idx = np.hstack([idx, np.full((len(idx), pad), -1)])
        vals = np.hstack([vals, np.full((len(vals), pad), -np.inf, np.float32)])
    return idx.astype(np.int32), vals


def make_case(n_users: int, n_movies: int, dim: int, density: float, seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((n_users, dim)).astype(np.float32)
    movies = rng.standard_normal((n_movies, dim)).astype(np.float32)
    if ties:  # small integers: many exactly equal scores
        users, movies = np.round(users), np.round(movies)
    seen = sp.csr_matrix((rng.random((n_users, n_movies)) < density).astype(np.float32))
    return users, movies, seen


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the chunked path run on tiny catalogues (it normally starts at 4,096 movies)."""
    monkeypatch.setattr(selection, "DIRECT_MAX_MOVIES", 0)
    monkeypatch.setattr(selection, "CHUNK", 8)
    monkeypatch.setattr(scoring, "TILE_USERS", 16)


# (chunk, tile users): a power of two, a chunk of 1, chunks that are not, a short last tile, a
# tile larger than the user count.
SHAPES = [(8, 16), (1, 16), (5, 7), (12, 5), (10, 200)]


def use_shape(monkeypatch: pytest.MonkeyPatch, chunk: int, tile: int) -> None:
    monkeypatch.setattr(selection, "DIRECT_MAX_MOVIES", 0)
    monkeypatch.setattr(selection, "CHUNK", chunk)
    monkeypatch.setattr(scoring, "TILE_USERS", tile)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("chunked", [False, True])
def test_top_n_equals_brute_force(ties: bool, chunked: bool, request: pytest.FixtureRequest) -> None:
    if chunked:
        request.getfixturevalue("small_chunks")
    users, movies, seen = make_case(70, 900, 6, 0.1, seed=1, ties=ties)
    for n in (1, 5, 12):
        top = recommend_top_n(FactorModel(users, movies), seen, n)
        idx, vals = brute_force(users @ movies.T, seen, n)
        np.testing.assert_array_equal(top.movie_idx, idx)
        np.testing.assert_array_equal(top.scores, vals)
        assert top.movie_idx.dtype == np.int32 and top.scores.dtype == np.float32


def test_select_top_n_with_constant_and_nan_rows(small_chunks: None) -> None:
    scores = np.random.default_rng(2).standard_normal((6, 300)).astype(np.float32)
    scores[0] = 1.0  # every score tied: the lowest indices win
    scores[1, ::3] = np.nan  # NaN ranks last, never first
    idx, vals = select_top_n(scores, 4)
    np.testing.assert_array_equal(idx[0], [0, 1, 2, 3])
    ref, _ = brute_force(np.where(np.isnan(scores), -np.inf, scores), sp.csr_matrix(scores.shape), 4)
    np.testing.assert_array_equal(idx, ref)
    assert np.all(np.isfinite(vals))


@pytest.mark.parametrize("chunked", [False, True])
def test_never_a_seen_movie_and_padding(chunked: bool, request: pytest.FixtureRequest) -> None:
    if chunked:
        request.getfixturevalue("small_chunks")
    users, movies, seen = make_case(40, 500, 4, 0.3, seed=3)
    dense = seen.toarray()
    dense[0, :] = 1  # seen everything: all padding
    dense[1, :] = 1
    dense[1, [7, 300]] = 0  # two unseen movies left
    seen = sp.csr_matrix(dense)
    top = recommend_top_n(FactorModel(users, movies), seen, 10)
    rows, cols = np.nonzero(top.movie_idx >= 0)
    assert not dense[rows, top.movie_idx[rows, cols]].any()
    assert (top.movie_idx[0] == -1).all() and np.isneginf(top.scores[0]).all()
    assert sorted(top.movie_idx[1, :2]) == [7, 300] and (top.movie_idx[1, 2:] == -1).all()
    valid = top.valid()
    assert np.all(np.diff(np.where(valid, top.scores, -3e38), axis=1) <= 0)  # best first


def test_catalogue_smaller_than_n() -> None:
    users, movies, seen = make_case(5, 3, 2, 0.0, seed=4)
    top = recommend_top_n(FactorModel(users, movies), seen, 5)
    assert top.movie_idx.shape == (5, 5)
    assert (top.movie_idx[:, 3:] == -1).all() and (np.sort(top.movie_idx[:, :3], axis=1) == [0, 1, 2]).all()


def test_block_and_tile_size_follow_the_budget() -> None:
    assert choose_block_size(1000, 16 * 1000 * 50) == 50
    assert choose_block_size(1000, 1) == 1
    assert choose_block_size(10, 10**12, max_block=64) == 64
    assert choose_tile_size(1000, 4 * 2 * 1000 * 2 * 7, 2) == 7  # two threads share the budget
    assert choose_tile_size(1000, 10**12, 2) == scoring.TILE_USERS


def test_tiny_budget_still_exact(small_chunks: None) -> None:
    users, movies, seen = make_case(33, 400, 5, 0.2, seed=5)
    top = recommend_top_n(FactorModel(users, movies), seen, 6, memory_budget_bytes=1)
    np.testing.assert_array_equal(top.movie_idx, brute_force(users @ movies.T, seen, 6)[0])


def test_shard_union_equals_one_process(small_chunks: None) -> None:
    users, movies, seen = make_case(101, 700, 8, 0.1, seed=6)
    model = FactorModel(users, movies)
    whole = recommend_top_n(model, seen, 7)
    shards = shard_users(101, 4)
    assert [len(s) for s in shards] == [26, 25, 25, 25]
    assert np.array_equal(np.concatenate(shards), np.arange(101))
    parts = [recommend_top_n(model, seen, 7, user_idx=s, n_threads=1) for s in shards]
    union = concat_top_n(parts)
    np.testing.assert_array_equal(union.user_idx, whole.user_idx)
    np.testing.assert_array_equal(union.movie_idx, whole.movie_idx)
    # OpenBLAS picks its sgemm kernel by matrix shape, and shards tile users differently, so a
    # score may differ in its last float32 bit (seen with OpenBLAS 0.3.31); the lists may not.
    np.testing.assert_allclose(union.scores, whole.scores, rtol=1e-6, atol=0)
    assert len(shard_users(3, 5)) == 5  # more shards than users: empty shards score fine
    assert recommend_top_n(model, seen, 7, user_idx=shard_users(3, 5)[-1]).movie_idx.shape == (0, 7)


def test_user_subset_in_any_order(small_chunks: None) -> None:
    users, movies, seen = make_case(50, 600, 6, 0.15, seed=7)
    pick = np.array([49, 3, 3, 17, 0])
    top = recommend_top_n(FactorModel(users, movies), seen, 5, user_idx=pick)
    ref, _ = brute_force(users[pick] @ movies.T, seen[pick], 5)
    np.testing.assert_array_equal(top.user_idx, pick)
    np.testing.assert_array_equal(top.movie_idx, ref)


@pytest.mark.parametrize("chunked", [False, True])
def test_generic_path_matches_factor_path(chunked: bool, request: pytest.FixtureRequest) -> None:
    if chunked:
        request.getfixturevalue("small_chunks")
    users, movies, seen = make_case(60, 800, 5, 0.1, seed=8)
    calls: list[int] = []
    generic = ScoreOnlyModel(users, movies)
    original = generic.score_users
    generic.score_users = lambda ub: calls.append(len(ub)) or original(ub)  # type: ignore[method-assign]
    budget = 800 * scoring.BYTES_PER_CELL * 25  # blocks of 25 users
    top = recommend_top_n(generic, seen, 8, memory_budget_bytes=budget)
    ref = recommend_top_n(FactorModel(users, movies), seen, 8)
    np.testing.assert_array_equal(top.movie_idx, ref.movie_idx)
    assert calls == [25, 25, 10]
    progress: list[tuple[int, int]] = []
    recommend_top_n(generic, seen, 8, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (60, 60)


def test_catalogue_mismatch_is_a_clear_error() -> None:
    users, movies, seen = make_case(4, 20, 2, 0.1, seed=9)
    with pytest.raises(ValueError, match="movies"):
        recommend_top_n(FactorModel(users, movies[:10]), seen, 3)
    for outside in ([-1], [4]):  # the kernel reads seen rows unchecked: refuse, do not mask the wrong row
        with pytest.raises(ValueError, match="seen matrix has rows 0..3"):
            recommend_top_n(FactorModel(users, movies), seen, 3, user_idx=outside)


def test_concurrent_calls_are_exact_and_restore_blas_threads() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    users, movies, seen = make_case(80, 5000, 8, 0.05, seed=10)  # chunked path at default size
    model = FactorModel(users, movies)
    ref = brute_force(users @ movies.T, seen, 10)[0]
    with ThreadPoolExecutor(3) as pool:
        shards = shard_users(80, 3)
        parts = list(pool.map(lambda s: recommend_top_n(model, seen, 10, user_idx=s, n_threads=1), shards))
    np.testing.assert_array_equal(concat_top_n(parts).movie_idx, ref)
    after = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert after == before


@pytest.mark.parametrize(("chunk", "tile"), SHAPES)
@pytest.mark.parametrize("ties", [False, True])
def test_every_block_shape_is_exact(chunk: int, tile: int, ties: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    use_shape(monkeypatch, chunk, tile)
    users, movies, seen = make_case(37, 1003, 5, 0.2, seed=11, ties=ties)
    dense = seen.toarray()
    dense[3, :] = 1  # everything seen
    dense[4, :] = 1
    dense[4, [0, 500, 1002]] = 0  # fewer unseen movies than n
    seen = sp.csr_matrix(dense)
    assert Layout.for_catalogue(1003, 9).chunk == chunk
    for n in (1, 9):
        top = recommend_top_n(FactorModel(users, movies), seen, n)
        idx, vals = brute_force(users @ movies.T, seen, n)
        np.testing.assert_array_equal(top.movie_idx, idx)
        np.testing.assert_array_equal(top.scores, vals)
    assert (top.movie_idx[3] == -1).all() and list(top.movie_idx[4, 3:]) == [-1] * 6


@pytest.mark.parametrize(("chunk", "tile"), SHAPES)
def test_generic_path_every_block_shape(chunk: int, tile: int, monkeypatch: pytest.MonkeyPatch) -> None:
    use_shape(monkeypatch, chunk, tile)
    users, movies, seen = make_case(29, 777, 4, 0.1, seed=12, ties=True)
    top = recommend_top_n(ScoreOnlyModel(users, movies), seen, 6, memory_budget_bytes=777 * 16 * 10)
    np.testing.assert_array_equal(top.movie_idx, brute_force(users @ movies.T, seen, 6)[0])


@pytest.mark.parametrize(("chunk", "tile"), SHAPES)
def test_special_values_rank_like_a_stable_argsort(chunk: int, tile: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """+inf first, -0.0 equal to 0.0, NaN and -inf never returned, whatever the layout."""
    use_shape(monkeypatch, chunk, tile)
    rng = np.random.default_rng(13)
    scores = rng.integers(-3, 4, (9, 640)).astype(np.float32)
    scores[0] = np.nan  # nothing rankable
    scores[1, 1::2] = np.nan
    scores[2, ::5] = -0.0
    scores[3, [9, 600]] = np.inf
    scores[4] = -np.inf
    scores[4, [7, 8]] = [np.nan, 1.0]
    scores[5, :] = np.float32(np.finfo(np.float32).min)  # the lowest finite score is still a score
    idx, vals = select_top_n(scores, 12)
    clean = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-clean, axis=1, kind="stable")[:, :12]
    ref_vals = np.take_along_axis(clean, order, axis=1)
    np.testing.assert_array_equal(idx, np.where(ref_vals > -np.inf, order, -1))  # +inf is a score, as in numpy
    np.testing.assert_array_equal(vals, ref_vals)
    assert (idx[0] == -1).all() and list(idx[3, :2]) == [9, 600] and list(idx[4, :2]) == [8, -1]
    assert list(idx[5]) == list(range(12))


@pytest.mark.parametrize(("n_movies", "n"), [(1, 1), (4096, 10), (4097, 10), (5000, 100), (59047, 10), (1000, 5)])
def test_layout_puts_every_movie_in_one_slot_and_pads_with_minus_inf(n_movies: int, n: int) -> None:
    layout = Layout.for_catalogue(n_movies, n)
    assert layout.width >= n_movies and layout.width - n_movies < max(layout.chunk, 1)
    scores = np.arange(2 * n_movies, dtype=np.float32).reshape(2, n_movies)
    buf = layout.new_buffer(3)[:, :2]
    layout.load(buf, scores)
    m = np.arange(n_movies)
    np.testing.assert_array_equal(buf[m // layout.chunks, 1, m % layout.chunks], scores[1])
    assert np.isneginf(buf).sum() == 2 * (layout.width - n_movies)
    short = layout.view(layout.new_buffer(3), 2)  # a short tile: compact, C-contiguous
    assert short.flags.c_contiguous and short.shape == (layout.chunk, 2, layout.chunks)
    layout.load(short, scores)
    np.testing.assert_array_equal(short[m // layout.chunks, 0, m % layout.chunks], scores[0])


def test_gemm_floor_uses_the_same_tiles_as_ours() -> None:
    from benchmarks.scoring import make_gemm_floors

    users, movies, _ = make_case(50, 5000, 8, 0.0, seed=14)
    floors = make_gemm_floors(users, movies, np.arange(50, dtype=np.int32), 10)
    assert set(floors) == {"gemm_plain", "gemm_sliced"}
    for floor in floors.values():
        floor()  # runs, on the same tiles and threads as recommend_top_n; returns nothing
    layout, tile, _ = scoring.plan_tiles(5000, 10)
    sliced = scoring.movies_by_slot(movies, layout)
    out = np.matmul(users[:tile], sliced)  # (chunk, users, chunks): movie m at [m // chunks, :, m % chunks]
    m = np.arange(5000)
    np.testing.assert_allclose(out[m // layout.chunks, :, m % layout.chunks].T, users[:tile] @ movies.T, rtol=1e-5)


class CoveredModel(ScoreOnlyModel):
    """Scores only ``columns`` (a head of the catalogue, like EASE); every other movie is 0.0."""

    def __init__(self, scores: np.ndarray, columns: np.ndarray, n_movies: int):
        self.scores, self.columns, self.n_movies = scores.astype(np.float32), columns, n_movies
        self.full_rows_scored = 0

    def covered_scorer(self):
        return self.columns, lambda user_idx: self.scores[user_idx]

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        self.full_rows_scored += len(user_idx)
        out = np.zeros((len(user_idx), self.n_movies), np.float32)
        out[:, self.columns] = self.scores[user_idx]
        return out


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("chunked", [False, True])
def test_covered_columns_path_equals_brute_force_over_the_whole_catalogue(
    ties: bool, chunked: bool, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunked:
        request.getfixturevalue("small_chunks")
    monkeypatch.setattr(scoring, "COVERED_TILE_USERS", 7)  # several tiles, the last one short
    rng = np.random.default_rng(3)
    n_users, n_movies = 60, 900
    columns = np.sort(rng.choice(n_movies, 300, replace=False))
    scores = rng.standard_normal((n_users, len(columns))).astype(np.float32)
    if ties:
        scores = np.round(scores)
    scores[0] = 0.0  # every movie ties at 0: the lowest unseen movie indices, covered or not
    scores[1] = -np.abs(scores[1])  # covered movies below the uncovered ones
    scores[2, :-3] = 5.0  # only 3 covered movies still unseen (below): fewer than n
    seen = (rng.random((n_users, n_movies)) < 0.1).astype(np.float32)
    seen[2, columns[:-3]] = 1.0
    seen = sp.csr_matrix(seen)
    model = CoveredModel(scores, columns, n_movies)
    full = model.score_users(np.arange(n_users))
    for n in (1, 5, 12):
        model.full_rows_scored = 0
        top = recommend_top_n(model, seen, n)
        idx, vals = brute_force(full, seen, n)
        np.testing.assert_array_equal(top.movie_idx, idx)
        np.testing.assert_array_equal(top.scores, vals)
        # whole rows only for the users the covered columns cannot decide (0, 1, 2, and ties/negatives)
        assert 3 <= model.full_rows_scored < n_users
