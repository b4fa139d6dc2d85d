"""Rankers whose scores are a user's last hidden state times a linear output layer.

Mult-DAE, RecVAE and SASRec all end in a dense layer over the catalogue, so a user's score for
every movie is ``[h, 1] @ [W^T, b]^T``: one vector per user, one per movie. Exposing that pair
as ``factors()`` lets scoring and serving use the dot-product fast path instead of a forward
pass through the whole output layer per block.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.models.base import Recommender
from recsys_core.prep.interactions import Interactions


def output_vectors(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Movie vectors ``[W^T, b]`` (movies x (hidden + 1)) of a (hidden x movies) output layer."""
    return np.hstack([weight.T, bias[:, None]]).astype(np.float32)


def append_ones(vectors: np.ndarray) -> np.ndarray:
    """``[h, 1]`` as float32: the constant column meets the bias column on the other side."""
    return np.hstack([vectors, np.ones((len(vectors), 1), np.float32)]).astype(np.float32)


class OutputLayerRanker(Recommender):
    """Scores from ``_user_vectors`` (subclasses) and the cached ``_movie_vectors``."""

    _movie_vectors: np.ndarray

    def _user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Logits over the catalogue for a block of users: their vectors times the movies'."""
        return (self._user_vectors(user_idx) @ self._movie_vectors.T).astype(np.float32)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self._user_vectors(np.arange(self.n_users)), self._movie_vectors


class RowScoredRanker(OutputLayerRanker):
    """An output-layer ranker that encodes a user from their binary row of rated movies
    (Mult-DAE, RecVAE): which ratings form that row can be set apart from the training data."""

    _rows: sp.csr_matrix

    def set_scoring_rows(self, data: Interactions) -> None:
        """Score users from ``data``'s rows: a bag member trained on part of the ratings still
        encodes each user from all of them, as a single model does."""
        self._rows = data.to_csr()
