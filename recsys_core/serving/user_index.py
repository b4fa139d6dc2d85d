"""A published table indexed by user: one lookup is two binary searches and a slice.

The table is read once per published run (only the columns a list needs) into flat numpy
arrays sorted by (user_id, rank), plus the start offset of every user. At ml-25m size
(1.6M rows) that is about 35 MB, so a request never touches Parquet and memory does not
grow with traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

from recsys_core.errors import PublishError

INDEX_COLUMNS = ["user_id", "rank", "movie_id", "score", "predicted_rating"]


@dataclass(frozen=True)
class UserRows:
    """One user's list in rank order."""

    movie_id: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    predicted_rating: np.ndarray  # NaN where the model predicts no rating


@dataclass(frozen=True)
class UserIndex:
    user_ids: np.ndarray  # sorted, unique
    starts: np.ndarray  # offsets into the row arrays, len(user_ids) + 1
    movie_id: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    predicted_rating: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_rows(self) -> int:
        return len(self.movie_id)

    def lookup(self, user_id: int) -> UserRows | None:
        """The user's rows, or None when the user is not in the table."""
        pos = int(np.searchsorted(self.user_ids, user_id))
        if pos >= len(self.user_ids) or self.user_ids[pos] != user_id:
            return None
        rows = slice(int(self.starts[pos]), int(self.starts[pos + 1]))
        return UserRows(self.movie_id[rows], self.rank[rows], self.score[rows], self.predicted_rating[rows])

    def sample_users(self, limit: int) -> np.ndarray:
        """A spread of user ids (evenly spaced over the sorted ids) for pickers and examples."""
        if not len(self.user_ids):
            return self.user_ids
        picks = np.unique(np.linspace(0, len(self.user_ids) - 1, num=min(limit, len(self.user_ids))).astype(np.int64))
        return self.user_ids[picks]


def build_user_index(table_folder: Path) -> UserIndex:
    """Read the run's Parquet parts (index columns only) and index them by user."""
    files = sorted(Path(table_folder).glob("part-*.parquet"))
    if not files:
        raise PublishError(f"No part-*.parquet files in {table_folder}; the run may have been pruned.")
    table = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=INDEX_COLUMNS)
    user = table.column("user_id").to_numpy().astype(np.int64, copy=False)
    rank = table.column("rank").to_numpy().astype(np.int16, copy=False)
    order = np.lexsort((rank, user))
    user = user[order]
    predicted = table.column("predicted_rating").to_numpy(zero_copy_only=False)
    predicted = np.asarray(predicted, dtype=np.float32)  # nulls become NaN
    user_ids, starts = np.unique(user, return_index=True)
    return UserIndex(
        user_ids=user_ids,
        starts=np.append(starts, len(user)).astype(np.int64),
        movie_id=table.column("movie_id").to_numpy().astype(np.int64, copy=False)[order],
        rank=rank[order],
        score=table.column("score").to_numpy().astype(np.float32, copy=False)[order],
        predicted_rating=predicted[order],
    )
