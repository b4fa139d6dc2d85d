import pandas as pd
import pytest

from recsys_core.errors import RecsysError
from recsys_core.prep.splitting import holdout_validation, make_split
from tests.builders import synth_ratings

KEYS = ["user_id", "movie_id"]


def _pairs(df: pd.DataFrame) -> set[tuple[int, int]]:
    return set(map(tuple, df[KEYS].to_numpy().tolist()))


@pytest.mark.parametrize("name", ["random", "stratified", "temporal"])
def test_disjoint_and_complete(name):
    ratings = synth_ratings(n_users=25, per_user=15)
    split = make_split(ratings, name, test_fraction=0.2, seed=3)
    assert not (_pairs(split.train) & _pairs(split.test))
    assert _pairs(split.train) | _pairs(split.test) == _pairs(ratings)
    assert len(split.train) + len(split.test) == len(ratings)


@pytest.mark.parametrize("name", ["stratified", "temporal"])
def test_per_user_fraction_and_every_user_trains(name):
    ratings = synth_ratings(n_users=20, per_user=10)
    split = make_split(ratings, name, test_fraction=0.3, seed=1)
    test_counts = split.test.groupby("user_id").size()
    assert (test_counts == 3).all()  # floor(10 * 0.3)
    assert set(split.train["user_id"]) == set(ratings["user_id"])


def test_temporal_puts_latest_in_test():
    ratings = synth_ratings(n_users=10, per_user=10)
    split = make_split(ratings, "temporal", test_fraction=0.2)
    last_train = split.train.groupby("user_id")["timestamp"].max()
    first_test = split.test.groupby("user_id")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()


def test_random_is_seeded():
    ratings = synth_ratings()
    a = make_split(ratings, "random", seed=5)
    b = make_split(ratings, "random", seed=5)
    c = make_split(ratings, "random", seed=6)
    assert a.test.equals(b.test)
    assert not a.test.equals(c.test)


def test_predefined_folds_restricted_to_clean_ratings():
    ratings = synth_ratings(n_users=6, per_user=5)
    base, test = ratings.iloc[:20], ratings.iloc[20:]
    cleaned = ratings.iloc[1:]  # one rating rejected by the gate
    split = make_split(cleaned, "u1", folds={"u1": (base, test)})
    assert len(split.train) == 19 and len(split.test) == len(test)
    assert not (_pairs(split.train) & _pairs(split.test))


def test_missing_fold_and_unknown_split_are_clear():
    with pytest.raises(RecsysError, match="predefined folds"):
        make_split(synth_ratings(), "ua", folds={})
    with pytest.raises(RecsysError, match="Unknown split"):
        make_split(synth_ratings(), "bogus")


def test_holdout_validation_comes_from_train_only():
    train = synth_ratings(n_users=10, per_user=40)
    fit, val = holdout_validation(train, 0.1, seed=0)
    assert len(val) > 0 and not (_pairs(fit) & _pairs(val))
    assert _pairs(fit) | _pairs(val) == _pairs(train)


def test_stratified_array_path_equals_the_frame_path():
    """split_stratified's array path gives the frames the shuffled-frame path gives (same seed)."""
    import numpy as np
    import pandas as pd

    from recsys_core.prep.splitting import _by_position, split_stratified

    rng = np.random.default_rng(5)
    n = 3_000
    ratings = pd.DataFrame(
        {
            "user_id": rng.zipf(1.5, n) % 400 + 10,
            "movie_id": rng.integers(1, 500, n),
            "rating": rng.integers(1, 11, n).astype(np.float32) / 2,
            "timestamp": rng.integers(0, 10**9, n),
        }
    )
    for seed, fraction in ((0, 0.2), (7, 0.5)):
        got = split_stratified(ratings, test_fraction=fraction, seed=seed)
        shuffled = ratings.iloc[np.random.default_rng(seed).permutation(n)]
        want = _by_position(
            ratings, shuffled, shuffled.groupby("user_id").cumcount().to_numpy(), fraction, "stratified"
        )
        pd.testing.assert_frame_equal(got.train, want.train)
        pd.testing.assert_frame_equal(got.test, want.test)
    scrambled = ratings.iloc[::-1]  # not in index order: the frame path
    got = split_stratified(scrambled, seed=1)
    assert len(got.train) + len(got.test) == n
