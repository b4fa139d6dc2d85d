"""Contiguous indices for user and movie ids; the vocabulary travels with the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.atomic import write_json_atomic
from recsys_core.errors import ModelError


@dataclass(frozen=True)
class IdVocabulary:
    """Sorted MovieLens ids; an id's index is its position (binary search both ways)."""

    user_ids: np.ndarray
    movie_ids: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    def encode_users(self, ids: np.ndarray | pd.Series) -> np.ndarray:
        return _encode(self.user_ids, ids, "user_id")

    def encode_movies(self, ids: np.ndarray | pd.Series) -> np.ndarray:
        return _encode(self.movie_ids, ids, "movie_id")

    def decode_users(self, idx: np.ndarray) -> np.ndarray:
        return self.user_ids[np.asarray(idx)]

    def decode_movies(self, idx: np.ndarray) -> np.ndarray:
        return self.movie_ids[np.asarray(idx)]

    def save(self, path: Path) -> None:
        write_json_atomic(path, {"user_ids": self.user_ids.tolist(), "movie_ids": self.movie_ids.tolist()})

    @classmethod
    def load(cls, path: Path) -> IdVocabulary:
        try:
            data = json.loads(Path(path).read_text())
            return cls(np.asarray(data["user_ids"], np.int64), np.asarray(data["movie_ids"], np.int64))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"Cannot read the id vocabulary {path}: {exc}. Retrain the model.") from exc


def fit_vocabulary(ratings: pd.DataFrame) -> IdVocabulary:
    """Users and movies that have at least one rating: the ones a model can learn."""
    return IdVocabulary(
        np.unique(ratings["user_id"].to_numpy(np.int64)),
        np.unique(ratings["movie_id"].to_numpy(np.int64)),
    )


def encode_ratings(ratings: pd.DataFrame, vocab: IdVocabulary) -> pd.DataFrame:
    """Add int32 ``user_idx`` and ``movie_idx`` columns."""
    out = ratings.copy()
    out["user_idx"] = vocab.encode_users(out["user_id"])
    out["movie_idx"] = vocab.encode_movies(out["movie_id"])
    return out


def _encode(known: np.ndarray, ids: np.ndarray | pd.Series, field: str) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    pos = np.searchsorted(known, ids)
    pos_clipped = np.minimum(pos, max(len(known) - 1, 0))
    ok = (pos < len(known)) & (known[pos_clipped] == ids) if len(known) else np.zeros(len(ids), bool)
    if not ok.all():
        missing = np.unique(ids[~ok])[:5].tolist()
        raise KeyError(f"{field} not in the vocabulary: {missing}")
    return pos.astype(np.int32)
