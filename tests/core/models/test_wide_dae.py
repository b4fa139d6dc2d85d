"""The wide & deep autoencoder: its movie-to-movie path never lets a movie predict itself, it
learns which movies go together, its factors are its scores, and it refuses a catalogue whose
movies x movies layer would not fit, before any training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from recsys_core.errors import ModelError
from recsys_core.models import create_model, load_model
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


def fit_wide(data: Interactions, **params) -> object:
    settings = {"epochs": 60, "batch_size": 8, "learning_rate": 1e-2, "wide_l2": 0.0, "dropout": 0.5, **params}
    return create_model("wide_dae", seed=3, **settings).fit(data)


@pytest.fixture(scope="module")
def wide_only():
    return fit_wide(grouped(), hidden=[])


@pytest.fixture(scope="module")
def wide_and_deep():
    return fit_wide(grouped(), hidden=[4])


def wide_matrix(model) -> np.ndarray:
    """W (movies x movies) from the movie vectors ``[W[:, i], ...]``."""
    return model.factors()[1][:, :N_MOVIES].T


def test_the_wide_path_never_lets_a_movie_predict_itself(wide_only, wide_and_deep) -> None:
    for model in (wide_only, wide_and_deep):
        w = wide_matrix(model)
        np.testing.assert_array_equal(np.diag(w), 0.0)
        assert np.abs(w).sum() > 0  # it did learn off the diagonal


def test_the_wide_path_learns_which_movies_go_together(wide_only) -> None:
    data = grouped()
    seen = data.to_csr().toarray() > 0
    scores = wide_only.score_users(np.arange(data.n_users))
    for u in range(data.n_users):
        own = np.arange(0, 10) if u % 2 == 0 else np.arange(10, 20)
        other = np.setdiff1d(np.arange(N_MOVIES), own)
        unseen_own = own[~seen[u, own]]
        assert scores[u, unseen_own].min() > scores[u, other].max(), u


def test_without_hidden_layers_the_scores_are_the_row_times_the_wide_matrix(wide_only) -> None:
    rows = grouped().to_csr().toarray().astype(np.float32)
    np.testing.assert_allclose(wide_only.score_users(np.arange(5)), rows[:5] @ wide_matrix(wide_only), atol=1e-5)
    assert wide_only.factors()[1].shape == (N_MOVIES, N_MOVIES)


def test_factors_hold_the_row_the_code_and_a_constant(wide_and_deep) -> None:
    users, movies = wide_and_deep.factors()
    rows = grouped().to_csr().toarray()
    assert users.shape == (40, N_MOVIES + 4 + 1) and movies.shape == (N_MOVIES, N_MOVIES + 4 + 1)
    np.testing.assert_array_equal(users[:, :N_MOVIES], rows)
    np.testing.assert_array_equal(users[:, -1], 1.0)
    np.testing.assert_allclose(users @ movies.T, wide_and_deep.score_users(np.arange(40)), rtol=1e-4, atol=1e-4)


def test_a_loaded_model_is_rebuilt_from_its_params_and_scores_the_same(wide_and_deep, tmp_path: Path) -> None:
    wide_and_deep.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.npz").is_file()
    loaded = load_model(tmp_path / "m")
    users = np.arange(40)
    np.testing.assert_array_equal(loaded.score_users(users), wide_and_deep.score_users(users))


def test_the_measured_defaults_and_overrides() -> None:
    model = create_model("wide_dae")
    assert model.params["hidden"] == [600] and model.params["dropout"] == 0.5 and model.params["wide_l2"] == 0.3
    assert create_model("wide_dae", dropout=0.0).params["dropout"] == 0.0


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
