"""Nearest movies for the API, prepared once per published run.

Factor models use the movie embedding of ``recsys similar`` (``similarity.movie_embedding``),
normalised once. EASE (and ``combined`` ranked by EASE) compares B's columns: how every movie
predicts the target, the same vectors ``recsys similar`` uses on small catalogues, computed
without copying B so the 5,000 x 5,000 matrix is held once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_core.models.base import Recommender
from recsys_core.serving.foldin import EaseFoldIn, FoldIn
from recsys_core.serving.similarity import movie_embedding


@dataclass(frozen=True)
class Neighbours:
    """Cosine neighbours over the covered movies; ``vectors`` rows or B's columns."""

    vectors: np.ndarray  # (covered, d) unit rows, or B (covered x covered) when by_column
    covered: np.ndarray  # vocabulary index of each vector
    position: np.ndarray  # vocabulary index -> vector row, -1 when not covered
    norms: np.ndarray  # column norms when by_column
    by_column: bool = False

    def covers(self, movie_idx: int) -> bool:
        return 0 <= movie_idx < len(self.position) and self.position[movie_idx] >= 0

    def nearest(self, movie_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary indices and cosines of the n nearest covered movies (itself excluded)."""
        q = int(self.position[movie_idx])
        if self.by_column:
            sims = (self.vectors[:, q] @ self.vectors) / (self.norms * self.norms[q])
        else:
            sims = self.vectors @ self.vectors[q]
        sims = np.asarray(sims, np.float32)
        sims[q] = -np.inf
        n = min(n, len(sims) - 1)
        if n <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        top = np.argpartition(-sims, n - 1)[:n]
        top = top[np.argsort(-sims[top], kind="stable")]
        return self.covered[top], sims[top]


def build_neighbours(model: Recommender, foldin: FoldIn) -> Neighbours | None:
    """None when the model has no movie vectors (baselines, Mult-DAE, ...)."""
    if isinstance(foldin, EaseFoldIn):
        norms = np.linalg.norm(foldin.b, axis=0)
        norms[norms == 0] = 1.0
        return Neighbours(foldin.b, foldin.active, foldin.position, norms.astype(np.float32), by_column=True)
    try:
        embedding = movie_embedding(model)
    except (NotImplementedError, AttributeError):
        embedding = None
    if embedding is None:
        return None
    norms = np.linalg.norm(embedding, axis=1)
    norms[norms == 0] = 1.0
    unit = (embedding / norms[:, None]).astype(np.float32)
    covered = np.arange(len(unit), dtype=np.int64)
    return Neighbours(unit, covered, covered.copy(), np.ones(len(unit), np.float32))
