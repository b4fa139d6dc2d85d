"""The seed bag: members differ by seed and hold-out, the bag scores their mean from every
rating, a refit keeps each member's epochs and share, and bad settings are refused."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from recsys_core import pipeline
from recsys_core.data.datasets import get_dataset
from recsys_core.errors import ModelError
from recsys_core.models import create_model, load_model
from recsys_core.models.interaction_utils import union_interactions
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import holdout_validation
from recsys_core.scale import choose_scale
from tests.builders import synth_ratings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED = {"epochs": 3, "hidden": [8], "patience": 1}


def pairs(x) -> set:
    return set(zip(x.user_idx.tolist(), x.movie_idx.tolist(), strict=True))


@pytest.fixture(scope="module")
def ratings():
    return synth_ratings(n_users=30, n_movies=40, per_user=24, seed=5)  # 24 >= 1 / 5%: every user holds out one


@pytest.fixture(scope="module")
def parts(ratings) -> tuple:
    vocab = fit_vocabulary(ratings)
    train, val = holdout_validation(ratings, 0.2, seed=0)
    return to_interactions(train, vocab), to_interactions(val, vocab)


@pytest.fixture(scope="module")
def bag(parts: tuple):
    return create_model("mult_dae_bag", seed=11, size=3, shared=SHARED).fit(*parts)


def test_members_are_seeded_apart_and_the_bag_scores_their_mean(bag, parts: tuple) -> None:
    assert [m.seed for m in bag.members] == [11, 12, 13]
    users = np.arange(parts[0].n_users)
    each = [m.score_users(users) for m in bag.members]
    assert not np.allclose(each[0], each[1])  # different seeds, different networks
    np.testing.assert_allclose(bag.score_users(users), np.mean(each, axis=0), rtol=1e-5, atol=1e-5)


def test_a_member_is_its_model_trained_alone_on_its_own_holdout(bag, parts: tuple) -> None:
    train, val = parts
    assert bag.split_member_data(0, train, val) == (train, val)  # the pipeline's slices, untouched
    kept, held = bag.split_member_data(1, train, val)
    alone = create_model("mult_dae", seed=12, **SHARED).fit(kept, held)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(alone.score_users(users), bag.members[1].score_users(users))
    assert "m1_val_ndcg" in bag.history  # it stopped on its own hold-out


def test_each_member_holds_out_its_own_share_and_scores_from_every_rating(bag, parts: tuple) -> None:
    train, val = parts
    union = union_interactions(train, val)
    kept1, held1 = bag.split_member_data(1, train, val)
    kept2, held2 = bag.split_member_data(2, train, val)
    assert pairs(kept1) | pairs(held1) == pairs(union) and not pairs(kept1) & pairs(held1)
    assert pairs(held1) != pairs(held2)  # seeded apart
    counts = np.bincount(union.user_idx, minlength=union.n_users)
    np.testing.assert_array_equal(
        np.bincount(held1.user_idx, minlength=union.n_users), np.minimum(np.floor(counts * 0.05), counts - 1)
    )
    for member in bag.members:  # every member encodes a user from all of their ratings
        assert (member._rows != union.to_csr()).nnz == 0
    # a refit (no validation slice) leaves the same rows out and stops on nothing
    refit_kept, refit_held = bag.split_member_data(1, union, None)
    assert refit_held is None and pairs(refit_kept) == pairs(kept1)


def test_a_member_that_would_hold_out_nothing_takes_the_pipelines_slices(caplog) -> None:
    few = synth_ratings(n_users=20, n_movies=30, per_user=12, seed=2)  # 12 < 1 / 5%: floor holds out none
    vocab = fit_vocabulary(few)
    train, val = (to_interactions(x, vocab) for x in holdout_validation(few, 0.2, seed=0))
    model = create_model("mult_dae_bag", seed=3, size=2, shared=SHARED)
    with caplog.at_level(logging.WARNING, logger="recsys_core.models.seed_bag"):
        assert model.split_member_data(1, train, val) == (train, val)
    assert "params.holdout" in caplog.text


def test_the_published_bag_is_refitted_like_the_evaluated_one(ratings, tmp_path: Path) -> None:
    """Through the pipeline: a fixed refit keeps each member's epochs, trains member j on the same
    share, scores from every rating, and saves/loads to the same scores (no movies table needed)."""
    spec = get_dataset("ml-100k")
    vocab = fit_vocabulary(ratings)
    scale = choose_scale(len(ratings), vocab.n_users, vocab.n_movies)
    train_part = pipeline.make_split(ratings, "stratified", seed=3).train
    params = {"size": 2, "shared": SHARED}
    candidate = pipeline.train("mult_dae_bag", train_part, vocab, spec=spec, scale=scale, seed=1, params=params)
    published = pipeline.refit(candidate.model, ratings, vocab, spec=spec, scale=scale, mode="fixed", seed=1)
    model = published.model
    for member, chosen in zip(model.members, candidate.model.members, strict=True):
        assert member.params["epochs"] == chosen.fixed_settings()["epochs"]
        assert len(member.history["loss"]) == member.params["epochs"]
        assert member._rows.nnz == len(ratings)
    model.save(tmp_path / "bag")
    loaded = load_model(tmp_path / "bag")
    users = np.arange(vocab.n_users)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))


def test_fixed_settings_keep_each_members_epochs(bag) -> None:
    fixed = bag.fixed_settings()
    assert len(fixed["member_settings"]) == 3
    again = create_model("mult_dae_bag", seed=11, **fixed)
    for member, chosen in zip(again.members, bag.members, strict=True):
        assert member.params["epochs"] == chosen.fixed_settings()["epochs"]
        assert member.params["hidden"] == [8]


def test_bad_settings_are_refused_with_the_option_named() -> None:
    with pytest.raises(ModelError, match="params.size"):
        create_model("mult_dae_bag", size=0)
    with pytest.raises(ModelError, match="member_settings"):
        create_model("mult_dae_bag", size=2, member_settings=[{}])
    with pytest.raises(ModelError, match="params.holdout"):
        create_model("mult_dae_bag", holdout=0.0)
    with pytest.raises(ModelError, match="params.member 'biased_mf'"):
        create_model("mult_dae_bag", member="biased_mf")
    # its members trained on the validation slice: a blend must not weigh it there
    with pytest.raises(ModelError, match="validation_scores"):
        create_model("rank_blend", members=[{"name": "ease"}, {"name": "mult_dae_bag"}])
