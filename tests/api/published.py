"""Publish a run directly with the project's own functions (no Prefect): fast API fixtures.

Same layout the nightly flow leaves: runs/<id>/model (+ vocabulary.json), runs/<id>/catalog.parquet,
recommendations/dt=.../run_id=<id>/part-*.parquet promoted from staging, then _latest.json.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.models import create_model
from recsys_core.models.base import Recommender
from recsys_core.prep.encoding import IdVocabulary, fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.publishing.table import build_table, promote, run_partition, staging_dir, write_manifest, write_part
from recsys_core.serving.catalog import write_catalog
from recsys_core.serving.topn import recommend_top_n


def fit_model(name: str, ratings: pd.DataFrame, vocab: IdVocabulary, **params: Any) -> Recommender:
    model = create_model(name, rating_min=float(ratings["rating"].min()), rating_max=5.0, seed=0, **params)
    return model.fit(to_interactions(ratings, vocab))


def publish_run(
    data_dir: Path,
    run_id: str,
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    model: Recommender,
    vocab: IdVocabulary,
    *,
    top_n: int = 10,
    generated_at: datetime | None = None,
    catalog: bool = True,
    n_threads: int = 1,
) -> dict[str, Any]:
    """Score every user, publish the table and replace _latest.json; returns the manifest."""
    generated_at = generated_at or datetime.now(UTC)
    folder = Path(data_dir) / "runs" / run_id
    model.save(folder / "model")
    vocab.save(folder / "model" / "vocabulary.json")
    vocab.save(folder / "vocabulary.json")
    seen = to_interactions(ratings, vocab).to_csr()
    top = recommend_top_n(model, seen, top_n, n_threads=n_threads)
    table = build_table(top, vocab, movies, model, run_id=run_id, generated_at=generated_at)
    staging = staging_dir(data_dir, run_id)
    write_part(table, staging)
    final = promote(staging, run_partition(data_dir, run_id, generated_at))
    if catalog:
        write_catalog(folder, movies, ratings)
    manifest = {
        "run_id": run_id,
        "dataset": "synthetic",
        "model": model.label,
        "top_n": top_n,
        "path": str(final.resolve()),
        "rows": len(table),
        "users": int(table["user_id"].nunique()),
        "generated_at": generated_at.isoformat(),
        "run_folder": str(folder.resolve()),
    }
    write_manifest(data_dir, manifest)
    return manifest


def synth_movies(n_movies: int) -> pd.DataFrame:
    """Canonical movies frame: title without year, year, genres list."""
    genres = ("Action", "Comedy", "Drama", "Sci-Fi", "Romance")
    return pd.DataFrame(
        {
            "movie_id": range(1, n_movies + 1),
            "title": [f"Movie {m}" for m in range(1, n_movies + 1)],
            "year": pd.array([1990 + m % 20 for m in range(1, n_movies + 1)], dtype="Int16"),
            "genres": [[genres[m % 5], genres[(m + 2) % 5]] for m in range(1, n_movies + 1)],
        }
    )


def fit_vocab(ratings: pd.DataFrame) -> IdVocabulary:
    return fit_vocabulary(ratings)
