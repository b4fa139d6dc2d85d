"""session_ease: EASE plus a time-local co-occurrence term, chosen on the validation slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ModelError
from recsys_core.models import create_model, load_model
from recsys_core.models.session_ease import local_gram
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import holdout_validation
from tests.builders import synth_ratings

GRID = [[0, 1.0, 0.0], [3, 2.0, 0.25], [6, 3.0, 0.5]]


def split(seed: int = 3, drop_time: bool = False):
    frame = synth_ratings(n_users=40, n_movies=30, per_user=15, seed=5)
    if drop_time:
        frame = frame.drop(columns="timestamp")
    vocab = fit_vocabulary(frame)
    train, val = holdout_validation(frame, 0.1, seed=seed)
    return to_interactions(train, vocab), to_interactions(val, vocab), vocab


def gram_for(rows: list[tuple[int, int, int]], head_ids: list[int], width: int) -> tuple[np.ndarray, dict]:
    """local_gram (scale 1) of (user, movie, time) rows, and each head movie id's row in it."""
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "timestamp"]).assign(rating=4.0)
    vocab = fit_vocabulary(frame)
    head = np.sort(vocab.encode_movies(pd.Series(head_ids)).astype(np.int32))
    pos = {m: int(np.searchsorted(head, vocab.encode_movies(pd.Series([m]))[0])) for m in head_ids}
    return local_gram(to_interactions(frame, vocab), head, vocab.n_movies, width=width, scale=1.0), pos


def test_local_gram_counts_pairs_by_their_gap_in_each_users_time_order() -> None:
    # user 1 rates 10, 12, 13, 11 in time order (not id order); user 2 rates 11 then 10; 12 is a tail movie
    rows = [(1, 10, 100), (1, 11, 400), (1, 12, 200), (1, 13, 300), (2, 10, 600), (2, 11, 500)]
    g, pos = gram_for(rows, [10, 11, 13], width=2)
    assert g[pos[13], pos[11]] == pytest.approx(1.0)  # gap 1 for user 1
    assert g[pos[10], pos[11]] == pytest.approx(1.0)  # gap 1 for user 2 only (gap 3 for user 1 > width)
    assert g[pos[10], pos[13]] == pytest.approx(np.exp(-1.0))  # gap 2 across the tail movie: positions count it
    np.testing.assert_allclose(g, g.T)
    assert np.all(np.diag(g) == 0)


def test_a_pair_beyond_a_gap_without_head_pairs_still_counts() -> None:
    # head, tail, head: gap 1 pairs nothing in the head, gap 2 does
    g, pos = gram_for([(1, 10, 100), (1, 12, 200), (1, 13, 300)], [10, 13], width=2)
    assert g[pos[10], pos[13]] == pytest.approx(np.exp(-1.0))


def test_plain_grid_is_exactly_ease() -> None:
    t, v, vocab = split()
    ours = create_model("session_ease", lambdas=[5.0, 50.0], local_grid=[[0, 1.0, 0.0]]).fit(t, v)
    ease = create_model("ease", lambdas=[5.0, 50.0]).fit(t, v)
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(ours.score_users(users), ease.score_users(users), rtol=1e-5, atol=1e-6)
    assert ours.local == (0, 1.0, 0.0)


def test_validation_chooses_the_best_setting_from_weights_fitted_on_train_only() -> None:
    from recsys_core.models.ease import gram_matrix, solve_ease

    t, v, _ = split()
    model = create_model("session_ease", seed=1, lambdas=[50.0], local_grid=GRID).fit(t, v)
    scores = model.history["local_val_ndcg"]
    assert len(scores) == len(GRID)
    assert list(model.local) == GRID[int(np.nanargmax(scores))]
    width, scale, alpha = model.local
    train_only = gram_matrix(t.to_csr()[:, model._active]) + alpha * local_gram(
        t, model._active, model.n_movies, width, scale
    )
    np.testing.assert_allclose(model._b_train, solve_ease(train_only, 50.0 * (1 + alpha / 4)), atol=1e-6)


def test_a_fixed_local_setting_refits_and_round_trips(tmp_path: Path) -> None:
    t, v, vocab = split()
    model = create_model("session_ease", seed=1, lambdas=[50.0], local_grid=[[6, 3.0, 0.5]]).fit(t, v)
    assert model.local == (6, 3.0, 0.5) and model.local_lambda == pytest.approx(56.25)
    settings = model.fixed_settings()
    assert settings["local_grid"] == [[6, 3.0, 0.5]] and settings["lambdas"] == [50.0]
    users = np.arange(vocab.n_users)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    assert tuple(loaded.local) == (6, 3.0, 0.5) and loaded.local_lambda == pytest.approx(56.25)
    refit = create_model("session_ease", seed=1, **settings).fit(t, v)  # same data: same weights
    np.testing.assert_allclose(refit.score_users(users), model.score_users(users), rtol=1e-5, atol=1e-6)


def test_a_local_setting_changes_the_scores_beyond_its_lambda() -> None:
    t, v, vocab = split()
    local = create_model("session_ease", lambdas=[50.0], local_grid=[[6, 3.0, 0.5]]).fit(t, v)
    ease = create_model("ease", lambdas=[50.0 * (1 + 0.5 / 4)]).fit(t, v)  # the same lambda, no local term
    users = np.arange(vocab.n_users)
    assert not np.allclose(local.score_users(users), ease.score_users(users), atol=1e-4)


def test_the_large_profile_is_refused_with_the_way_out() -> None:
    t, v, _ = split()
    with pytest.raises(ModelError, match="large scale profile.*--model ease"):
        create_model("session_ease", lambdas=[50.0], blocked_gram=True).fit(t, v)


def test_without_timestamps_it_says_what_it_needs() -> None:
    t, v, _ = split(drop_time=True)
    with pytest.raises(ModelError, match="no timestamps.*--model ease"):
        create_model("session_ease", lambdas=[50.0], local_grid=GRID).fit(t, v)


@pytest.mark.parametrize(
    "grid", [[[3, 0.0, 0.5]], [[3, 1.0]], [[-1, 1.0, 0.5]], [], [3, 2.0, 0.5], [["a", 1, 1]], [[3, float("nan"), 0.5]]]
)
def test_a_bad_grid_names_the_option(grid) -> None:
    t, v, _ = split()
    with pytest.raises(ModelError, match="params.local_grid"):
        create_model("session_ease", lambdas=[50.0], local_grid=grid).fit(t, v)


def test_a_warm_refit_equals_one_from_scratch() -> None:
    """The warm refit reuses the candidate's plain Gram and rebuilds the local term on all ratings."""
    from recsys_core.models.interaction_utils import union_interactions

    t, v, vocab = split()
    candidate = create_model("session_ease", seed=1, lambdas=[50.0], local_grid=[[6, 3.0, 0.5]]).fit(t, v)
    settings = candidate.fixed_settings()
    everything = union_interactions(t, v)
    warm = create_model("session_ease", seed=1, **settings)
    assert warm.start_from(candidate, 0.25)
    warm.fit(everything)
    cold = create_model("session_ease", seed=1, **settings).fit(everything)
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(warm.score_users(users), cold.score_users(users), rtol=1e-5, atol=1e-6)
    assert warm.local == cold.local == (6, 3.0, 0.5)


def _one_head_rating_per_user_in_train():
    """Train: each user's first head-rating only (no local pairs); validation: the rest (many)."""
    frame = synth_ratings(n_users=40, n_movies=30, per_user=15, seed=5).sort_values(["user_id", "timestamp"])
    vocab = fit_vocabulary(frame)
    first = frame.groupby("user_id").head(1)
    rest = frame.drop(first.index)
    return to_interactions(first, vocab), to_interactions(rest, vocab), vocab


def test_an_indefinite_setting_is_skipped_in_the_search() -> None:
    t, v, _ = split()
    model = create_model("session_ease", lambdas=[0.01], local_grid=[[0, 1.0, 0.0], [6, 3.0, 500.0]]).fit(t, v)
    assert np.isnan(model.history["local_val_ndcg"][1]) and model.local == (0, 1.0, 0.0)


def test_a_setting_indefinite_on_all_ratings_falls_back_with_a_warning(caplog) -> None:
    """Definite on the training part (it has no local pairs) but not on train plus validation."""
    t, v, vocab = _one_head_rating_per_user_in_train()
    model = create_model("session_ease", lambdas=[0.01], local_grid=[[6, 3.0, 500.0]])
    with caplog.at_level("WARNING", logger="recsys_core.models.session_ease"):
        model.fit(t, v)
    assert not np.isnan(model.history["local_val_ndcg"][0])  # definite on train: scored, not skipped
    assert model.local == (0, 1.0, 0.0) and model.local_lambda == pytest.approx(0.01)
    assert "indefinite" in caplog.text and "next-best" in caplog.text
    ease = create_model("ease", lambdas=[0.01]).fit(t, v)
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(model.score_users(users), ease.score_users(users), rtol=1e-4, atol=1e-4)


def test_the_search_ranks_definite_settings_by_validation_best_first() -> None:
    t, v, _ = split()
    grid = [(0, 1.0, 0.0), (3, 2.0, 0.25), (6, 3.0, 0.5), (6, 3.0, 500.0)]
    model = create_model("session_ease", seed=1, lambdas=[5.0], local_grid=[list(g) for g in grid]).fit(t, v)
    model.history["local_val_ndcg"] = []
    from recsys_core.models.ease import gram_matrix

    ranked = model._search_local(t, v, grid, t.to_csr(), gram_matrix(t.to_csr()[:, model._active]), {})
    scores = dict(zip(grid, model.history["local_val_ndcg"], strict=True))
    assert np.isnan(scores[(6, 3.0, 500.0)]) and (6, 3.0, 500.0) not in ranked  # indefinite: skipped
    assert ranked == sorted(ranked, key=lambda g: (-scores[g], grid.index(g)))
    assert ranked[0] == model.local


def test_a_fallback_solves_the_next_ranked_setting_with_its_own_train_weights(monkeypatch, caplog) -> None:
    """The best two share (width, scale) and are indefinite on all ratings: the larger alpha is
    skipped without a second solve, and the third setting is solved, train-only weights too."""
    from recsys_core.models.ease import gram_matrix, solve_ease
    from recsys_core.models.session_ease import SessionEASE

    t, v, _ = split()
    ranked = [(6, 3.0, 500.0), (6, 3.0, 1000.0), (3, 2.0, 0.25), (0, 1.0, 0.0)]
    monkeypatch.setattr(SessionEASE, "_search_local", lambda self, train, validation, grid, *caches: list(ranked))
    model = create_model("session_ease", seed=1, lambdas=[5.0], local_grid=[list(g) for g in ranked])
    with caplog.at_level("WARNING", logger="recsys_core.models.session_ease"):
        model.fit(t, v)
    assert model.local == (3, 2.0, 0.25) and model.local_lambda == pytest.approx(5.0 * (1 + 0.25 / 4))
    assert caplog.text.count("indefinite") == 1
    train_only = gram_matrix(t.to_csr()[:, model._active]) + 0.25 * local_gram(t, model._active, model.n_movies, 3, 2.0)
    expected = solve_ease(train_only, model.local_lambda)
    assert np.abs(expected).max() > 0.01  # not trivially zero weights
    np.testing.assert_allclose(model._b_train, expected, atol=1e-6)


def test_an_unusable_lambda_is_a_model_error_naming_the_option() -> None:
    from recsys_core.models.interaction_utils import union_interactions

    t, v, _ = split()
    with pytest.raises(ModelError, match="params.lambdas"):
        create_model("session_ease", lambdas=[-1000.0], local_grid=[[0, 1.0, 0.0]]).fit(union_interactions(t, v))


def test_a_refit_whose_setting_turns_indefinite_solves_plain_ease_instead(caplog) -> None:
    t, v, _ = _one_head_rating_per_user_in_train()
    from recsys_core.models.interaction_utils import union_interactions

    refit = create_model("session_ease", lambdas=[0.01], local_grid=[[6, 3.0, 500.0]])
    with caplog.at_level("WARNING", logger="recsys_core.models.session_ease"):
        refit.fit(union_interactions(t, v))  # a refit: no validation, the candidate's setting only
    assert refit.local == (0, 1.0, 0.0) and "indefinite" in caplog.text
    assert refit.fixed_settings()["local_grid"] == [[0, 1.0, 0.0]]  # what the next refit would solve


EXTRAS = {"penalty_grid": [[0.25, 1.0], [0.5, 0.5]], "rating_weights": [0.1, 0.2]}


def test_weighted_rows_centre_each_users_stars_and_keep_every_rated_movie() -> None:
    from recsys_core.models.interaction_utils import MIN_ROW_WEIGHT, weighted_rows
    from recsys_core.prep.interactions import Interactions

    data = Interactions(
        np.array([0, 0, 0, 1]), np.array([0, 1, 2, 0]), np.array([5.0, 3.0, 1.0, 4.0], np.float32), 2, 3
    )
    rows = weighted_rows(data, 0.1).toarray()
    np.testing.assert_allclose(rows[0], [1.2, 1.0, 0.8])  # user 0's mean is 3
    np.testing.assert_allclose(rows[1], [1.0, 0.0, 0.0])  # one rating: its own mean
    assert weighted_rows(data, 1.0).toarray()[0, 2] == pytest.approx(MIN_ROW_WEIGHT)  # 1 + (1 - 3) floored, kept
    assert weighted_rows(data, 1.0).nnz == 4


def test_a_fixed_penalty_and_row_weight_solve_dlae_on_the_weighted_rows(tmp_path: Path) -> None:
    from recsys_core.models.ease import gram_matrix, solve_penalised_parts
    from recsys_core.models.interaction_utils import union_interactions, weighted_rows

    t, v, vocab = split()
    params = {"lambdas": [50.0], "local_grid": [[6, 3.0, 0.5]], "penalty": [0.5, 0.5], "rating_weight": 0.2}
    model = create_model("session_ease", seed=1, **params).fit(t, v)
    everything = union_interactions(t, v)
    rows = weighted_rows(everything, 0.2).astype(np.float64)
    system = gram_matrix(rows[:, model._active]) + 0.5 * local_gram(everything, model._active, model.n_movies, 6, 3.0)
    expected = solve_penalised_parts(system, 50.0 * (1 + 0.5 / 4) * 0.5, 0.5)[0]
    np.testing.assert_allclose(model._b, expected, rtol=1e-5, atol=1e-6)
    assert model.local_lambda == pytest.approx(28.125)
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(  # known users are scored with their weighted rows
        model.score_users(users)[:, model._active], rows[:, model._active] @ expected, rtol=1e-4, atol=1e-5
    )
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert (loaded.penalty, loaded.penalty_factor, loaded.rating_weight) == (0.5, 0.5, 0.2)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))


def test_the_extra_stages_are_kept_only_when_validation_improves_and_refit_as_chosen() -> None:
    t, v, vocab = split()
    model = create_model("session_ease", seed=1, lambdas=[50.0], local_grid=GRID, **EXTRAS).fit(t, v)
    local_best = np.nanmax(model.history["local_val_ndcg"])
    extra = model.history["extra_val_ndcg"]
    assert len(extra) == len(EXTRAS["penalty_grid"]) + len(EXTRAS["rating_weights"])
    penalties = extra[: len(EXTRAS["penalty_grid"])]
    if max(penalties) > local_best:
        assert [model.penalty, model.penalty_factor] == EXTRAS["penalty_grid"][int(np.argmax(penalties))]
    else:
        assert (model.penalty, model.penalty_factor) == (0.0, 1.0)
    weights = extra[len(EXTRAS["penalty_grid"]) :]
    if max(weights) > max(local_best, *penalties):
        assert model.rating_weight == EXTRAS["rating_weights"][int(np.argmax(weights))]
    else:
        assert model.rating_weight == 0.0
    settings = model.fixed_settings()
    assert settings["penalty_grid"] == [] and settings["rating_weights"] == []
    refit = create_model("session_ease", seed=1, **settings).fit(t, v)  # same data: same weights
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(refit.score_users(users), model.score_users(users), rtol=1e-5, atol=1e-6)


def test_a_candidate_with_weighted_rows_is_refit_from_its_own_gram() -> None:
    from recsys_core.models.interaction_utils import union_interactions

    t, v, vocab = split()
    params = {"lambdas": [50.0], "local_grid": [[6, 3.0, 0.5]], "penalty": [0.25, 1.0], "rating_weight": 0.1}
    candidate = create_model("session_ease", seed=1, **params).fit(t, v)
    refit = create_model("session_ease", seed=1, **candidate.fixed_settings())
    assert not refit.start_from(candidate, 0.25)
    everything = union_interactions(t, v)
    refit.fit(everything)
    np.testing.assert_allclose(
        refit.score_users(np.arange(vocab.n_users)),
        candidate.score_users(np.arange(vocab.n_users)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_the_fold_in_weights_a_visitors_stars_as_a_known_users_row() -> None:
    from recsys_core.serving.foldin import build_foldin

    t, v, _ = split()
    params = {"lambdas": [50.0], "local_grid": [[6, 3.0, 0.5]], "penalty": [0.5, 1.0], "rating_weight": 0.2}
    model = create_model("session_ease", seed=1, max_movies=20, **params).fit(t, v)  # a head and a tail
    assert len(model._tail)
    fold = build_foldin(model)
    assert fold.rating_weight == 0.2 and "weighted by their stars" in fold.note
    row = model._rows[0]
    mine = np.concatenate([t.rating[t.user_idx == 0], v.rating[v.user_idx == 0]])
    movies = np.concatenate([t.movie_idx[t.user_idx == 0], v.movie_idx[v.user_idx == 0]])
    assert set(movies) == set(row.indices)
    folded = fold.fold_in(movies, mine).scores
    np.testing.assert_allclose(folded, model.score_users(np.array([0]))[0], rtol=1e-4, atol=1e-5)


def test_because_you_rated_ranks_by_each_movies_share_of_the_score() -> None:
    """With weighted rows a rated movie adds its row value times its weight to the score; the
    explanation names the movies that add most, for a known user and a visitor alike, over the
    head (B) and the tail (factors), rated movies outside the head adding nothing."""
    from recsys_core.serving.foldin import build_foldin

    t, v, _ = split()
    params = {"lambdas": [50.0], "local_grid": [[6, 3.0, 0.5]], "penalty": [0.5, 1.0], "rating_weight": 0.5}
    model = create_model("session_ease", seed=1, max_movies=20, **params).fit(t, v)  # a head and a tail
    fold = build_foldin(model)
    rated, values = fold.user_row(0)
    np.testing.assert_array_equal(rated, model._rows[0].indices)
    np.testing.assert_array_equal(values, model._rows[0].data)  # the row's own weighted values
    assert np.ptp(values) > 0 and (fold.position[rated] < 0).any()  # and some rated movies off the head
    mine = np.concatenate([t.rating[t.user_idx == 0], v.rating[v.user_idx == 0]])
    movies = np.concatenate([t.movie_idx[t.user_idx == 0], v.movie_idx[v.user_idx == 0]])
    np.testing.assert_allclose(fold.row_values(mine)[np.argsort(movies)], values[np.argsort(rated)], rtol=1e-6)
    # every input movie's weight towards every movie: B on the head, the tail factors' product beyond
    weight = np.zeros((model.n_movies, model.n_movies), np.float64)
    head = np.asarray(model._active)
    weight[np.ix_(head, head)] = model._b
    weight[np.ix_(head, model._tail)] = model._tail_a @ model._tail_v.T
    scores = model.score_users(np.array([0]))[0]
    changed = 0
    for target in np.setdiff1d(np.arange(model.n_movies), rated):
        share = values * weight[rated, target]
        np.testing.assert_allclose(share.sum(), scores[target], rtol=1e-4, atol=1e-5)  # shares make the score
        best = np.argsort(-share, kind="stable")[:3]
        expected = rated[best][share[best] > 0]
        got = fold.contributors(rated, int(target), values=values)
        np.testing.assert_array_equal(got, expected)
        changed += not np.array_equal(got, fold.contributors(rated, int(target)))
    assert changed, "the row values change at least one explanation on this data"


@pytest.mark.parametrize(
    "params",
    [
        {"penalty_grid": [[1.0, 1.0]]},
        {"penalty_grid": [[0.5, 0.0]]},
        {"penalty_grid": [0.5]},
        {"penalty": [0.5]},
        {"rating_weights": [1.5]},
        {"rating_weight": "a"},
        {"rating_weights": [float("nan")]},
    ],
)
def test_bad_extra_settings_name_the_options(params) -> None:
    t, v, _ = split()
    with pytest.raises(ModelError, match="params.penalty_grid.*params.rating_weights"):
        create_model("session_ease", lambdas=[50.0], local_grid=GRID, **params).fit(t, v)


def test_with_a_penalty_and_row_weight_the_tail_is_the_exact_penalised_ridge() -> None:
    from recsys_core.models.ease import gram_matrix
    from recsys_core.models.interaction_utils import union_interactions, weighted_rows

    t, v, vocab = split()
    params = {"lambdas": [50.0], "local_grid": [[6, 3.0, 0.5]], "penalty": [0.5, 1.0], "rating_weight": 0.2}
    model = create_model("session_ease", seed=1, max_movies=20, **params).fit(t, v)  # tail rank 64 > 10: exact
    everything = union_interactions(t, v)
    rows = weighted_rows(everything, 0.2).astype(np.float64).toarray()
    head, tail = model._active, model._tail
    system = gram_matrix(weighted_rows(everything, 0.2)[:, head].astype(np.float64)) + 0.5 * local_gram(
        everything, head, model.n_movies, 6, 3.0
    )
    lam = 50.0 * (1 + 0.5 / 4)
    inverse = np.linalg.inv(system + np.diag(lam + np.diag(system)))  # p 0.5: lambda + diag(G)
    ridge = inverse @ rows[:, head].T @ rows[:, tail]
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(model.score_users(users)[:, tail], rows[:, head] @ ridge, rtol=1e-3, atol=1e-5)


def test_fixed_extras_with_a_validation_slice_give_train_only_weights_with_them() -> None:
    from recsys_core.models.ease import gram_matrix, solve_penalised_parts
    from recsys_core.models.interaction_utils import weighted_rows

    t, v, _ = split()
    params = {"lambdas": [50.0], "local_grid": [[6, 3.0, 0.5]], "penalty": [0.5, 0.5], "rating_weight": 0.2}
    model = create_model("session_ease", seed=1, **params).fit(t, v)
    rows = weighted_rows(t, 0.2)[:, model._active].astype(np.float64)
    system = gram_matrix(rows) + 0.5 * local_gram(t, model._active, model.n_movies, 6, 3.0)
    expected = solve_penalised_parts(system, 50.0 * (1 + 0.5 / 4) * 0.5, 0.5)[0]
    np.testing.assert_allclose(model._b_train, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [{"penalty_grid": [[0.5, 1.0]], "penalty": [0.25, 1.0]}, {"rating_weights": [0.1], "rating_weight": 0.2}],
)
def test_a_grid_and_a_fixed_value_of_the_same_stage_are_refused(params) -> None:
    t, v, _ = split()
    with pytest.raises(ModelError, match="either params.penalty_grid or a fixed params.penalty"):
        create_model("session_ease", lambdas=[50.0], local_grid=GRID, **params).fit(t, v)
