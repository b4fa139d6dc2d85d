"""Train once per night: a refit repeats the candidate's choices (epochs, lambda, blend weights)
on every rating without searching, optionally starting from the candidate's weights."""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import pandas as pd
import pytest

from recsys_core import pipeline
from recsys_core.data.datasets import get_dataset
from recsys_core.models import create_model
from recsys_core.models.keras_utils import trained_epochs
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.scale import choose_scale

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SPEC = get_dataset("ml-100k")


def tiny_ratings(n_users: int = 60, n_movies: int = 40, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    """Distinct (user, movie) pairs, ratings that depend on both ids (learnable)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(1, n_users + 1), per_user)
    movies = np.concatenate([rng.choice(n_movies, per_user, replace=False) + 1 for _ in range(n_users)])
    rating = np.clip(np.round(2 * (3 + np.sin(users) + np.cos(movies))) / 2, 1, 5)
    return pd.DataFrame(
        {"user_id": users, "movie_id": movies, "rating": rating.astype(np.float32), "timestamp": np.arange(len(users))}
    )


@pytest.fixture(scope="module")
def night() -> tuple[pd.DataFrame, pd.DataFrame, object, object]:
    """All ratings, the candidate's train part, the vocabulary and the scale profile."""
    ratings = tiny_ratings()
    vocab = fit_vocabulary(ratings)
    train_part = pipeline.make_split(ratings, "stratified", seed=3).train
    return ratings, train_part, vocab, choose_scale(len(ratings), vocab.n_users, vocab.n_movies)


def test_trained_epochs_is_the_epoch_early_stopping_kept() -> None:
    assert trained_epochs({"loss": [3, 2, 1, 1], "val_rmse": [1.0, 0.8, 0.9, 0.8]}, "rmse") == 2
    assert trained_epochs({"loss": [3, 2, 1], "val_ndcg": [0.1, 0.3, 0.3]}, "ndcg", mode="max") == 2
    assert trained_epochs({"loss": [3, 2, 1]}, "rmse") == 3  # no validation: every epoch counted
    # Keras keeps the first epoch as best even when it is NaN; NaN never improves afterwards
    assert trained_epochs({"loss": [3, 2, 1], "val_rmse": [float("nan"), 0.9, 0.8]}, "rmse") == 1
    assert trained_epochs({"loss": [3, 2, 1], "val_rmse": [0.9, float("nan"), 0.95]}, "rmse") == 1


def early_stopped(train_part, vocab, scale) -> pipeline.Trained:
    """A dot_bias candidate whose early stopping kept fewer epochs than it ran (a high step
    overfits the tiny data after a few epochs)."""
    params = {"epochs": 12, "patience": 2, "learning_rate": 0.05}
    candidate = pipeline.train(
        "dot_bias", train_part, vocab, spec=SPEC, scale=scale, seed=1, validation_fraction=0.2, params=params
    )
    assert trained_epochs(candidate.model.history, "rmse") < len(candidate.model.history["loss"])
    return candidate


def test_fixed_refit_trains_the_candidates_epochs_on_every_rating(night) -> None:
    ratings, train_part, vocab, scale = night
    candidate = early_stopped(train_part, vocab, scale)
    best = trained_epochs(candidate.model.history, "rmse")
    published = pipeline.refit(candidate.model, ratings, vocab, spec=SPEC, scale=scale, mode="fixed", seed=1)
    assert published.refit_mode == "fixed"
    assert len(published.model.history["loss"]) == best
    assert "val_rmse" not in published.model.history  # no holdout: nothing searched
    assert published.model.params["epochs"] == best


def test_warm_refit_starts_from_the_candidates_weights(night) -> None:
    ratings, train_part, vocab, scale = night
    candidate = early_stopped(train_part, vocab, scale)
    # With a zero learning rate the warm refit cannot move: it must hold the candidate's weights.
    frozen = {**candidate.model.params, "learning_rate": 0.0}
    candidate.model.params = frozen
    published = pipeline.refit(
        candidate.model, ratings, vocab, spec=SPEC, scale=scale, mode="warm", warm_epoch_scale=0.25, seed=1
    )
    assert published.refit_mode == "warm"
    assert len(published.model.history["loss"]) == int(np.ceil(trained_epochs(candidate.model.history, "rmse") / 4))
    for mine, theirs in zip(published.model.factors(), candidate.model.factors(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7)
    cold = pipeline.refit(candidate.model, ratings, vocab, spec=SPEC, scale=scale, mode="fixed", seed=1)
    assert not np.allclose(cold.model.factors()[1], candidate.model.factors()[1])  # from its initialisation


def test_a_part_that_cannot_warm_start_trains_all_its_epochs(night) -> None:
    ratings, train_part, vocab, scale = night
    other = pipeline.train("ease", train_part, vocab, spec=SPEC, scale=scale, seed=0)
    cold = pipeline.train(
        "dot_bias",
        ratings,
        vocab,
        spec=SPEC,
        scale=scale,
        seed=1,
        validation_fraction=0.0,
        params={"epochs": 4},
        start_from=other.model,
        warm_epoch_scale=0.25,
    )
    assert len(cold.model.history["loss"]) == 4  # not a quarter: nothing was copied


def test_ease_refit_solves_once_with_the_chosen_lambda(night) -> None:
    ratings, train_part, vocab, scale = night
    candidate = pipeline.train("ease", train_part, vocab, spec=SPEC, scale=scale, seed=0, validation_fraction=0.2)
    assert len(candidate.model.history["val_ndcg"]) > 1
    published = pipeline.refit(candidate.model, ratings, vocab, spec=SPEC, scale=scale, mode="fixed", seed=0)
    assert published.model.params["lambdas"] == [candidate.model.lam]
    assert published.model.history["val_ndcg"] == []
    direct = create_model("ease", lambdas=[candidate.model.lam]).fit(to_interactions(ratings, vocab))
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(published.model.score_users(users), direct.score_users(users), rtol=1e-5, atol=1e-6)


def test_ease_warm_refit_updates_the_candidates_gram_and_keeps_its_head(night) -> None:
    """The warm refit adds the ratings the candidate never saw to its Gram matrix: B equals a
    direct solve over every rating on the candidate's head movies (here also the fixed refit's,
    when both heads agree), without a new pass over the rows."""
    from recsys_core.models.ease import solve_ease

    ratings, train_part, vocab, scale = night
    for max_movies in (25, 10_000):  # a head smaller than the catalogue, and every movie
        params = {"max_movies": max_movies}
        candidate = pipeline.train(
            "ease", train_part, vocab, spec=SPEC, scale=scale, seed=0, validation_fraction=0.2, params=params
        )
        warm = pipeline.refit(candidate.model, ratings, vocab, spec=SPEC, scale=scale, mode="warm", seed=0)
        head = candidate.model._active
        np.testing.assert_array_equal(warm.model._active, head)
        every_rating = to_interactions(ratings, vocab).to_csr()[:, head]
        np.testing.assert_array_equal(warm.model._b, solve_ease(every_rating, candidate.model.lam))
        if max_movies > vocab.n_movies:
            fixed = pipeline.refit(candidate.model, ratings, vocab, spec=SPEC, scale=scale, mode="fixed", seed=0)
            np.testing.assert_array_equal(warm.model._b, fixed.model._b)


def test_combined_refit_keeps_the_blend_weights_and_members_epochs(night) -> None:
    ratings, train_part, vocab, scale = night
    params = {"rater_params": {"members": [{"name": "dot_bias", "params": {"epochs": 4}}, {"name": "bias"}]}}
    movies = pd.DataFrame(
        {"movie_id": vocab.movie_ids, "genres": [["Drama"]] * vocab.n_movies, "year": [1995] * vocab.n_movies}
    )
    options = {"spec": SPEC, "scale": scale, "movies": movies, "seed": 2}
    candidate = pipeline.train("combined", train_part, vocab, params=params, validation_fraction=0.2, **options)
    assert "val_rmse" in candidate.model.rater.history  # the weights came from validation
    settings = candidate.model.fixed_settings()
    assert settings is not None
    assert settings["rater_params"]["weights"] == [float(w) for w in candidate.model.rater.weights]
    assert settings["ranker_params"]["lambdas"] == [candidate.model.ranker.lam]
    assert candidate.model.ranker.name == "session_ease"  # the small profile's ranker
    assert settings["ranker_params"]["local_grid"] == [list(candidate.model.ranker.local)]
    published = pipeline.refit(candidate.model, ratings, vocab, mode="warm", **options)
    assert published.model.ranker.local == candidate.model.ranker.local
    np.testing.assert_allclose(published.model.rater.weights, candidate.model.rater.weights)
    assert published.model.rater.intercept == pytest.approx(candidate.model.rater.intercept)
    assert "val_rmse" not in published.model.rater.history


def test_a_model_that_cannot_fix_its_choices_searches_again(night) -> None:
    ratings, train_part, vocab, scale = night
    candidate = pipeline.train("mf", train_part, vocab, spec=SPEC, scale=scale, seed=0, params={"epochs": 3})
    assert candidate.model.fixed_settings() is None
    published = pipeline.refit(candidate.model, ratings, vocab, spec=SPEC, scale=scale, mode="warm", seed=0)
    assert published.refit_mode == "search"


def test_steps_per_execution_changes_speed_not_results(night) -> None:
    _, train_part, vocab, scale = night
    runs = [
        pipeline.train(
            "dot_bias",
            train_part,
            vocab,
            spec=SPEC,
            scale=scale,
            seed=4,
            validation_fraction=0.2,
            params={"epochs": 3, **extra},
        )
        for extra in ({"steps_per_execution": 1}, {"steps_per_execution": 16})
    ]
    np.testing.assert_allclose(runs[0].model.history["val_rmse"], runs[1].model.history["val_rmse"], rtol=1e-6)


def test_the_training_log_counts_the_held_out_ratings_beside_the_fit_ones(night, caplog) -> None:
    """The night's log names both numbers, so "trained on N" beside the task's total adds up."""
    _, train_part, vocab, scale = night
    with caplog.at_level(logging.INFO, logger="recsys_core.pipeline"):
        pipeline.train("bias", train_part, vocab, spec=SPEC, scale=scale, seed=1, validation_fraction=0.2)
        pipeline.train("bias", train_part, vocab, spec=SPEC, scale=scale, seed=1, validation_fraction=0.0)
    split, whole = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trained bias")]
    counts = re.search(r"on ([\d,]+) ratings \(\+([\d,]+) held out for validation\)", split)
    assert counts is not None, split
    fit, held = (int(c.replace(",", "")) for c in counts.groups())
    assert fit + held == len(train_part) and held > 0
    assert f"on {len(train_part):,} ratings in" in whole and "held out" not in whole
