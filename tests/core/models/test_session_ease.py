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


def test_local_gram_counts_pairs_by_their_gap_in_each_users_time_order() -> None:
    # user 1 rates movies 0, 1, 2, 3 in that order (times out of id order); user 2 rates 1 then 0
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2],
            "movie_id": [10, 11, 12, 13, 10, 11],
            "rating": [4.0] * 6,
            "timestamp": [100, 200, 300, 400, 600, 500],
        }
    )
    vocab = fit_vocabulary(frame)
    data = to_interactions(frame, vocab)
    head = vocab.encode_movies(pd.Series([10, 11, 13])).astype(np.int32)  # movie 12 is a tail movie
    g = local_gram(data, np.sort(head), vocab.n_movies, width=2, scale=1.0)
    pos = {m: int(np.searchsorted(np.sort(head), vocab.encode_movies(pd.Series([m]))[0])) for m in (10, 11, 13)}
    e = np.exp(-1.0)
    assert g[pos[10], pos[11]] == pytest.approx(1.0 + 1.0)  # gap 1 for both users
    assert g[pos[11], pos[13]] == pytest.approx(e)  # gap 2 across the tail movie 12: positions count it
    assert g[pos[10], pos[13]] == 0.0  # gap 3 > width
    np.testing.assert_allclose(g, g.T)
    assert np.all(np.diag(g) == 0)


def test_plain_grid_is_exactly_ease() -> None:
    t, v, vocab = split()
    ours = create_model("session_ease", lambdas=[5.0, 50.0], local_grid=[[0, 1.0, 0.0]]).fit(t, v)
    ease = create_model("ease", lambdas=[5.0, 50.0]).fit(t, v)
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(ours.score_users(users), ease.score_users(users), rtol=1e-5, atol=1e-6)
    assert ours.local == (0, 1.0, 0.0)


def test_validation_chooses_the_best_setting_and_a_fixed_refit_repeats_it(tmp_path: Path) -> None:
    t, v, vocab = split()
    model = create_model("session_ease", seed=1, lambdas=[50.0], local_grid=GRID).fit(t, v)
    scores = model.history["local_val_ndcg"]
    assert len(scores) == len(GRID)
    assert list(model.local) == GRID[int(np.nanargmax(scores))]
    settings = model.fixed_settings()
    assert settings["local_grid"] == [list(model.local)] and settings["lambdas"] == [model.lam]
    users = np.arange(vocab.n_users)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    assert tuple(loaded.local) == model.local
    refit = create_model("session_ease", seed=1, **settings).fit(t, v)  # same data: same weights
    np.testing.assert_allclose(refit.score_users(users), model.score_users(users), rtol=1e-5, atol=1e-6)


def test_a_local_setting_changes_the_scores() -> None:
    t, v, vocab = split()
    plain = create_model("session_ease", lambdas=[50.0], local_grid=[[0, 1.0, 0.0]]).fit(t, v)
    local = create_model("session_ease", lambdas=[50.0], local_grid=[[6, 3.0, 0.5]]).fit(t, v)
    users = np.arange(vocab.n_users)
    assert not np.allclose(plain.score_users(users), local.score_users(users))


def test_without_timestamps_it_says_what_it_needs() -> None:
    t, v, _ = split(drop_time=True)
    with pytest.raises(ModelError, match="timestamps"):
        create_model("session_ease", lambdas=[50.0], local_grid=GRID).fit(t, v)


@pytest.mark.parametrize("grid", [[[3, 0.0, 0.5]], [[3, 1.0]], [[-1, 1.0, 0.5]]])
def test_a_bad_grid_names_the_option(grid) -> None:
    t, v, _ = split()
    with pytest.raises(ModelError, match="params.local_grid"):
        create_model("session_ease", lambdas=[50.0], local_grid=grid).fit(t, v)
