"""bayes_fm: its stored dot product is myFM's own posterior mean, it never reads the validation
slice, and its options are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.models import create_model
from recsys_core.models.bayes_fm import mean_low_rank, relation_features, side_features
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import holdout_validation
from tests.builders import synth_ratings


@pytest.fixture(scope="module")
def data() -> dict:
    ratings = synth_ratings(n_users=25, n_movies=30, per_user=10, seed=5)
    vocab = fit_vocabulary(ratings)
    train_df, val_df = holdout_validation(ratings, 0.2, seed=0)
    return {"train": to_interactions(train_df, vocab), "validation": to_interactions(val_df, vocab)}


def test_scores_equal_myfm_posterior_mean(data: dict) -> None:
    """Every post-burn-in sample kept and a factor rank that loses nothing: the model's
    w0 + a_u + b_i + p_u.q_i must equal myFM's own prediction (mean over the same samples)."""
    import myfm

    train = data["train"]
    n_iter, burn = 40, 10
    params = {"rank": 3, "n_iter": n_iter, "burn_in": burn / n_iter, "samples": n_iter - burn, "factor_rank": 100}
    model = create_model("bayes_fm", seed=11, rating_min=-100.0, rating_max=100.0, **params).fit(train)

    users, movies, groups = relation_features(train)
    reference = myfm.MyFMRegressor(rank=3, random_seed=11).fit(
        None,
        train.rating.astype(np.float64),
        X_rel=[myfm.RelationBlock(train.user_idx, users), myfm.RelationBlock(train.movie_idx, movies)],
        grouping=groups,
        n_iter=n_iter,
        n_kept_samples=n_iter - burn,
    )
    u, m = np.meshgrid(np.arange(train.n_users), np.arange(train.n_movies), indexing="ij")
    u, m = u.ravel(), m.ravel()
    expected = reference.predict(None, [myfm.RelationBlock(u, users), myfm.RelationBlock(m, movies)])
    np.testing.assert_allclose(model.predict(u, m), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.score_users(np.arange(train.n_users)).ravel(), expected, rtol=1e-4, atol=1e-4)


def test_validation_slice_is_not_read(data: dict) -> None:
    params = {"rank": 3, "n_iter": 20, "samples": 5, "factor_rank": 8}
    with_val = create_model("bayes_fm", seed=2, **params).fit(data["train"], data["validation"])
    without = create_model("bayes_fm", seed=2, **params).fit(data["train"])
    t = data["train"]
    np.testing.assert_array_equal(with_val.predict(t.user_idx, t.movie_idx), without.predict(t.user_idx, t.movie_idx))
    assert with_val.fixed_settings() == with_val.params


def test_mean_low_rank_is_exact_at_full_rank_and_best_below() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(12, 6)), rng.normal(size=(9, 6))
    full_p, full_q = mean_low_rank(p, q, 6)
    np.testing.assert_allclose(full_p @ full_q.T, p @ q.T, atol=1e-10)
    low_p, low_q = mean_low_rank(p, q, 2)
    singular = np.linalg.svd(p @ q.T, compute_uv=False)
    assert np.linalg.norm(p @ q.T - low_p @ low_q.T) == pytest.approx(np.sqrt((singular[2:] ** 2).sum()))


def test_side_features_are_one_hot_then_normalised_history() -> None:
    rated = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0]], dtype=np.float64))
    x = side_features(rated).toarray()
    np.testing.assert_allclose(x, [[1, 0, 1 / np.sqrt(2), 0, 1 / np.sqrt(2)], [0, 1, 0, 0, 0]])


def test_thinning_keeps_evenly_spaced_samples_ending_on_the_last(data: dict, tmp_path) -> None:
    model = create_model("bayes_fm", seed=3, rank=2, n_iter=30, burn_in=0.5, samples=4, factor_rank=4)
    model.fit(data["train"])
    assert model.kept_samples == 4
    one = create_model("bayes_fm", seed=3, rank=2, n_iter=30, burn_in=0.5, samples=1, factor_rank=4)
    last = create_model("bayes_fm", seed=3, rank=2, n_iter=30, burn_in=29 / 30, samples=1, factor_rank=4)
    t = data["train"]
    np.testing.assert_array_equal(  # one sample: the chain's last state, whatever the burn-in
        one.fit(t).predict(t.user_idx, t.movie_idx), last.fit(t).predict(t.user_idx, t.movie_idx)
    )
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["state"] == {"settings": model.settings, "kept_samples": 4}


def test_a_seed_beyond_32_bits_still_fits(data: dict) -> None:
    model = create_model("bayes_fm", seed=2**40 + 5, rank=2, n_iter=5, samples=2, factor_rank=4).fit(data["train"])
    assert model.kept_samples == 2


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"rank": 0}, "rank"),
        ({"n_iter": 2.5}, "n_iter"),
        ({"burn_in": 1.0}, "burn_in"),
        ({"burn_in": "0.5"}, "burn_in"),
        ({"burn_in": None}, "burn_in"),
        ({"samples": True}, "samples"),
    ],
)
def test_bad_settings_name_the_option(params: dict, option: str) -> None:
    with pytest.raises(ModelError, match=f"params.{option}"):
        create_model("bayes_fm", **params)
