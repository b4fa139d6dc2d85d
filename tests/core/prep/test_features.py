"""Movie side features: genre multi-hot plus one-hot year bucket, rows in vocabulary order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core.prep.encoding import IdVocabulary
from recsys_core.prep.features import YEAR_EDGES, build_item_features, feature_names


def movies_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "movie_id": [30, 10, 20, 40],
            "title": ["c", "a", "b", "d"],
            "year": pd.array([1995, 1939, None, 2023], dtype="Int16"),
            "genres": [["Drama", "Comedy"], ["Action"], ["(no genres listed)"], []],
        }
    )


def test_features_shape_and_names() -> None:
    vocab = IdVocabulary(np.array([1]), np.array([10, 20, 30, 40, 50]))
    feats = build_item_features(movies_frame(), vocab)
    names = feature_names(movies_frame())
    assert feats.dtype == np.float32
    assert feats.shape == (5, 3 + len(YEAR_EDGES) + 2) == (5, len(names))
    assert names[:3] == ["genre:Action", "genre:Comedy", "genre:Drama"]


def test_features_follow_vocabulary_order() -> None:
    vocab = IdVocabulary(np.array([1]), np.array([10, 20, 30, 40, 50]))
    feats = build_item_features(movies_frame(), vocab)
    names = feature_names(movies_frame())
    col = {n: j for j, n in enumerate(names)}
    assert feats[0, col["genre:Action"]] == 1 and feats[0, col["year:-1940"]] == 1
    assert feats[2, col["genre:Drama"]] == 1 and feats[2, col["genre:Comedy"]] == 1
    assert feats[2, col["year:1995-2000"]] == 1
    assert feats[3, col["year:2020-"]] == 1
    # no year or not in the catalogue: the unknown bucket, no genre
    for row in (1, 4):
        assert feats[row, col["year:unknown"]] == 1 and feats[row, :3].sum() == 0
    # exactly one year bucket per movie
    np.testing.assert_array_equal(feats[:, 3:].sum(axis=1), np.ones(5))
