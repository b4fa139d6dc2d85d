"""sasrec: the time order of histories, the training windows, the latest-ratings validation,
what a fitted model reads when scoring, and the refusal without timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ModelError
from recsys_core.models import create_model, load_model
from recsys_core.models.sasrec import latest_windows, order_histories, split_latest, training_windows
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import Interactions, to_interactions
from tests.builders import synth_ratings

FAST = {"epochs": 2, "dim": 8, "max_len": 5, "batch_size": 16}


def encode(frame: pd.DataFrame) -> Interactions:
    return to_interactions(frame, fit_vocabulary(frame))


def test_histories_follow_time_with_ties_broken_by_movie() -> None:
    data = Interactions(
        user_idx=np.array([1, 0, 0, 0, 1], np.int32),
        movie_idx=np.array([4, 3, 1, 2, 0], np.int32),
        rating=np.ones(5, np.float32),
        n_users=3,
        n_movies=5,
        timestamp=np.array([5, 30, 10, 10, 9], np.int64),
    )
    histories = order_histories(data, 3)
    assert [h.tolist() for h in histories] == [[1, 2, 3], [4, 0], []]


def test_every_movie_after_the_first_is_a_target_once() -> None:
    history = np.arange(12)  # movies 0..11, shifted to 1..12 in the windows
    inputs, targets = training_windows([history, np.array([7])], max_len=5)
    assert inputs.shape == targets.shape == (3, 5)
    assert sorted(targets[targets > 0].tolist()) == list(range(2, 13))
    # Within a window the input is the target one step earlier; padding sits on the left.
    for x, y in zip(inputs, targets, strict=True):
        real = y > 0
        assert (x[real][1:] == y[real][:-1]).all()
        assert not real[: np.argmax(real)].any()
    assert targets[0].tolist() == [8, 9, 10, 11, 12]
    assert inputs[-1].tolist() == [0, 0, 0, 0, 1] and targets[-1].tolist() == [0, 0, 0, 0, 2]


def test_a_single_rating_per_user_cannot_train() -> None:
    with pytest.raises(ModelError, match="two or more"):
        training_windows([np.array([3]), np.array([], np.int64)], max_len=4)


def test_validation_holds_out_the_latest_movie_of_long_enough_histories() -> None:
    kept, held = split_latest([np.array([5, 6, 7]), np.array([1, 2])], n_last=1)
    assert [k.tolist() for k in kept] == [[5, 6], [1, 2]]
    assert [h.tolist() for h in held] == [[7], []]


def test_scoring_reads_the_last_movies_left_padded() -> None:
    windows = latest_windows([np.array([1, 2, 3, 4]), np.array([], np.int64)], np.array([0, 1]), max_len=3)
    assert windows.tolist() == [[3, 4, 5], [0, 0, 0]]


def test_without_timestamps_the_model_refuses_with_advice() -> None:
    frame = synth_ratings(n_users=10, n_movies=12, per_user=5, seed=1).drop(columns="timestamp")
    with pytest.raises(ModelError, match="timestamp.*--model ease"):
        create_model("sasrec", **FAST).fit(encode(frame))


def test_lists_follow_the_latest_history_and_survive_a_save(tmp_path: Path) -> None:
    """The user vector is the state after the most recent movie: reordering only the oldest
    ratings beyond max_len leaves it unchanged, and a saved model scores identically."""
    frame = synth_ratings(n_users=20, n_movies=30, per_user=12, seed=2)
    data = encode(frame)
    model = create_model("sasrec", seed=3, **FAST).fit(data)
    users = np.arange(data.n_users)
    before = model.score_users(users)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.score_users(users), before, rtol=1e-5, atol=1e-5)
    old = np.argsort(data.timestamp)
    stamps = data.timestamp.copy()
    per_user_first = {}
    for row in old:  # swap the time of each user's two oldest ratings
        per_user_first.setdefault(int(data.user_idx[row]), []).append(row)
    for rows in per_user_first.values():
        a, b = rows[0], rows[1]
        stamps[a], stamps[b] = stamps[b], stamps[a]
    swapped = Interactions(data.user_idx, data.movie_idx, data.rating, data.n_users, data.n_movies, timestamp=stamps)
    model._set_histories(order_histories(swapped, data.n_users))
    np.testing.assert_allclose(model.score_users(users), before, rtol=1e-5, atol=1e-5)
