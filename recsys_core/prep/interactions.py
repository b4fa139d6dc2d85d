"""Encoded ratings as arrays: what models train on and what scoring masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.prep.encoding import IdVocabulary


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays of (user_idx, movie_idx, rating) over a fixed vocabulary size.

    ``timestamp`` (Unix seconds, int64, aligned with the other arrays) is optional: ``None``
    when the ratings frame had no usable timestamp column. Only time-aware models read it.
    """

    user_idx: np.ndarray
    movie_idx: np.ndarray
    rating: np.ndarray
    n_users: int
    n_movies: int
    timestamp: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rating)

    def to_csr(self, values: str = "binary") -> sp.csr_matrix:
        """Users x movies sparse matrix of ones ("binary") or of ratings ("rating")."""
        data = np.ones(len(self), np.float32) if values == "binary" else self.rating.astype(np.float32)
        m = sp.csr_matrix((data, (self.user_idx, self.movie_idx)), shape=(self.n_users, self.n_movies))
        m.sum_duplicates()
        return m


def to_interactions(ratings: pd.DataFrame, vocab: IdVocabulary) -> Interactions:
    """Encode a canonical ratings frame against ``vocab``.

    The canonical frame's ``timestamp`` (int64 Unix seconds, ``recsys_core.data.readers``) is
    carried along when present and complete; a frame without it, or with a missing value
    (which the data gate rejects before training), gives ``timestamp=None``.
    """
    return Interactions(
        user_idx=vocab.encode_users(ratings["user_id"]),
        movie_idx=vocab.encode_movies(ratings["movie_id"]),
        rating=ratings["rating"].to_numpy(np.float32),
        n_users=vocab.n_users,
        n_movies=vocab.n_movies,
        timestamp=timestamps_of(ratings),
    )


def timestamps_of(ratings: pd.DataFrame) -> np.ndarray | None:
    """The frame's ``timestamp`` column as int64 seconds, or None if absent or incomplete."""
    if "timestamp" not in ratings.columns:
        return None
    column = ratings["timestamp"]
    if column.isna().any():
        return None
    return column.to_numpy(np.int64)
