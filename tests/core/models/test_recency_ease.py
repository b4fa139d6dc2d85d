"""recency_ease: recency on hand-built timelines, the rolling temporal validation's bounds,
persistence and the fallback without timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ModelError
from recsys_core.models import create_model, load_model
from recsys_core.models.interaction_utils import union_interactions
from recsys_core.models.recency_ease import DAY_SECONDS, decay_weights, recent_prior, standardise_unseen
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import Interactions, to_interactions
from recsys_core.prep.splitting import holdout_validation
from tests.builders import synth_ratings

T0 = 880_000_000  # seconds
FAST = {"lambdas": [1.0, 10.0], "taus": [None, 20.0], "days": [7.0, 28.0], "betas": [0.0, 1.0], "min_window_users": 2}


def encode(frame: pd.DataFrame) -> tuple[Interactions, object]:
    vocab = fit_vocabulary(frame)
    return to_interactions(frame, vocab), vocab


def hand_built() -> pd.DataFrame:
    """Movie 2 co-occurs with movie 1 in 20 old histories; movie 3 with movie 1 in 10 users' last days.

    User 100 has rated movie 1 only (long ago): EASE alone prefers 2, recency prefers 3."""
    rows = []
    for u in range(1, 21):
        rows += [(u, 1, 4.0, T0 + u), (u, 2, 4.0, T0 + 100 + u)]
    late = T0 + 120 * DAY_SECONDS
    for u in range(21, 31):
        rows += [(u, 1, 4.0, late - 3 * DAY_SECONDS + u), (u, 3, 4.0, late - 2 * DAY_SECONDS + u)]
    rows += [(100, 1, 4.0, T0 + 5), (99, 4, 3.0, T0 + 7)]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def order_for(model, vocab, user_id: int) -> list[int]:
    scores = model.score_users(vocab.encode_users(pd.Series([user_id])))[0]
    seen = set(vocab.encode_movies(pd.Series([1])).tolist())
    ranked = [int(m) for m in np.argsort(-scores, kind="stable") if int(m) not in seen]
    return vocab.decode_movies(np.array(ranked)).tolist()


def test_interactions_carry_timestamps_and_union_keeps_them() -> None:
    frame = synth_ratings(n_users=6, n_movies=8, per_user=4, seed=1)
    x, vocab = encode(frame)
    np.testing.assert_array_equal(x.timestamp, frame["timestamp"].to_numpy())
    assert x.timestamp.dtype == np.int64
    both = union_interactions(x, x)
    assert len(both.timestamp) == 2 * len(x)
    bare = to_interactions(frame.drop(columns="timestamp"), vocab)
    assert bare.timestamp is None and union_interactions(x, bare).timestamp is None
    missing = frame.astype({"timestamp": "Int64"})
    missing.loc[0, "timestamp"] = pd.NA
    assert to_interactions(missing, vocab).timestamp is None


def test_pieces() -> None:
    now = T0 + 10 * DAY_SECONDS
    w = decay_weights(np.array([now - DAY_SECONDS, now - 11 * DAY_SECONDS]), now, 10.0)
    np.testing.assert_allclose(w, np.exp([-0.1, -1.1]))
    np.testing.assert_array_equal(decay_weights(np.array([1, 2]), now, None), [1.0, 1.0])
    prior = recent_prior(
        np.array([0, 0, 1, 2, 2]), np.array([now - 1, now - 2, now - 1, now - 9 * DAY_SECONDS, now]), 3, now, 7
    )
    np.testing.assert_array_equal(prior, [1.0, 0.5, 0.0])  # a rating at ``now`` does not count
    import scipy.sparse as sp

    z = standardise_unseen(np.array([[1.0, 2.0, 3.0, 100.0]]), sp.csr_matrix(np.array([[0, 0, 0, 1]])))
    np.testing.assert_allclose(z[0, :3], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])


def test_recency_changes_the_order_as_expected() -> None:
    x, vocab = encode(hand_built())
    fixed = {"taus": [None], "lambdas": [1.0], "days": [7.0], "min_window_users": 1}
    plain = create_model("recency_ease", betas=[0.0], **fixed).fit(x)
    recent = create_model("recency_ease", betas=[5.0], **fixed).fit(x)
    assert plain.beta == 0.0 and recent.beta == 5.0
    assert order_for(plain, vocab, 100)[:2] == [2, 3]
    assert order_for(recent, vocab, 100)[:2] == [3, 2]


def test_temporal_validation_chooses_recency_when_next_week_follows_this_week() -> None:
    """Each week a new movie is the hit: rated by a few users late in week w and by many in
    week w + 1. Old all-time favourites co-occur with everything, so only recency finds the hit."""
    rng = np.random.default_rng(0)
    rows = []
    users = np.arange(1, 121)
    for u in users:  # everybody rated the classics, long ago
        for m in range(1, 6):
            rows.append((int(u), m, 4.0, T0 + int(rng.integers(0, DAY_SECONDS))))
    for week in range(1, 9):
        hit = 100 + week
        start = T0 + week * 7 * DAY_SECONDS
        for u in rng.choice(users, 40, replace=False):
            rows.append((int(u), hit, 4.0, start + int(rng.integers(0, 7 * DAY_SECONDS))))
        for u in rng.choice(users, 20, replace=False):  # older movies keep a trickle of co-ratings
            rows.append((int(u), 200 + week, 3.0, start + int(rng.integers(0, 7 * DAY_SECONDS))))
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    frame = frame.drop_duplicates(["user_id", "movie_id"])
    x, _ = encode(frame)
    model = create_model("recency_ease", lambdas=[10.0], taus=[None], days=[7.0], betas=[0.0, 4.0]).fit(x)
    assert model.windows_used == 3
    assert model.beta == 4.0


def test_validation_never_sees_ratings_after_now(tmp_path: Path) -> None:
    frame = synth_ratings(n_users=40, n_movies=30, per_user=12, seed=5)
    x, vocab = encode(frame)
    model = create_model("recency_ease", **FAST).fit(x)
    assert model.now == int(frame["timestamp"].max()) + 1
    ts = x.timestamp
    for window in model.windows():
        assert window["end"] <= model.now
        assert ts[window["history"]].max() < window["start"]
        assert np.all((ts[window["inside"]] >= window["start"]) & (ts[window["inside"]] < window["end"]))
    # an explicit ``now`` leaves later ratings out entirely: they change nothing
    now = int(np.quantile(frame["timestamp"], 0.8))
    past = frame[frame["timestamp"] < now]
    with_future = create_model("recency_ease", now=now, **FAST).fit(to_interactions(frame, vocab))
    without = create_model("recency_ease", now=now, **FAST).fit(to_interactions(past, vocab))
    users = np.arange(vocab.n_users)
    np.testing.assert_array_equal(with_future.score_users(users), without.score_users(users))
    assert with_future._json_state() == without._json_state()


def test_deterministic_and_save_load_scores_equal(tmp_path: Path) -> None:
    frame = synth_ratings(n_users=40, n_movies=30, per_user=12, seed=5)
    vocab = fit_vocabulary(frame)
    train, val = holdout_validation(frame, 0.1, seed=3)
    t, v = to_interactions(train, vocab), to_interactions(val, vocab)
    params = {**FAST, "betas": [1.0]}  # a recent prior that counts
    a = create_model("recency_ease", seed=4, **params).fit(t, v)
    b = create_model("recency_ease", seed=4, **params).fit(t, v)
    users = np.arange(vocab.n_users)
    np.testing.assert_array_equal(a.score_users(users), b.score_users(users))
    a.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score_users(users), a.score_users(users))
    assert loaded._json_state() == a._json_state() and loaded.beta == 1.0
    assert a.validation_scores(t.to_csr()).shape == (vocab.n_users, vocab.n_movies)


def test_without_timestamps_it_is_plain_ease() -> None:
    frame = synth_ratings(n_users=30, n_movies=25, per_user=10, seed=2)
    vocab = fit_vocabulary(frame)
    train, val = holdout_validation(frame.drop(columns="timestamp"), 0.2, seed=0)
    t, v = to_interactions(train, vocab), to_interactions(val, vocab)
    assert t.timestamp is None
    model = create_model("recency_ease", lambdas=[5.0]).fit(t, v)
    ease = create_model("ease", lambdas=[5.0]).fit(t, v)
    assert model.history["fallback"] == [1.0] and model.beta == 0.0 and model.now is None
    users = np.arange(vocab.n_users)
    ours, theirs = model.score_users(users), ease.score_users(users)
    seen = union_interactions(t, v).to_csr().toarray() > 0
    for u in users:  # a per-user affine map of EASE's scores over unseen movies: the same order
        if (~seen[u]).sum() > 2 and np.std(theirs[u, ~seen[u]]) > 0:
            assert np.corrcoef(ours[u, ~seen[u]], theirs[u, ~seen[u]])[0, 1] == pytest.approx(1.0, abs=1e-5)


def test_fixed_settings_refit_chooses_nothing_and_scores_alike() -> None:
    """Train once: the refit takes the fit's choice and solves once, with the same scores."""
    frame = synth_ratings(n_users=40, n_movies=30, per_user=12, seed=5)
    x, vocab = encode(frame)
    fitted = create_model("recency_ease", **FAST).fit(x)
    settings = fitted.fixed_settings()
    assert (settings["taus"], settings["lambdas"]) == ([fitted.tau], [fitted.lam])
    assert (settings["days"], settings["betas"]) == ([fitted.days], [fitted.beta])
    refit = create_model("recency_ease", **settings).fit(x)
    assert refit.windows_used == 0 and refit.history == {}
    users = np.arange(vocab.n_users)
    np.testing.assert_allclose(refit.score_users(users), fitted.score_users(users), rtol=1e-5, atol=1e-6)


def test_choosing_on_the_validation_slice_picks_its_best_configuration() -> None:
    """``choose_on="validation"`` (a random hold-out protocol): one window, the given slice judged
    against a fit on train at ``now``; the choice is the configuration that scores best there."""
    from itertools import product

    from recsys_core.models.interaction_utils import validation_ndcg

    frame = synth_ratings(n_users=40, n_movies=30, per_user=12, seed=5)
    vocab = fit_vocabulary(frame)
    train, val = holdout_validation(frame, 0.2, seed=1)
    t, v = to_interactions(train, vocab), to_interactions(val, vocab)
    model = create_model("recency_ease", choose_on="validation", **FAST).fit(t, v)
    (window,) = model.windows()
    assert window["start"] == model.now and int(window["inside"].sum()) == len(v)
    assert model.windows_used == 1
    seen = t.to_csr()
    scores = {}
    for tau, lam, day, beta in product(FAST["taus"], FAST["lambdas"], FAST["days"], FAST["betas"]):
        one = {"taus": [tau], "lambdas": [lam], "days": [day], "betas": [beta]}
        alone = create_model("recency_ease", now=model.now, **one).fit(t)
        scores[(tau, lam, day, beta)] = validation_ndcg(alone.score_users(np.arange(vocab.n_users)), seen, v, 10)
    assert model.val_ndcg == pytest.approx(max(scores.values()), abs=1e-6)
    assert scores[(model.tau, model.lam, model.days, model.beta)] == pytest.approx(model.val_ndcg, abs=1e-6)
    # without a validation slice there is no evidence: plain EASE with the middle lambda
    bare = create_model("recency_ease", choose_on="validation", **FAST).fit(t)
    assert bare.windows_used == 0 and bare.tau is None and bare.beta == 0.0
    with pytest.raises(ModelError, match="choose_on"):
        create_model("recency_ease", choose_on="test", **FAST).fit(t, v)
