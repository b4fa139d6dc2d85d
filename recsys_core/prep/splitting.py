"""Train/test splits. Every split returns disjoint frames whose union is the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_core.errors import RecsysError

SPLITS = ("random", "stratified", "temporal", "u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass
class Split:
    name: str
    train: pd.DataFrame
    test: pd.DataFrame


def split_random(ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A uniform random fraction of all ratings goes to test."""
    rng = np.random.default_rng(seed)
    is_test = rng.random(len(ratings)) < test_fraction
    return Split("random", ratings[~is_test].reset_index(drop=True), ratings[is_test].reset_index(drop=True))


def split_stratified(ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Per user, ``test_fraction`` of their ratings go to test; each user keeps one in train."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ratings))
    if not (ratings.index.is_monotonic_increasing and ratings.index.is_unique):
        shuffled = ratings.iloc[order]
        position = shuffled.groupby("user_id").cumcount().to_numpy()
        return _by_position(ratings, shuffled, position, test_fraction, "stratified")
    # The same split from arrays (ml-25m size: one mask, no shuffled copy of the frame, no sort back).
    is_test = mask_holdout_per_user(pd.factorize(ratings["user_id"])[0], test_fraction, order)
    return Split("stratified", ratings[~is_test].reset_index(drop=True), ratings[is_test].reset_index(drop=True))


def mask_holdout_per_user(user_codes: np.ndarray, fraction: float, order: np.ndarray) -> np.ndarray:
    """Rows held out: per user, their first floor(count x fraction) rows in the shuffled ``order``
    (each user keeps one). A row's position is its rank among its user's rows in that order."""
    codes = np.asarray(user_codes)[order]
    counts = np.bincount(codes)
    by_user = np.argsort(codes, kind="stable")  # users in turn, each in shuffled order
    starts = np.cumsum(counts) - counts
    position = np.empty(len(order), np.int64)
    position[by_user] = np.arange(len(order)) - np.repeat(starts, counts)
    n_held = np.minimum(np.floor(counts * fraction).astype(int), counts - 1)
    held = np.zeros(len(order), bool)
    held[order] = position < n_held[codes]
    return held


def split_temporal(ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Per user, their latest ``test_fraction`` ratings go to test (ties broken by movie id)."""
    ordered = ratings.sort_values(["user_id", "timestamp", "movie_id"], ascending=[True, False, True], kind="stable")
    position = ordered.groupby("user_id").cumcount().to_numpy()
    return _by_position(ratings, ordered, position, test_fraction, "temporal")


def _by_position(
    ratings: pd.DataFrame, ordered: pd.DataFrame, position: np.ndarray, test_fraction: float, name: str
) -> Split:
    counts = ordered.groupby("user_id")["user_id"].transform("size").to_numpy()
    n_test = np.floor(counts * test_fraction).astype(int)
    n_test = np.minimum(n_test, counts - 1)  # every user keeps at least one training rating
    is_test = position < n_test
    train = ordered[~is_test].sort_index().reset_index(drop=True)
    test = ordered[is_test].sort_index().reset_index(drop=True)
    return Split(name, train, test)


def split_predefined(folds: dict[str, tuple[pd.DataFrame, pd.DataFrame]], name: str, ratings: pd.DataFrame) -> Split:
    """The release's own folds (ml-100k u1..u5, ua, ub), restricted to the cleaned ratings."""
    if name not in folds:
        raise RecsysError(
            f"The split {name!r} needs the release's predefined folds, which this dataset does "
            f"not ship (available: {sorted(folds) or 'none'}). Use --split random, stratified "
            "or temporal."
        )
    base, test = folds[name]
    keys = ["user_id", "movie_id"]
    clean = ratings[keys + ["rating", "timestamp"]]
    train = clean.merge(base[keys].drop_duplicates(), on=keys, how="inner")
    test_out = clean.merge(test[keys].drop_duplicates(), on=keys, how="inner")
    return Split(name, train, test_out)


def make_split(
    ratings: pd.DataFrame,
    name: str,
    *,
    folds: dict[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Dispatch by split name."""
    builders = {"random": split_random, "stratified": split_stratified, "temporal": split_temporal}
    if name in builders:
        return builders[name](ratings, test_fraction=test_fraction, seed=seed)
    if name in SPLITS:
        return split_predefined(folds or {}, name, ratings)
    raise RecsysError(f"Unknown split {name!r} (--split). Choose one of: {', '.join(SPLITS)}.")


def holdout_validation(train: pd.DataFrame, fraction: float = 0.05, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut a validation slice from training data for early stopping; the test fold stays unseen."""
    split = split_stratified(train, test_fraction=fraction, seed=seed + 1)
    return split.train, split.test
