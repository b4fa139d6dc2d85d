"""Users the model cannot serve and movies it can never recommend, counted and handled.

The model scores only movies someone rated (they are its vocabulary). Two edge cases follow:
a user who has rated every such movie has no candidate left, and a catalogue movie nobody rated
can never be ranked by the model. The first gets a fallback list over the catalogue movies they
have not rated (most-rated first, then newest, then id; with nothing rated those are the
never-rated movies), marked ``model = "popularity@fallback"``; the second is counted in the run
report and the manifest so nobody mistakes the gap for a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from recsys_core.prep.encoding import IdVocabulary

FALLBACK_MODEL = "popularity@fallback"


@dataclass(frozen=True)
class CatalogueGaps:
    exhausted_user_ids: np.ndarray  # users who rated every movie anyone rated
    unrated_movie_ids: np.ndarray  # catalogue movies nobody rated

    def counts(self) -> dict[str, int]:
        return {
            "users with every rated movie seen (popularity fallback)": len(self.exhausted_user_ids),
            "catalogue movies nobody rated (never recommended by the model)": len(self.unrated_movie_ids),
        }


def find_catalogue_gaps(ratings: pd.DataFrame, movies: pd.DataFrame, vocab: IdVocabulary) -> CatalogueGaps:
    per_user = ratings.groupby("user_id")["movie_id"].nunique()
    exhausted = per_user[per_user >= vocab.n_movies].index.to_numpy(np.int64)
    unrated = np.setdiff1d(movies["movie_id"].to_numpy(np.int64), vocab.movie_ids)
    return CatalogueGaps(np.sort(exhausted), unrated)


def build_fallback_table(
    gaps: CatalogueGaps,
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    top_n: int,
    *,
    run_id: str,
    generated_at: datetime,
) -> pd.DataFrame:
    """Rows in the published schema for the exhausted users (empty when there are none)."""
    if not len(gaps.exhausted_user_ids):
        return pd.DataFrame()
    popularity = ratings["movie_id"].value_counts()
    catalogue = movies[["movie_id", "title"]].copy()
    catalogue["count"] = catalogue["movie_id"].map(popularity).fillna(0).astype(np.int64)
    catalogue["year"] = movies["year"].astype("Float64").fillna(-1) if "year" in movies else -1
    ranked = catalogue.sort_values(["count", "year", "movie_id"], ascending=[False, False, True], kind="stable")
    seen = ratings.groupby("user_id")["movie_id"].agg(set)
    frames = []
    for user in gaps.exhausted_user_ids:
        picks = ranked[~ranked["movie_id"].isin(seen.get(user, set()))].head(top_n)
        if picks.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "user_id": np.int64(user),
                    "rank": np.arange(1, len(picks) + 1, dtype=np.int16),
                    "movie_id": picks["movie_id"].to_numpy(np.int64),
                    "title": pd.array(picks["title"].to_numpy(), dtype="string"),
                    "score": picks["count"].to_numpy(np.float32),
                    "predicted_rating": pd.array([None] * len(picks), dtype="Float32"),
                    "model": FALLBACK_MODEL,
                    "run_id": run_id,
                    "generated_at": pd.Timestamp(generated_at).tz_convert("UTC").as_unit("us"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
