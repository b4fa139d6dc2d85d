"""Model tests on tiny synthetic ratings: every registered model fits, predicts, ranks,
round-trips through save/load and is reproducible for a fixed seed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ModelError
from recsys_core.models import BASELINES, DEFAULT_MODEL, MODELS, create_model, load_model
from recsys_core.models.base import Recommender
from recsys_core.models.blend import fit_ridge
from recsys_core.models.classifier import rating_values
from recsys_core.models.rank_blend import simplex_grid, standardise_rows
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.features import build_item_features
from recsys_core.prep.interactions import Interactions, to_interactions
from recsys_core.prep.splitting import holdout_validation
from tests.builders import synth_ratings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Tiny settings so each fit takes well under a second of training.
FAST: dict[str, dict] = {
    "biased_mf": {"epochs": 2, "dim": 4},
    "classifier": {"epochs": 2, "dim": 4, "hidden": [8]},
    "ncf": {"epochs": 2, "dim": 4, "hidden": [8]},
    "dot_bias": {"epochs": 2, "dim": 4},
    "mf": {"epochs": 2, "dim": 4},
    "hybrid_mf": {"epochs": 2, "dim": 4},
    "autorec": {"epochs": 2, "hidden": 8},
    "mult_dae": {"epochs": 2, "hidden": [8]},
    "mult_dae_bag": {"size": 2, "shared": {"epochs": 2, "hidden": [8]}},
    "wide_dae": {"epochs": 2, "hidden": [8]},
    "ease": {"lambdas": [1.0, 10.0]},
    "ease_tail": {"lambdas": [1.0, 10.0], "head_movies": 25, "betas": [0.0, 0.1]},
    "recency_ease": {
        "lambdas": [1.0, 10.0],
        "taus": [None, 20.0],
        "days": [7.0, 28.0],
        "betas": [0.0, 1.0],
        "min_window_users": 2,
    },
    "session_ease": {"lambdas": [1.0, 10.0], "local_grid": [[0, 1.0, 0.0], [3, 2.0, 0.5]]},
    "recvae": {"epochs": 2, "hidden": 8, "latent": 4, "batch_size": 16},
    "sasrec": {"epochs": 2, "dim": 8, "max_len": 5, "batch_size": 16},
    "item_knn": {"k": 5, "shrinkage": 10.0},
    "bayes_fm": {"n_iter": 30, "samples": 10, "factor_rank": 8, "rank": 4},
    "blend": {
        "members": [
            {"name": "autorec", "params": {"epochs": 2, "hidden": 8}},
            {"name": "hybrid_mf", "params": {"epochs": 2, "dim": 4}},
            {"name": "bayes_fm", "params": {"n_iter": 20, "samples": 5, "factor_rank": 8, "rank": 4}},
        ]
    },
    "rank_blend": {
        "members": [
            {"name": "ease", "params": {"lambdas": [10.0]}},
            {"name": "mult_dae", "params": {"epochs": 2, "hidden": [8]}},
        ],
        "step": 0.5,
    },
    "combined": {
        "ranker": "mult_dae",
        "rater": "hybrid_mf",
        "ranker_params": {"epochs": 2, "hidden": [8]},
        "rater_params": {"epochs": 2, "dim": 4},
    },
}


@pytest.fixture(scope="module")
def data() -> dict:
    ratings = synth_ratings(n_users=30, n_movies=40, per_user=12, seed=3)
    vocab = fit_vocabulary(ratings)
    train_df, val_df = holdout_validation(ratings, 0.2, seed=0)
    movies = pd.DataFrame(
        {
            "movie_id": vocab.movie_ids,
            "title": [f"m{m}" for m in vocab.movie_ids],
            "year": pd.array([1950 + int(m) % 60 if m % 7 else None for m in vocab.movie_ids], dtype="Int16"),
            "genres": [["Drama"] if m % 2 else ["Comedy", "Action"] for m in vocab.movie_ids],
        }
    )
    return {
        "train": to_interactions(train_df, vocab),
        "validation": to_interactions(val_df, vocab),
        "features": build_item_features(movies, vocab),
    }


def build(name: str, data: dict, seed: int = 7) -> Recommender:
    model = create_model(name, seed=seed, **FAST.get(name, {}))
    if model.uses_item_features:
        model.set_item_features(data["features"])
    return model.fit(data["train"], data["validation"])


@pytest.fixture(scope="module")
def fitted(data: dict) -> dict[str, Recommender]:
    return {name: build(name, data) for name in MODELS}


def test_every_model_has_fast_test_settings() -> None:
    assert set(MODELS) - set(BASELINES) == set(FAST)


def test_default_model_is_combined_and_registered() -> None:
    assert DEFAULT_MODEL == "combined"
    model = create_model(DEFAULT_MODEL)
    assert model.predicts_ratings and model.ranks
    assert model.params["ranker"] in MODELS and model.params["rater"] in MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_predicts_in_range_and_ranks(name: str, fitted: dict, data: dict) -> None:
    model, train = fitted[name], data["train"]
    users = np.arange(train.n_users, dtype=np.int32)
    if model.predicts_ratings:
        pred = model.predict(train.user_idx, train.movie_idx)
        assert pred.dtype == np.float32 and pred.shape == (len(train),)
        assert np.all((pred >= 1.0) & (pred <= 5.0))
    if model.ranks:
        scores = model.score_users(users[:7])
        assert scores.shape == (7, train.n_movies)
        assert np.isfinite(scores).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_round_trip_is_identical(name: str, fitted: dict, data: dict, tmp_path: Path) -> None:
    model, train = fitted[name], data["train"]
    model.save(tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model) and loaded.params == model.params
    users = np.arange(train.n_users, dtype=np.int32)
    if model.predicts_ratings:
        np.testing.assert_array_equal(
            loaded.predict(train.user_idx, train.movie_idx), model.predict(train.user_idx, train.movie_idx)
        )
    if model.ranks:
        np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))


ENSEMBLES = {"combined", "blend", "rank_blend", "mult_dae_bag"}  # their parts are checked one by one


@pytest.mark.parametrize("name", sorted(set(FAST) - ENSEMBLES))
def test_same_seed_gives_identical_predictions(name: str, fitted: dict, data: dict) -> None:
    again = build(name, data)
    users = np.arange(data["train"].n_users, dtype=np.int32)
    first = fitted[name]
    if first.predicts_ratings:
        t = data["train"]
        np.testing.assert_array_equal(again.predict(t.user_idx, t.movie_idx), first.predict(t.user_idx, t.movie_idx))
    np.testing.assert_array_equal(again.score_users(users), first.score_users(users))


def test_dot_product_models_factors_match_scores(fitted: dict) -> None:
    dot_models = (
        "dot_bias",
        "mf",
        "autorec",
        "mult_dae",
        "mult_dae_bag",
        "wide_dae",
        "hybrid_mf",
        "ease",
        "recvae",
        "sasrec",
    )
    for name in (*dot_models, "bayes_fm"):
        model = fitted[name]
        users, movies = model.factors()
        assert users.shape[0] == model.n_users and movies.shape[0] == model.n_movies
        np.testing.assert_allclose(users[:5] @ movies.T, model.score_users(np.arange(5)), rtol=1e-4, atol=1e-4)


def test_dot_bias_ranking_follows_predicted_rating(fitted: dict, data: dict) -> None:
    model = fitted["dot_bias"]
    n = data["train"].n_movies
    pred = model.predict(np.zeros(n, np.int32), np.arange(n, dtype=np.int32))
    scores = model.score_users(np.array([0]))[0]
    assert np.array_equal(np.argsort(-pred, kind="stable")[:5], np.argsort(-scores, kind="stable")[:5])


def test_combined_delegates_to_its_parts(fitted: dict, data: dict) -> None:
    model, t = fitted["combined"], data["train"]
    users = np.arange(5)
    np.testing.assert_array_equal(model.score_users(users), model.ranker.score_users(users))
    np.testing.assert_array_equal(model.predict(t.user_idx, t.movie_idx), model.rater.predict(t.user_idx, t.movie_idx))
    assert model.ranker.name == "mult_dae" and model.rater.name == "hybrid_mf"
    assert model.rater.item_features is not None


def test_combined_rejects_parts_that_cannot_do_their_job() -> None:
    with pytest.raises(ModelError):
        create_model("combined", ranker="global_mean", rater="autorec")
    with pytest.raises(ModelError):
        create_model("combined", ranker="mult_dae", rater="popularity")


def test_hybrid_without_features_says_what_to_call(data: dict) -> None:
    with pytest.raises(ModelError, match="set_item_features"):
        create_model("hybrid_mf", epochs=1).fit(data["train"])


def test_classifier_rating_grid() -> None:
    np.testing.assert_array_equal(rating_values(1.0, 5.0), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(rating_values(0.5, 5.0), np.arange(1, 11) / 2)
    model = create_model("classifier", rating_min=0.5, rating_max=5.0)
    assert len(model.values) == 10


def test_classifier_learns_half_star_scale() -> None:
    ratings = synth_ratings(n_users=20, n_movies=20, per_user=8, seed=1, half_stars=True)
    vocab = fit_vocabulary(ratings)
    train = to_interactions(ratings, vocab)
    model = create_model("classifier", rating_min=0.5, rating_max=5.0, epochs=1, dim=4, hidden=[8]).fit(train)
    pred = model.predict(train.user_idx, train.movie_idx)
    assert np.all((pred >= 0.5) & (pred <= 5.0))


def test_models_train_without_validation(data: dict) -> None:
    for name in ("mult_dae", "autorec", "mf"):
        model = create_model(name, **FAST[name]).fit(data["train"])
        assert np.isfinite(model.score_users(np.arange(3))).all()


def test_mult_dae_scores_from_training_rows_only(data: dict) -> None:
    """An implicit model must not depend on rating values, only on which movies were rated."""
    t: Interactions = data["train"]
    flipped = Interactions(t.user_idx, t.movie_idx, 6.0 - t.rating, t.n_users, t.n_movies)
    a = create_model("mult_dae", seed=1, **FAST["mult_dae"]).fit(t)
    b = create_model("mult_dae", seed=1, **FAST["mult_dae"]).fit(flipped)
    np.testing.assert_array_equal(a.score_users(np.arange(4)), b.score_users(np.arange(4)))


def test_blend_fits_weights_on_validation(fitted: dict) -> None:
    model = fitted["blend"]
    assert len(model.weights) == 3 and np.isfinite(model.weights).all()
    assert model.members[0].params["input_with_validation"] is False  # no leak into the weights
    assert model.members[1].item_features is not None
    assert model.members[2].name == "bayes_fm" and model.members[2].kept_samples == 5


def test_default_blend_samples_a_short_chain() -> None:
    """The night trains the blend twice: its bayes_fm runs 100 iterations, not its own 600."""
    model = create_model("blend")
    assert [m.name for m in model.members] == ["autorec", "dot_bias", "bayes_fm"]
    assert model.members[2].settings["n_iter"] == 100 and create_model("bayes_fm").settings["n_iter"] == 600


def test_fit_ridge_recovers_a_linear_blend() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    w, c = fit_ridge(x, x @ np.array([0.2, 0.5, 0.3]) + 1.5, alpha=1e-6)
    np.testing.assert_allclose(w, [0.2, 0.5, 0.3], atol=1e-5)
    assert abs(c - 1.5) < 1e-5


def test_rank_blend_weights_on_the_simplex(fitted: dict) -> None:
    assert all(abs(w.sum() - 1) < 1e-9 and (w >= 0).all() for w in simplex_grid(3, 0.25))
    assert len(simplex_grid(2, 0.1)) == 11
    assert abs(fitted["rank_blend"].weights.sum() - 1) < 1e-9
    z = standardise_rows(np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]))
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-6)


def test_blends_reject_members_that_cannot_serve() -> None:
    with pytest.raises(ModelError):
        create_model("blend", members=[{"name": "popularity"}])
    with pytest.raises(ModelError):
        create_model("rank_blend", members=[{"name": "popularity"}])


def test_dense_models_refuse_huge_releases_with_advice() -> None:
    from recsys_core.models.interaction_utils import check_dense_size

    check_dense_size("mult_dae", 6040, 3706)  # ml-1m fits
    with pytest.raises(ModelError, match="biased_mf"):
        check_dense_size("mult_dae", 162_541, 59_047)  # ml-25m does not


def test_model_names_match_the_registry_and_load_no_model_code():
    """`--model` is validated from model_names without importing models (or TensorFlow)."""
    import subprocess
    import sys

    from recsys_core.model_names import MODEL_NAMES
    from recsys_core.models.registry import MODEL_PATHS

    assert sorted(MODEL_NAMES) == sorted(MODEL_PATHS) == sorted(MODELS)
    code = "import sys, recsys_core.models, recsys_core.config; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_every_ensemble_forwards_features_and_scratch_space_to_its_parts(tmp_path):
    from recsys_core.models.ensemble import Ensemble

    for name in ("blend", "rank_blend", "combined", "mult_dae_bag"):
        model = create_model(name)
        assert isinstance(model, Ensemble)
        model.set_work_dir(tmp_path)
        assert all(part.work_dir == tmp_path for part in model.parts()), name


def test_ease_tail_equals_ease_when_the_head_holds_every_movie(data: dict) -> None:
    t, v = data["train"], data["validation"]
    plain = create_model("ease", lambdas=[5.0]).fit(t, v)
    tail = create_model("ease_tail", lambdas=[5.0], betas=[0.0], head_movies=10_000).fit(t, v)
    users = np.arange(t.n_users)
    np.testing.assert_allclose(tail.score_users(users), plain.score_users(users), rtol=1e-4, atol=1e-5)


def test_ease_tail_scores_every_rated_movie_with_ridge_weights(data: dict) -> None:
    from recsys_core.models.ease_tail import head_and_tail, solve_head_tail

    t = data["train"]
    rows = t.to_csr()
    counts = np.bincount(t.movie_idx, minlength=t.n_movies)
    head, tail = head_and_tail(counts, 15)
    assert len(head) == 15 and set(head).isdisjoint(tail)
    assert set(head) | set(tail) == set(np.flatnonzero(counts > 0))
    w = solve_head_tail(rows, head, tail, 3.0)
    xh = rows[:, head].toarray().astype(np.float64)
    xt = rows[:, tail].toarray().astype(np.float64)
    ridge = np.linalg.solve(xh.T @ xh + 3.0 * np.eye(len(head)), xh.T @ xt)  # tail = ridge regression
    np.testing.assert_allclose(w[:, tail], ridge, rtol=1e-4, atol=1e-5)
    assert np.all(np.diag(w[:, head]) == 0)  # EASE constraint on the head
    model = create_model("ease_tail", lambdas=[3.0], head_movies=15, betas=[0.0]).fit(t)
    scores = model.score_users(np.arange(t.n_users))
    assert np.abs(scores[:, tail]).sum(axis=0).min() > 0  # no rated movie is stuck at zero


def test_recvae_numpy_encoder_matches_tensorflow_forward(fitted: dict) -> None:
    import tensorflow as tf

    from recsys_core.models.recvae import N_LAYERS, encode_numpy

    w = fitted["recvae"].weights
    rng = np.random.default_rng(0)
    x = (rng.random((6, w["w0"].shape[0])) < 0.3).astype(np.float32)
    h = tf.math.l2_normalize(x, axis=-1)
    total = None
    for j in range(N_LAYERS):
        h = tf.matmul(h, w[f"w{j}"]) + w[f"b{j}"] + (0.0 if total is None else total)
        h = tf.nn.swish(h)
        mean, var = tf.nn.moments(h, axes=[-1], keepdims=True)
        h = (h - mean) * tf.math.rsqrt(var + 0.1) * w[f"ln_s{j}"] + w[f"ln_b{j}"]
        total = h if total is None else total + h
    expected = (tf.matmul(h, w["w_mu"]) + w["b_mu"]).numpy()
    np.testing.assert_allclose(encode_numpy(w, x), expected, rtol=1e-4, atol=1e-5)
    assert fitted["recvae"].history["val_ndcg"]  # the epoch was chosen on validation


def test_ease_tail_fold_in_reproduces_a_known_users_scores(fitted: dict) -> None:
    from recsys_core.serving.foldin import build_foldin

    model = fitted["ease_tail"]
    fold = build_foldin(model)
    assert fold.family == "ease"
    rated = model._rows[0].indices
    folded = fold.fold_in(rated, np.full(len(rated), 4.0)).scores
    np.testing.assert_allclose(folded, model.score_users(np.array([0]))[0], rtol=1e-5, atol=1e-6)
