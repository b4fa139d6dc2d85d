"""Movie side features for hybrid models: genre multi-hot plus release-year buckets.

Rows follow the vocabulary's movie order, so row ``i`` describes ``movie_idx == i``. The year
buckets have fixed edges (not fitted on the data) so the feature width depends only on the
genre list, and a movie with no known year gets its own "unknown" bucket rather than a guess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core.prep.encoding import IdVocabulary

YEAR_EDGES = (1940, 1960, 1970, 1980, 1990, 1995, 2000, 2010, 2020)
NO_GENRE = "(no genres listed)"


def genre_vocabulary(movies: pd.DataFrame) -> list[str]:
    """Sorted distinct genres; the "no genres" marker is not a genre."""
    genres = {g for row in movies["genres"] for g in (row if row is not None else ())}
    genres.discard(NO_GENRE)
    return sorted(genres)


def year_bucket_names() -> list[str]:
    lows = ("",) + tuple(str(e) for e in YEAR_EDGES)
    highs = tuple(str(e) for e in YEAR_EDGES) + ("",)
    return [f"year:{lo}-{hi}" for lo, hi in zip(lows, highs, strict=True)] + ["year:unknown"]


def feature_names(movies: pd.DataFrame) -> list[str]:
    """Column names of ``build_item_features`` for the same frame."""
    return [f"genre:{g}" for g in genre_vocabulary(movies)] + year_bucket_names()


def build_item_features(movies: pd.DataFrame, vocab: IdVocabulary) -> np.ndarray:
    """float32 [n_movies, n_genres + n_year_buckets]: genre multi-hot and one-hot year bucket."""
    genres = genre_vocabulary(movies)
    col = {g: j for j, g in enumerate(genres)}
    n_year = len(YEAR_EDGES) + 2
    out = np.zeros((vocab.n_movies, len(genres) + n_year), np.float32)
    out[:, len(genres) + n_year - 1] = 1.0  # unknown year until a known one is written

    known = movies[movies["movie_id"].isin(vocab.movie_ids)].drop_duplicates("movie_id")
    rows = vocab.encode_movies(known["movie_id"].to_numpy(np.int64))
    for row, movie_genres in zip(rows, known["genres"], strict=True):
        for g in movie_genres if movie_genres is not None else ():
            if g in col:
                out[row, col[g]] = 1.0

    years = pd.to_numeric(known["year"], errors="coerce").to_numpy(np.float64)
    has_year = ~np.isnan(years)
    bucket = np.searchsorted(np.asarray(YEAR_EDGES), years[has_year], side="right")
    out[rows[has_year], len(genres) + n_year - 1] = 0.0
    out[rows[has_year], len(genres) + bucket] = 1.0
    return out
