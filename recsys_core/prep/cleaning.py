"""Merge titles into ratings and collapse duplicate (user, movie) ratings."""

from __future__ import annotations

import pandas as pd


def average_duplicates(ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, movie): the mean rating and the latest timestamp.

    Re-rated movies appear more than once in some exports; a model should see one opinion
    per pair, and the latest timestamp keeps temporal splits honest.
    """
    if not ratings.duplicated(["user_id", "movie_id"]).any():
        return ratings.reset_index(drop=True)
    out = ratings.groupby(["user_id", "movie_id"], as_index=False, sort=False).agg(
        rating=("rating", "mean"), timestamp=("timestamp", "max")
    )
    out["rating"] = out["rating"].astype("float32")
    return out[["user_id", "movie_id", "rating", "timestamp"]]


def merge_titles(ratings: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    """Attach title, year and genres; ratings of movies missing from the catalogue are dropped.

    The data gate has already quarantined unknown movies, so the inner join loses nothing
    there; it protects callers that skip validation.
    """
    cols = [c for c in ("movie_id", "title", "year", "genres") if c in movies.columns]
    return ratings.merge(movies[cols], on="movie_id", how="inner", validate="many_to_one")


def clean_ratings(ratings: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    """The merge/average stage: averaged ratings of known movies, canonical columns only."""
    merged = merge_titles(average_duplicates(ratings), movies)
    return merged[["user_id", "movie_id", "rating", "timestamp"]].reset_index(drop=True)
