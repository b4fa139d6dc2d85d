"""The wide & deep autoencoder: its movie-to-movie path never lets a movie predict itself, it
learns which movies go together, its factors are its scores, and it refuses a catalogue whose
movies x movies layer would not fit, before any training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsys_core.errors import ModelError
from recsys_core.models import create_model, load_model
from recsys_core.models.keras_utils import predict_batched
from recsys_core.models.wide_dae import WideDAE
from recsys_core.prep.interactions import Interactions

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_MOVIES = 20  # movies 0-9 form one taste group, 10-19 the other


def grouped(n_users: int = 40, per_user: int = 6, seed: int = 0) -> Interactions:
    """Each user rates ``per_user`` movies of one group only (even users group 0, odd group 1)."""
    rng = np.random.default_rng(seed)
    users, movies = [], []
    for u in range(n_users):
        first = 0 if u % 2 == 0 else N_MOVIES // 2
        picked = rng.choice(np.arange(first, first + N_MOVIES // 2), size=per_user, replace=False)
        users += [u] * per_user
        movies += picked.tolist()
    n = len(users)
    return Interactions(
        np.array(users, np.int32), np.array(movies, np.int32), np.full(n, 4.0, np.float32), n_users, N_MOVIES
    )


def fit_wide(data: Interactions, **params: Any) -> WideDAE:
    settings = {"epochs": 60, "batch_size": 8, "learning_rate": 1e-2, "wide_l2": 0.0, "dropout": 0.5, **params}
    return create_model("wide_dae", seed=3, **settings).fit(data)


@pytest.fixture(scope="module")
def wide_only() -> WideDAE:
    return fit_wide(grouped(), hidden=[])


@pytest.fixture(scope="module")
def wide_and_deep() -> WideDAE:
    return fit_wide(grouped(), hidden=[4])


def network_scores(model: WideDAE, rows: np.ndarray) -> np.ndarray:
    """The Keras network's own forward pass (inference mode), not the factors."""
    return predict_batched(model.net, rows.astype(np.float32))


def test_the_wide_path_never_lets_a_movie_predict_itself(wide_only: WideDAE, wide_and_deep: WideDAE) -> None:
    # A row with one movie: what the network gives that movie back must be 0.
    alone = network_scores(wide_only, np.eye(N_MOVIES))
    np.testing.assert_array_equal(np.diag(alone), 0.0)
    assert np.abs(alone).sum() > 0  # it did learn off the diagonal
    rows = grouped().to_csr().toarray().astype(np.float32)
    for model in (wide_only, wide_and_deep):
        # whatever its diagonal holds (rounding can move it, see zero_diagonal_layer), the layer ignores it
        layer = model.net.get_layer("wide")
        kernel = layer.kernel.numpy()
        before = np.asarray(layer(rows))
        try:
            layer.kernel.assign(kernel + np.diag(np.full(N_MOVIES, 5.0, np.float32)))
            np.testing.assert_allclose(np.asarray(layer(rows)), before, atol=1e-5)
        finally:
            layer.kernel.assign(kernel)
        users, movies = model.factors()
        assert not np.any(np.diag(movies[:, :N_MOVIES])), "the published vectors leave the diagonal out"


def test_the_wide_path_learns_which_movies_go_together(wide_only: WideDAE) -> None:
    data = grouped()
    seen = data.to_csr().toarray() > 0
    scores = wide_only.score_users(np.arange(data.n_users))
    for u in range(data.n_users):
        own = np.arange(0, 10) if u % 2 == 0 else np.arange(10, 20)
        other = np.setdiff1d(np.arange(N_MOVIES), own)
        unseen_own = own[~seen[u, own]]
        assert scores[u, unseen_own].min() > scores[u, other].max(), u


def test_factors_reproduce_the_network(wide_only: WideDAE, wide_and_deep: WideDAE) -> None:
    rows = grouped().to_csr().toarray()
    for model in (wide_only, wide_and_deep):
        users, movies = model.factors()
        np.testing.assert_allclose(users @ movies.T, network_scores(model, rows), rtol=1e-4, atol=1e-4)
    assert wide_only.factors()[1].shape == (N_MOVIES, N_MOVIES)  # the wide path alone: [x] . [W[:, i]]
    users, movies = wide_and_deep.factors()
    assert users.shape == (40, N_MOVIES + 4 + 1) and movies.shape == (N_MOVIES, N_MOVIES + 4 + 1)
    np.testing.assert_array_equal(users[:, :N_MOVIES], rows)
    np.testing.assert_array_equal(users[:, -1], 1.0)


def test_a_loaded_model_is_rebuilt_from_its_params_and_scores_the_same(wide_and_deep: WideDAE, tmp_path: Path) -> None:
    wide_and_deep.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.npz").is_file()
    loaded = load_model(tmp_path / "m")
    users = np.arange(40)
    np.testing.assert_array_equal(loaded.score_users(users), wide_and_deep.score_users(users))


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"dropout": 1.0}, "params.dropout"),
        ({"wide_dropout": -0.1}, "params.wide_dropout"),
        ({"wide_l2": -1.0}, "params.wide_l2"),
        ({"hidden": [600, 0]}, "params.hidden"),
    ],
)
def test_bad_settings_are_refused_naming_the_option(params: dict, option: str) -> None:
    with pytest.raises(ModelError, match=option):
        create_model("wide_dae", **params)


def test_a_catalogue_too_large_for_the_wide_layer_is_refused_before_training() -> None:
    n_movies = 20_000  # 400M weights: past the dense-size limit (ml-25m has 59,047 movies)
    tiny = Interactions(np.array([0, 1], np.int32), np.array([0, 1], np.int32), np.ones(2, np.float32), 2, n_movies)
    with pytest.raises(ModelError, match="wide_dae.*20,000 x 20,000"):
        create_model("wide_dae").fit(tiny)


def test_the_wide_path_can_have_its_own_corruption_rate() -> None:
    from keras import layers

    def dropout_rates(**params) -> list[float]:
        net = create_model("wide_dae", hidden=[4], **params)._build(N_MOVIES)
        return sorted(layer.rate for layer in net.layers if isinstance(layer, layers.Dropout))

    assert dropout_rates() == [0.5]  # one mask feeds both paths
    assert dropout_rates(wide_dropout=0.0) == [0.0, 0.5]


def test_a_refit_trains_the_epoch_validation_chose_with_the_same_settings() -> None:
    from recsys_core.models.keras_utils import trained_epochs

    data = grouped(n_users=40, per_user=8)
    held = np.arange(len(data.user_idx)) % 8 == 0  # one rating a user stops training
    train, validation = (
        Interactions(data.user_idx[m], data.movie_idx[m], data.rating[m], data.n_users, N_MOVIES) for m in (~held, held)
    )
    candidate = create_model(
        "wide_dae", seed=3, hidden=[4], epochs=30, patience=3, batch_size=8, learning_rate=1e-2, wide_dropout=0.0
    ).fit(train, validation)
    best = trained_epochs(candidate.history, "ndcg", mode="max")
    settings = candidate.fixed_settings()
    assert settings["epochs"] == best and settings["hidden"] == [4] and settings["wide_dropout"] == 0.0
    published = create_model("wide_dae", seed=3, **settings).fit(data)
    assert len(published.history["loss"]) == best


def test_it_can_be_the_member_of_a_seed_bag() -> None:
    data = grouped()
    bag = create_model("mult_dae_bag", seed=3, member="wide_dae", size=2, shared={"epochs": 3, "hidden": [4]})
    bag.fit(data)
    users = np.arange(data.n_users)
    each = [member.score_users(users) for member in bag.members]
    assert [member.name for member in bag.members] == ["wide_dae", "wide_dae"]
    np.testing.assert_allclose(bag.score_users(users), np.mean(each, axis=0), rtol=1e-5, atol=1e-5)
    factor_users, factor_movies = bag.factors()
    np.testing.assert_allclose(factor_users @ factor_movies.T, bag.score_users(users), rtol=1e-4, atol=1e-4)
