"""EASE's tail factors: the ridge tail without forming it, and top-N over head plus tail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.models import create_model
from recsys_core.models.base import Recommender
from recsys_core.models.ease import solve_ease_parts
from recsys_core.models.tail_factors import fit_tail_factors
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.serving.topn import merge_top_n, recommend_top_n
from tests.builders import synth_ratings


def binary_rows(n_users: int, n_movies: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    popularity = np.linspace(0.6, 0.02, n_movies)  # a head and a long tail
    return sp.csr_matrix((rng.random((n_users, n_movies)) < popularity).astype(np.float32))


def test_full_rank_factors_equal_the_ridge_tail() -> None:
    rows = binary_rows(80, 30, seed=0)
    head, tail = np.arange(12), np.arange(12, 30)
    x_head, x_tail = rows[:, head].tocsr(), rows[:, tail].tocsr()
    b, diag_p = solve_ease_parts(x_head, 4.0)
    a, v = fit_tail_factors(x_head, x_tail, b, diag_p, rank=12, seed=0)  # rank = head size: exact
    xh, xt = x_head.toarray().astype(np.float64), x_tail.toarray().astype(np.float64)
    ridge = np.linalg.solve(xh.T @ xh + 4.0 * np.eye(12), xh.T @ xt)
    np.testing.assert_allclose(a @ v.T, ridge, rtol=1e-3, atol=1e-4)
    assert a.shape == (12, 12) and v.shape == (18, 12)


def test_low_rank_keeps_the_leading_directions_and_unrated_movies_score_zero() -> None:
    rows = binary_rows(300, 60, seed=1).tolil()
    rows[:, 59] = 0  # a movie nobody rated
    rows = rows.tocsr()
    head, tail = np.arange(20), np.arange(20, 60)
    x_head, x_tail = rows[:, head].tocsr(), rows[:, tail].tocsr()
    b, diag_p = solve_ease_parts(x_head, 10.0)
    a, v = fit_tail_factors(x_head, x_tail, b, diag_p, rank=5, seed=0)
    xh, xt = x_head.toarray().astype(np.float64), x_tail.toarray().astype(np.float64)
    ridge = np.linalg.solve(xh.T @ xh + 10.0 * np.eye(20), xh.T @ xt)
    s = np.linalg.svd(ridge, compute_uv=False)
    best = np.sqrt(np.sum(s[5:] ** 2))  # Eckart-Young: the best any rank-5 matrix can do
    assert np.linalg.norm(ridge - a @ v.T) <= 1.01 * best
    assert np.all(v[-1] == 0)


def test_merge_of_two_lists_ranks_by_score_then_movie() -> None:
    a = (np.array([[3, 1, -1], [0, 2, 4]]), np.array([[5.0, 2.0, -np.inf], [1.0, 1.0, 1.0]], np.float32))
    b = (np.array([[7, -1, -1], [5, 6, 8]]), np.array([[2.0, -np.inf, -np.inf], [1.0, 0.5, 0.5]], np.float32))
    idx, val = merge_top_n(a, b, 3)
    np.testing.assert_array_equal(idx, [[3, 1, 7], [0, 2, 4]])
    np.testing.assert_array_equal(val, np.array([[5.0, 2.0, 2.0], [1.0, 1.0, 1.0]], np.float32))
    idx, _ = merge_top_n((a[0][:1], a[1][:1]), (b[0][:1] * 0 - 1, np.full((1, 3), -np.inf, np.float32)), 3)
    np.testing.assert_array_equal(idx, [[3, 1, -1]])


def test_merge_in_row_blocks_and_in_place_equals_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys_core.serving import topn

    rng = np.random.default_rng(3)
    rows, n = 11, 4
    a_idx = np.argsort(rng.random((rows, 20)), axis=1)[:, :n].astype(np.int32)
    b_idx = (20 + np.argsort(rng.random((rows, 20)), axis=1)[:, :n]).astype(np.int32)
    a_val = -np.sort(-rng.integers(0, 4, (rows, n)).astype(np.float32), axis=1)  # ties across the lists
    b_val = -np.sort(-rng.integers(0, 4, (rows, n)).astype(np.float32), axis=1)
    b_idx[2:5, 2:] = -1  # padding in some rows
    b_val[2:5, 2:] = -np.inf
    whole = merge_top_n((a_idx, a_val), (b_idx, b_val), n)
    monkeypatch.setattr(topn, "MERGE_ROWS", 3)  # blocks of 3, 3, 3, 2 rows
    np.testing.assert_array_equal(merge_top_n((a_idx, a_val), (b_idx, b_val), n)[0], whole[0])
    into = (a_idx.copy(), a_val.copy())
    merged = merge_top_n(into, (b_idx, b_val), n, out=into)  # written over the first list itself
    assert merged[0] is into[0]
    np.testing.assert_array_equal(merged[0], whole[0])
    np.testing.assert_array_equal(merged[1], whole[1])


@pytest.fixture(scope="module")
def fitted_pair() -> tuple[Recommender, Recommender, sp.csr_matrix]:
    """EASE with a 15-movie head and tail factors, scored densely (small profile) and by the
    covered head plus tail factors (large profile)."""
    ratings = synth_ratings(n_users=60, n_movies=50, per_user=15, seed=5)
    inter = to_interactions(ratings, fit_vocabulary(ratings))
    dense = create_model("ease", lambdas=[5.0], max_movies=15, tail_rank=8).fit(inter)
    sparse = create_model("ease", lambdas=[5.0], max_movies=15, tail_rank=8, dense_factors=False).fit(inter)
    return dense, sparse, inter.to_csr()


def brute_force(scores: np.ndarray, seen: sp.csr_matrix, n: int) -> np.ndarray:
    s = scores.astype(np.float32).copy()
    s[seen.toarray() != 0] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :n]


def test_every_rated_movie_scores_and_both_scoring_paths_agree(fitted_pair) -> None:
    dense, sparse, seen = fitted_pair
    users = np.arange(seen.shape[0])
    scores = dense.score_users(users)
    rated = np.flatnonzero(np.asarray(seen.sum(axis=0)).ravel() > 0)
    tail = np.setdiff1d(rated, dense._active)
    assert len(tail) and np.abs(scores[:, tail]).sum(axis=0).min() > 0  # no rated movie stuck at 0
    np.testing.assert_allclose(sparse.score_users(users), scores, rtol=1e-5, atol=1e-6)
    want = brute_force(scores, seen, 10)
    for model in (dense, sparse):  # factors() / covered head + tail factors
        top = recommend_top_n(model, seen, 10)
        agree = np.mean(top.movie_idx == want)  # float32 sums in another order may swap near-ties
        assert agree > 0.98, agree
    top = recommend_top_n(sparse, seen, 10, user_idx=users[::-3])  # a subset, any order
    np.testing.assert_array_equal(top.movie_idx, recommend_top_n(sparse, seen, 10).movie_idx[::-3])
    assert np.isin(recommend_top_n(sparse, seen, 10).movie_idx, tail).any()


def test_tail_survives_save_and_load(fitted_pair, tmp_path: Path) -> None:
    import json

    from recsys_core.models import load_model

    _, sparse, _ = fitted_pair
    sparse.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    users = np.arange(5)
    np.testing.assert_array_equal(back.score_users(users), sparse.score_users(users))
    state = json.loads((tmp_path / "m" / "model.json").read_text())["state"]
    assert state["tail_rank"] == 8 and state["tail_movies"] == len(sparse._tail) > 0


def test_tail_rank_zero_is_plain_ease(fitted_pair) -> None:
    _, _, seen = fitted_pair
    ratings = synth_ratings(n_users=60, n_movies=50, per_user=15, seed=5)
    inter = to_interactions(ratings, fit_vocabulary(ratings))
    plain = create_model("ease", lambdas=[5.0], max_movies=15, tail_rank=0).fit(inter)
    scores = plain.score_users(np.arange(seen.shape[0]))
    outside = np.setdiff1d(np.arange(seen.shape[1]), plain._active)
    assert np.all(scores[:, outside] == 0)


def test_fold_in_scores_the_tail_like_a_known_user(fitted_pair) -> None:
    from recsys_core.serving.foldin import build_foldin

    dense, _, seen = fitted_pair
    fold = build_foldin(dense)
    rated = seen[2].indices
    folded = fold.fold_in(rated, np.full(len(rated), 4.0)).scores
    np.testing.assert_allclose(folded, dense.score_users(np.array([2]))[0], rtol=1e-5, atol=1e-6)
    target = int(dense._tail[np.argmax(folded[dense._tail])])
    because = fold.contributors(rated, target)
    assert len(because) and set(because) <= set(rated)


def test_combined_ranks_its_ease_tail_like_ease(fitted_pair) -> None:
    """The default model at large scale: combined forwards the covered head and the tail."""
    _, sparse, seen = fitted_pair
    ratings = synth_ratings(n_users=60, n_movies=50, per_user=15, seed=5)
    inter = to_interactions(ratings, fit_vocabulary(ratings))
    ranker = {"lambdas": [5.0], "max_movies": 15, "tail_rank": 8, "dense_factors": False}
    combined = create_model("combined", ranker="ease", rater="bias", ranker_params=ranker).fit(inter)
    assert combined.tail_factors() is not None
    np.testing.assert_array_equal(
        recommend_top_n(combined, seen, 10).movie_idx, recommend_top_n(sparse, seen, 10).movie_idx
    )


class TwoPartModel(Recommender):
    """Covered head columns plus a factor tail, with exact small-integer scores (many ties)."""

    name = "two_part"

    def __init__(self, head: np.ndarray, head_scores: np.ndarray, users: np.ndarray, movies: np.ndarray, n: int):
        super().__init__()
        self.head, self.head_scores, self.users, self.movies = head, head_scores, users, movies
        self.tail = np.setdiff1d(np.arange(n), head)
        self.n_movies = n

    def fit(self, train, validation=None):  # pragma: no cover - built fitted
        return self

    def covered_scorer(self):
        return self.head, lambda user_idx: self.head_scores[user_idx]

    def tail_factors(self):
        return self.tail, lambda user_idx: self.users[user_idx], self.movies

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        out = np.zeros((len(user_idx), self.n_movies), np.float32)
        out[:, self.head] = self.head_scores[user_idx]
        out[:, self.tail] = self.users[user_idx] @ self.movies.T
        return out


def test_two_part_top_n_is_exact_whether_or_not_a_user_can_skip_the_tail() -> None:
    rng = np.random.default_rng(4)
    n_users, n_movies = 90, 70
    head = np.sort(rng.choice(n_movies, 30, replace=False))
    head_scores = rng.integers(0, 6, (n_users, 30)).astype(np.float32)
    users = rng.integers(-1, 2, (n_users, 3)).astype(np.float32)
    users[::3] *= 0  # these users' tail is all 0: bounded below their head, skipped
    users[1::3] *= 4  # these users' tail beats or ties their head
    movies = rng.integers(-1, 2, (n_movies - 30, 3)).astype(np.float32)
    model = TwoPartModel(head, head_scores, users, movies, n_movies)
    seen = sp.csr_matrix((rng.random((n_users, n_movies)) < 0.2).astype(np.float32))
    want = brute_force(model.score_users(np.arange(n_users)), seen, 8)
    top = recommend_top_n(model, seen, 8)
    np.testing.assert_array_equal(top.movie_idx, want)
    assert np.isin(top.movie_idx[1::3], model.tail).any() and not np.isin(top.movie_idx[::3], model.tail).any()
    some = np.array([50, 4, 7, 1])
    np.testing.assert_array_equal(recommend_top_n(model, seen, 8, user_idx=some).movie_idx, want[some])


def test_a_penalised_solve_is_dlae_and_its_tail_is_the_ridge_with_that_penalty() -> None:
    from recsys_core.models.ease import solve_penalised_parts

    rows = binary_rows(80, 30, seed=2)
    head, tail = np.arange(12), np.arange(12, 30)
    x_head, x_tail = rows[:, head].tocsr(), rows[:, tail].tocsr()
    xh, xt = x_head.toarray().astype(np.float64), x_tail.toarray().astype(np.float64)
    gram = xh.T @ xh
    b, diag_p, scale = solve_penalised_parts(gram, 4.0, 0.5)
    penalty = 4.0 + np.diag(gram)  # lambda + p / (1 - p) diag(G) at p 0.5
    inverse = np.linalg.inv(gram + np.diag(penalty))
    expected = np.eye(12) - inverse * penalty[None, :]  # DLAE: B = I - P Lambda
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(b, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(diag_p, np.diag(inverse), rtol=1e-10)
    a, v = fit_tail_factors(x_head, x_tail, b, diag_p, rank=12, seed=0, column_scale=scale)
    np.testing.assert_allclose(a @ v.T, inverse @ xh.T @ xt, rtol=1e-3, atol=1e-4)


def test_a_penalty_outside_its_range_is_refused() -> None:
    from recsys_core.errors import ModelError
    from recsys_core.models.ease import solve_penalised_parts

    with pytest.raises(ModelError, match="dropout penalty"):
        solve_penalised_parts(np.eye(3), 1.0, 1.0)
