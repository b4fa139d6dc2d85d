"""Nearest movies by the learned embedding of the published model (`recsys similar`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.errors import ModelError, RecsysError
from recsys_core.models.base import Recommender
from recsys_core.prep.encoding import IdVocabulary

MOVIES_FILE = "movies.parquet"
EMBEDDING_FILE = "movie_embedding.npz"


@dataclass(frozen=True)
class PublishedModel:
    model: Recommender
    vocab: IdVocabulary
    titles: dict[int, str]
    run_id: str


def movie_embedding(model: Recommender) -> np.ndarray | None:
    """Movie vectors from ``factors()``, minus columns constant over all movies.

    Dot-product models append a column of ones (for the user bias) to their movie factors; it
    says nothing about a movie and would pull every cosine towards 1, so it is dropped. Fewer
    than two informative columns (popularity, global mean) means there is no embedding.
    """
    f = model.factors()
    if f is None:
        return None
    movies = np.asarray(f[1], dtype=np.float64)
    varying = movies.std(axis=0) > 1e-9 if len(movies) > 1 else np.ones(movies.shape[1], bool)
    movies = movies[:, varying]
    return movies if movies.shape[1] >= 2 else None


def nearest_movies(embedding: np.ndarray, movie_idx: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``n`` movies closest to ``movie_idx`` (itself excluded)."""
    norms = np.linalg.norm(embedding, axis=1)
    norms[norms == 0] = 1.0
    unit = embedding / norms[:, None]
    sims = unit @ unit[movie_idx]
    sims[movie_idx] = -np.inf
    n = min(n, len(sims) - 1)
    top = np.argpartition(-sims, n - 1)[:n] if n > 0 else np.array([], dtype=np.int64)
    top = top[np.argsort(-sims[top], kind="stable")]
    return top, sims[top].astype(np.float32)


def load_published_model(run_folder: Path, run_id: str, table_titles: pd.DataFrame | None = None) -> PublishedModel:
    """The model, vocabulary and titles saved in a run folder by the nightly flow."""
    from recsys_core.models import load_model

    run_folder = Path(run_folder)
    model_dir = run_folder / "model"
    if not model_dir.is_dir():
        raise ModelError(f"No saved model in {model_dir}; the run may have been pruned by retention.")
    vocab_file = model_dir / "vocabulary.json"
    vocab = IdVocabulary.load(vocab_file if vocab_file.is_file() else run_folder / "vocabulary.json")
    return PublishedModel(load_model(model_dir), vocab, read_titles(run_folder, table_titles), run_id)


def read_titles(run_folder: Path, fallback: pd.DataFrame | None = None) -> dict[int, str]:
    """Titles from the run's ``movies.parquet``, else from the published table's rows."""
    path = Path(run_folder) / MOVIES_FILE
    frame = pd.read_parquet(path, columns=["movie_id", "title"]) if path.is_file() else fallback
    if frame is None or frame.empty:
        return {}
    return dict(zip(frame["movie_id"].astype(int), frame["title"].astype(str), strict=True))


def similar_movies(published: PublishedModel, movie_id: int, n: int = 10) -> pd.DataFrame:
    """movie_id, title, similarity of the nearest movies; clear errors when it cannot answer."""
    embedding = movie_embedding(published.model)
    if embedding is None:
        raise RecsysError(
            f"The published model {published.model.label} (run {published.run_id}) has no movie "
            "embedding, so it cannot find similar movies. Publish a factor model (e.g. --model biased_mf)."
        )
    known = np.flatnonzero(published.vocab.movie_ids == movie_id)
    if not len(known):
        raise RecsysError(f"Movie {movie_id} is not in the model of run {published.run_id} (no ratings for it).")
    idx, sims = nearest_movies(embedding, int(known[0]), n)
    ids = published.vocab.decode_movies(idx).astype(np.int64)
    frame = pd.DataFrame(
        {
            "movie_id": ids,
            "title": [published.titles.get(int(i), f"movie {i}") for i in ids],
            "similarity": sims,
        }
    )
    frame.attrs["query_title"] = published.titles.get(int(movie_id))
    return frame


def write_movie_embedding(run_folder: Path, model: Recommender, vocab: IdVocabulary) -> Path | None:
    """Save the published model's movie vectors beside it, so `recsys similar` needs no TensorFlow."""
    embedding = movie_embedding(model)
    if embedding is None:
        return None
    path = Path(run_folder) / EMBEDDING_FILE
    np.savez(path, movie_ids=vocab.movie_ids.astype(np.int64), embedding=embedding.astype(np.float32))
    return path


def known_movie_ids(run_folder: Path) -> np.ndarray | None:
    """Movie ids the run's model knows (from the saved vocabulary), read without loading the model."""
    for candidate in (Path(run_folder) / "model" / "vocabulary.json", Path(run_folder) / "vocabulary.json"):
        if candidate.is_file():
            return IdVocabulary.load(candidate).movie_ids
    return None


def similar_from_run(run_folder: Path, run_id: str, movie_id: int, n: int, table_titles: pd.DataFrame) -> pd.DataFrame:
    """Nearest movies for ``movie_id``: from the saved embedding (fast), else by loading the model."""
    run_folder = Path(run_folder)
    known = known_movie_ids(run_folder)
    if known is not None and not np.isin(movie_id, known):
        raise RecsysError(f"Movie {movie_id} is not in the model of run {run_id} (no ratings for it).")
    path = run_folder / EMBEDDING_FILE
    if not path.is_file():
        return similar_movies(load_published_model(run_folder, run_id, table_titles), movie_id, n)
    with np.load(path) as saved:
        movie_ids, embedding = saved["movie_ids"], saved["embedding"]
    idx, sims = nearest_movies(embedding, int(np.flatnonzero(movie_ids == movie_id)[0]), n)
    titles = read_titles(run_folder, table_titles)
    ids = movie_ids[idx].astype(np.int64)
    frame = pd.DataFrame(
        {"movie_id": ids, "title": [titles.get(int(i), f"movie {i}") for i in ids], "similarity": sims}
    )
    frame.attrs["query_title"] = titles.get(int(movie_id))
    return frame
