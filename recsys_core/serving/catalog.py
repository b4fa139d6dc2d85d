"""The movie catalogue a run serves from: titles, years, genres and how often each was rated.

The publish step writes ``<run_folder>/catalog.parquet`` before it replaces ``_latest.json``,
so a server that follows the manifest always finds it. It gives the API year and genres for
every item and the night's popularity list (most rated first) from the same ratings the run
trained on. Runs published before this file existed fall back to what the run folder holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CATALOG_FILE = "catalog.parquet"
CATALOG_COLUMNS = ("movie_id", "title", "year", "genres", "n_ratings", "mean_rating")


def build_catalog(movies: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per movie with its rating count and mean (0 and NaN for unrated movies)."""
    stats = ratings.groupby("movie_id")["rating"].agg(["size", "mean"])
    out = pd.DataFrame({"movie_id": movies["movie_id"].to_numpy(np.int64)})
    out["title"] = movies["title"].astype("string").to_numpy()
    no_year = pd.array([pd.NA] * len(out), dtype="Int16")
    out["year"] = movies["year"].astype("Int16").to_numpy() if "year" in movies else no_year
    genres = movies["genres"] if "genres" in movies else pd.Series([[]] * len(out))
    out["genres"] = [list(g) if isinstance(g, list | tuple | np.ndarray) else [] for g in genres]
    out["n_ratings"] = stats["size"].reindex(out["movie_id"]).fillna(0).astype(np.int64).to_numpy()
    out["mean_rating"] = stats["mean"].reindex(out["movie_id"]).astype(np.float32).to_numpy()
    return out.sort_values("movie_id", kind="stable").reset_index(drop=True)


def write_catalog(run_folder: Path, movies: pd.DataFrame, ratings: pd.DataFrame) -> Path:
    """Write ``catalog.parquet`` into the run folder (called by the publish step)."""
    path = Path(run_folder) / CATALOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    build_catalog(movies, ratings).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_catalog(run_folder: Path) -> pd.DataFrame | None:
    """The run's catalogue, or None when the run predates ``catalog.parquet``."""
    path = Path(run_folder) / CATALOG_FILE
    if not path.is_file():
        return None
    frame = pd.read_parquet(path)
    missing = set(CATALOG_COLUMNS) - set(frame.columns)
    return None if missing else frame


def fallback_catalog(titles: pd.DataFrame, counts: pd.Series | None) -> pd.DataFrame:
    """A catalogue from titles only (no year or genres), with counts when the model kept them."""
    out = titles[["movie_id", "title"]].drop_duplicates("movie_id").sort_values("movie_id").reset_index(drop=True)
    out["movie_id"] = out["movie_id"].astype(np.int64)
    out["year"] = pd.array([pd.NA] * len(out), dtype="Int16")
    out["genres"] = [[] for _ in range(len(out))]
    n = counts.reindex(out["movie_id"]).fillna(0) if counts is not None else pd.Series(0, index=out.index)
    out["n_ratings"] = n.astype(np.int64).to_numpy()
    out["mean_rating"] = np.float32("nan")
    return out


def popular_movie_ids(catalog: pd.DataFrame, limit: int) -> np.ndarray:
    """Most rated first (ties by movie id): the night's list for people not in the table."""
    rated = catalog[catalog["n_ratings"] > 0]
    order = np.lexsort((rated["movie_id"].to_numpy(), -rated["n_ratings"].to_numpy()))
    return rated["movie_id"].to_numpy(np.int64)[order[:limit]]
