"""Nearest movies by cosine over the learned movie factors."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.errors import RecsysError
from recsys_core.models.base import Recommender
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.serving.similarity import PublishedModel, movie_embedding, nearest_movies, similar_movies


class FactorModel(Recommender):
    name = "fake_factors"

    def __init__(self, movies: np.ndarray | None) -> None:
        super().__init__()
        self._movies = movies

    def fit(self, train, validation=None):  # pragma: no cover - not trained here
        return self

    def factors(self):
        if self._movies is None:
            return None
        return np.ones((2, self._movies.shape[1]), np.float32), self._movies


MOVIES = np.array([[1.0, 0.0, 1.0], [0.9, 0.1, 1.0], [0.0, 1.0, 1.0], [-1.0, 0.0, 1.0]], np.float32)


def published(movies: np.ndarray | None) -> PublishedModel:
    vocab = IdVocabulary(np.array([1, 2], np.int64), np.array([10, 20, 30, 40], np.int64))
    return PublishedModel(FactorModel(movies), vocab, {10: "A", 20: "B", 30: "C"}, "run-1")


def test_constant_columns_are_not_part_of_the_embedding() -> None:
    emb = movie_embedding(FactorModel(MOVIES))
    assert emb.shape == (4, 2)  # the ones column of dot-product models is dropped


def test_nearest_movies_are_sorted_and_exclude_the_query() -> None:
    idx, sims = nearest_movies(MOVIES[:, :2], 0, n=3)
    assert idx.tolist() == [1, 2, 3]
    assert np.all(np.diff(sims) <= 0) and sims[0] == pytest.approx(0.9 / np.hypot(0.9, 0.1))


def test_similar_movies_maps_ids_and_titles() -> None:
    rows = similar_movies(published(MOVIES), 10, n=2)
    assert rows["movie_id"].tolist() == [20, 30]
    assert rows["title"].tolist() == ["B", "C"]


def test_clear_errors_without_embedding_or_unknown_movie() -> None:
    with pytest.raises(RecsysError, match="no movie embedding"):
        similar_movies(published(None), 10)
    with pytest.raises(RecsysError, match="no movie embedding"):
        similar_movies(published(np.ones((4, 1), np.float32)), 10)
    with pytest.raises(RecsysError, match="Movie 99 is not in the model"):
        similar_movies(published(MOVIES), 99)
