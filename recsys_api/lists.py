"""Turn a snapshot's arrays into the ``items`` every list endpoint returns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys_api.store import Snapshot


def build_item(
    snap: Snapshot, movie_id: int, rank: int, score: float, predicted: float | None, because: Sequence[int] = ()
) -> dict[str, Any]:
    """One item; NaN ratings become null and unknown titles say so."""
    info = snap.movies.get(movie_id)
    return {
        "movie_id": movie_id,
        "title": info.title if info else f"movie {movie_id}",
        "year": info.year if info else None,
        "genres": info.genres if info else [],
        "score": float(score),
        "predicted_rating": None if predicted is None or math.isnan(predicted) else round(float(predicted), 4),
        "rank": rank,
        "because": [
            {"movie_id": m, "title": snap.movies[m].title if m in snap.movies else f"movie {m}"} for m in because
        ],
    }


def explain(snap: Snapshot, rated_idx: np.ndarray, movie_id: int, values: np.ndarray | None = None) -> list[int]:
    """Movie ids of the rated movies that pushed ``movie_id`` up (empty when the model cannot say);
    ``values`` are the rated movies' values in the row the model scored (None: 1 each)."""
    target = snap.movie_idx(movie_id)
    if target < 0 or not len(rated_idx):
        return []
    return [int(m) for m in snap.vocab.decode_movies(snap.foldin.contributors(rated_idx, target, values=values))]


def personal_items(snap: Snapshot, user_id: int, n: int) -> list[dict[str, Any]] | None:
    """The user's published list (first n), or None when the user is not in the table."""
    rows = snap.index.lookup(user_id)
    if rows is None:
        return None
    user_idx = snap.user_idx(user_id)
    rated, values = snap.foldin.user_row(user_idx)
    return [
        build_item(snap, int(m), int(r), float(s), float(p), explain(snap, rated, int(m), values))
        for m, r, s, p in zip(rows.movie_id[:n], rows.rank[:n], rows.score[:n], rows.predicted_rating[:n], strict=True)
    ]


def popular_items(snap: Snapshot, n: int, exclude: set[int] = frozenset()) -> list[dict[str, Any]]:
    """The night's popularity list; score is the movie's number of ratings."""
    out: list[dict[str, Any]] = []
    for movie_id in snap.popular:
        movie_id = int(movie_id)
        if movie_id in exclude:
            continue
        out.append(build_item(snap, movie_id, len(out) + 1, float(snap.popular_counts.get(movie_id, 0)), None))
        if len(out) == n:
            break
    return out


def top_items(
    snap: Snapshot,
    scores: np.ndarray,
    predicted: np.ndarray | None,
    n: int,
    rated_idx: np.ndarray,
    values: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """The n best finite scores over the vocabulary as items (rated movies already excluded);
    ``values`` are the rated movies' values in the folded-in row, for "because"."""
    candidates = np.flatnonzero(np.isfinite(scores))
    if not len(candidates):
        return []
    k = min(n, len(candidates))
    part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
    best = part[np.lexsort((part, -scores[part]))]
    movie_ids = snap.vocab.decode_movies(best)
    return [
        build_item(
            snap,
            int(m),
            rank,
            float(scores[i]),
            None if predicted is None else float(predicted[i]),
            explain(snap, rated_idx, int(m), values),
        )
        for rank, (i, m) in enumerate(zip(best, movie_ids, strict=True), 1)
    ]
