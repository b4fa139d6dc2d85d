"""Scale paths on tiny data: Parquet/tf.data streaming, per-example L2, the size-chosen rater
of ``combined``, and EASE's large-release paths (validation sample, sparse scoring)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from recsys_core.models import create_model, load_model
from recsys_core.models.streaming import iter_pair_batches, pairs_dataset, should_stream, write_pairs_parquet
from recsys_core.prep.interactions import Interactions
from recsys_core.scale import choose_scale, large_rater_params, model_params

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def tiny_interactions(n_users: int = 40, n_movies: int = 30, per_user: int = 10, seed: int = 0) -> Interactions:
    """Distinct (user, movie) pairs with ratings that depend on both ids (learnable)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    movies = np.concatenate([rng.choice(n_movies, per_user, replace=False) for _ in range(n_users)])
    rating = np.clip(np.round(2 * (3 + np.sin(users) + np.cos(movies))) / 2, 1, 5).astype(np.float32)
    return Interactions(users.astype(np.int64), movies.astype(np.int64), rating, n_users, n_movies)


def split(data: Interactions, fraction: float = 0.2, seed: int = 1) -> tuple[Interactions, Interactions]:
    val = np.random.default_rng(seed).random(len(data)) < fraction
    part = lambda m: Interactions(data.user_idx[m], data.movie_idx[m], data.rating[m], data.n_users, data.n_movies)  # noqa: E731
    return part(~val), part(val)


def test_parquet_epochs_cover_every_pair_once_in_a_seeded_new_order(tmp_path: Path) -> None:
    data = tiny_interactions()
    path = write_pairs_parquet(data, tmp_path / "pairs.parquet", seed=3, row_group_rows=64)
    epoch0 = list(iter_pair_batches(path, 50, seed=3, epoch=0))
    epoch1 = list(iter_pair_batches(path, 50, seed=3, epoch=1))
    keys = lambda batches: np.concatenate([u * 1000 + m for u, m, _ in batches])  # noqa: E731
    expected = np.sort(data.user_idx * 1000 + data.movie_idx)
    assert np.array_equal(np.sort(keys(epoch0)), expected)
    assert np.array_equal(np.sort(keys(epoch1)), expected)
    assert not np.array_equal(keys(epoch0), keys(epoch1))
    assert np.array_equal(keys(epoch0), keys(list(iter_pair_batches(path, 50, seed=3, epoch=0))))
    assert max(len(b[0]) for b in epoch0) <= 50


def test_pairs_dataset_yields_typed_batches(tmp_path: Path) -> None:
    data = tiny_interactions()
    path = write_pairs_parquet(data, tmp_path / "pairs.parquet", seed=0)
    transform = lambda u, m, r: ({"user": u, "movie": m}, r - 3.0)  # noqa: E731
    batches = list(pairs_dataset(path, 128, seed=0, transform=transform))
    assert sum(int(y.shape[0]) for _, y in batches) == len(data)
    x, y = batches[0]
    assert x["user"].dtype.name == "int32" and y.dtype.name == "float32"


def test_streaming_is_the_profiles_choice_not_the_data_size() -> None:
    assert not should_stream({})
    assert should_stream({"stream": True})
    assert not should_stream({"stream": False})
    assert choose_scale(5_000_001, 162_541, 59_047).stream_training
    assert not choose_scale(1_000_000, 6_040, 3_706).stream_training


def test_streamed_biased_mf_learns_saves_loads_and_cleans_up(tmp_path: Path) -> None:
    train, val = split(tiny_interactions())
    params = {
        "stream": True,
        "per_example_l2": True,
        "l2": 0.01,
        "dim": 4,
        "epochs": 3,
        "batch_size": 64,
        "learning_rate": 1e-2,
        "patience": 5,
    }
    model = create_model("biased_mf", seed=5, **params)
    model.set_work_dir(tmp_path / "run")
    model.fit(train, val)
    assert len(model.history["loss"]) >= 2 and "val_rmse" in model.history  # more than one epoch ran
    assert not list((tmp_path / "run").glob("*.parquet"))  # the pairs file does not outlive fit
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")  # safe_mode=True
    np.testing.assert_allclose(loaded.predict(val.user_idx, val.movie_idx), model.predict(val.user_idx, val.movie_idx))
    again = create_model("biased_mf", seed=5, **params).fit(train, val)
    np.testing.assert_allclose(again.predict(val.user_idx, val.movie_idx), model.predict(val.user_idx, val.movie_idx))


def test_streamed_pair_net_model_fits() -> None:
    train, val = split(tiny_interactions())
    model = create_model("dot_bias", seed=0, stream=True, dim=4, epochs=3, batch_size=64, patience=5).fit(train, val)
    assert len(model.history["loss"]) == 3
    assert model.predict(val.user_idx, val.movie_idx).shape == (len(val),)


def test_scale_params_grow_with_data() -> None:
    small, big = large_rater_params(1_000_000), large_rater_params(25_000_000)
    assert 512 <= small["batch_size"] < big["batch_size"] <= 65_536
    assert small["learning_rate"] <= big["learning_rate"] <= 1e-2
    assert choose_scale(100_000, 943, 1682).name == "small"
    assert choose_scale(25_000_000, 162_541, 59_047).name == "large"
    assert choose_scale(4_000_000, 100_000, 10_000).name == "large"  # 1e9 cells: no dense matrix
    assert "cells" in choose_scale(4_000_000, 100_000, 10_000).reason


def test_combined_takes_the_scalable_rater_from_a_large_profile_and_reloads_it(tmp_path: Path) -> None:
    train, val = split(tiny_interactions())
    profile = choose_scale(len(train), train.n_users, train.n_movies, forced="large")
    params = model_params(profile, "combined")
    assert params["rater"] == "biased_mf" and params["rater_params"]["stream"] is True
    assert params["ranker"] == "ease"  # session_ease has no blocked Gram for a large catalogue
    params["rater_params"].update(dim=4, epochs=2, batch_size=64)  # tiny and quick
    params["ranker_params"]["lambdas"] = [10.0]
    model = create_model("combined", seed=0, **params)
    model.set_work_dir(tmp_path)
    model.fit(train, val)
    assert model.params["rater"] == "biased_mf" and model.params["scale"] == "large"
    assert model.rater.name == "biased_mf"
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.label == model.label
    np.testing.assert_allclose(loaded.predict(val.user_idx, val.movie_idx), model.predict(val.user_idx, val.movie_idx))


def test_ease_large_paths_match_the_small_ones() -> None:
    train, val = split(tiny_interactions(n_users=60))
    small = create_model("ease", seed=0, lambdas=[1.0, 10.0]).fit(train, val)
    profile = choose_scale(len(train), train.n_users, train.n_movies, forced="large")
    large_params = {**model_params(profile, "ease"), "validation_users": 5}  # sample 5 of 60 users
    large = create_model("ease", seed=0, lambdas=[1.0, 10.0], **large_params).fit(train, val)
    assert small.factors() is not None and large.factors() is None
    users = np.arange(train.n_users)
    assert len(large.history["val_ndcg"]) == 2
    # One lambda: the sampled validation cannot pick another one, so the blocked-Gram solve and
    # the sparse one must give the same scores.
    small_one = create_model("ease", seed=0, lambdas=[10.0]).fit(train, val)
    large_one = create_model("ease", seed=0, lambdas=[10.0], **large_params).fit(train, val)
    np.testing.assert_allclose(large_one.score_users(users), small_one.score_users(users), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_ratings", [100_000, 1_000_000])
def test_small_releases_keep_the_blend_and_rank_with_session_ease(n_ratings: int) -> None:
    profile = choose_scale(n_ratings, 6_040, 3_706)
    params = model_params(profile, "combined")
    assert profile.name == "small" and params["rater"] == "blend" and params["ranker"] == "session_ease"
    assert model_params(profile, "ease")["validation_users"] is None
    model = create_model("combined", seed=0, **params)
    assert model.ranker.name == "session_ease" and model.ranker.params["dense_factors"] is True


def test_forced_profile_and_refit_limit() -> None:
    assert choose_scale(100_000, 943, 1682, forced="large").name == "large"
    assert not choose_scale(30_000_000, 10, 10, refit_max_ratings=25_000_000).refit
    assert choose_scale(30_000_000, 10, 10, refit_max_ratings=None).refit
    assert not choose_scale(10, 10, 10, refit_full=False).refit


def test_ease_gram_update_equals_the_direct_gram() -> None:
    from recsys_core.models.ease import add_rows_to_gram, gram_matrix

    train, val = split(tiny_interactions(n_users=50, n_movies=25))
    rows, added = train.to_csr(), val.to_csr()
    got = add_rows_to_gram(gram_matrix(rows), rows, added)
    np.testing.assert_array_equal(got, gram_matrix(rows + added))
    np.testing.assert_array_equal(got, gram_matrix(rows + added, blocked=True, block_rows=7))


def test_ease_large_profile_on_a_head_of_the_catalogue_chooses_and_solves_like_brute_force() -> None:
    """Large profile, B on 20 of 30 movies: validation ranks the head only (top-N's covered path),
    the final B comes from the updated Gram; both must equal the direct computations."""
    from recsys_core.evaluation.metrics import ranking_metrics
    from recsys_core.models.ease import HeadWeights, solve_ease
    from recsys_core.models.interaction_utils import restrict_to_users, sample_validation_users

    train, val = split(tiny_interactions(n_users=60))
    profile = choose_scale(len(train), train.n_users, train.n_movies, forced="large")
    params = {**model_params(profile, "ease"), "validation_users": 30, "max_movies": 20}
    grid = [0.5, 5.0, 50.0]
    model = create_model("ease", seed=0, lambdas=grid, **params).fit(train, val)
    seen, active = train.to_csr(), model._active
    sample = sample_validation_users(val, 30, 0)
    rows, truth = seen[sample], restrict_to_users(val, sample, train.n_users).to_csr()
    expected = []
    for lam in grid:  # brute force: full rows, seen masked, a stable argsort (ties: lower movie first)
        scores = HeadWeights(rows, solve_ease(seen[:, active], lam), active, 30)
        full = scores.score_users(np.arange(len(sample)))
        full[rows.toarray() > 0] = -np.inf
        top = np.argsort(-full, axis=1, kind="stable")[:, :10]
        expected.append(ranking_metrics(top, np.arange(len(sample)), truth, 10)["ndcg_at_k"])
    np.testing.assert_allclose(model.history["val_ndcg"], expected, rtol=1e-12)
    assert model.lam == grid[int(np.argmax(expected))]
    union = (train.to_csr() + val.to_csr())[:, active]
    np.testing.assert_array_equal(model._b, solve_ease(union, model.lam))


def test_large_profile_pair_models_compile_with_xla_and_stay_reproducible(tmp_path: Path) -> None:
    """The large profile has XLA compile the pair models' step (op determinism off for it):
    the same seed must still give the same weights, and a later small-profile fit turns op
    determinism back on."""
    from tensorflow.python.framework.config import is_op_determinism_enabled

    train, val = split(tiny_interactions(n_users=50))
    profile = choose_scale(len(train), train.n_users, train.n_movies, forced="large")
    params = {**model_params(profile, "biased_mf"), "epochs": 2, "batch_size": 64}
    assert params["jit_compile"] is True
    first, second = (create_model("biased_mf", seed=3, **params) for _ in range(2))
    for model in (first, second):
        model.set_work_dir(tmp_path)
        model.fit(train, val)
        assert model.net.jit_compile is True
    assert not is_op_determinism_enabled()
    np.testing.assert_array_equal(
        first.predict(val.user_idx, val.movie_idx), second.predict(val.user_idx, val.movie_idx)
    )
    small = create_model("biased_mf", seed=3, epochs=1).fit(train, val)
    assert small.net.jit_compile is False and is_op_determinism_enabled()
