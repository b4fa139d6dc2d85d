"""Follow ``_latest.json`` and hold one immutable snapshot per published run.

A snapshot holds everything a request needs (the user index, the catalogue, the fold-in
weights), built in a background thread while the previous one keeps answering. It is then
swapped in with one attribute assignment, so a request that took the snapshot at its start
answers wholly from one run, and a new night is served within ``poll_interval`` plus the load
time (under a second at ml-100k size) without a restart. A run that fails to load leaves the
previous snapshot in place; ``last_error`` says why.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from recsys_core.prep.encoding import IdVocabulary
from recsys_core.publishing.table import MANIFEST, read_manifest, recommendations_root
from recsys_core.serving.catalog import fallback_catalog, popular_movie_ids, read_catalog
from recsys_core.serving.foldin import EaseFoldIn, FoldIn, load_foldin
from recsys_core.serving.neighbours import Neighbours, build_neighbours
from recsys_core.serving.similarity import MOVIES_FILE
from recsys_core.serving.user_index import UserIndex, build_user_index

log = logging.getLogger("recsys_api")


@dataclass(frozen=True)
class MovieInfo:
    title: str
    year: int | None
    genres: list[str]


@dataclass(frozen=True)
class Snapshot:
    """One published run, ready to answer; never mutated after it is built."""

    run_id: str
    manifest: dict[str, Any]
    index: UserIndex
    vocab: IdVocabulary
    movies: dict[int, MovieInfo]
    popular: np.ndarray  # every rated movie id, most rated first
    popular_counts: dict[int, int]
    search_order: list[tuple[int, str]]  # (movie_id, lower-case title), most rated first
    foldin: FoldIn
    neighbours: Neighbours | None
    rating_min: float
    rating_max: float
    popularity_note: str

    @property
    def top_n(self) -> int:
        return int(self.manifest.get("top_n") or max(1, int(np.diff(self.index.starts).max(initial=1))))

    def movie_idx(self, movie_id: int) -> int:
        """Vocabulary index of a movie, -1 when the model has never seen it."""
        ids = self.vocab.movie_ids
        pos = int(np.searchsorted(ids, movie_id))
        return pos if pos < len(ids) and ids[pos] == movie_id else -1

    def user_idx(self, user_id: int) -> int:
        ids = self.vocab.user_ids
        pos = int(np.searchsorted(ids, user_id))
        return pos if pos < len(ids) and ids[pos] == user_id else -1


def run_folder_of(data_dir: Path, manifest: dict[str, Any]) -> Path:
    return Path(manifest.get("run_folder") or Path(data_dir) / "runs" / manifest["run_id"])


def load_snapshot(data_dir: Path, manifest: dict[str, Any]) -> Snapshot:
    """Build the snapshot of the run a manifest names (seconds at ml-25m size; done off-request)."""
    folder = run_folder_of(data_dir, manifest)
    table = Path(manifest["path"])
    index = build_user_index(table)
    model_dir = folder / "model"
    model, foldin = load_foldin(model_dir)
    vocab_file = model_dir / "vocabulary.json"
    vocab = IdVocabulary.load(vocab_file if vocab_file.is_file() else folder / "vocabulary.json")
    catalog, note = read_or_rebuild_catalog(folder, table, foldin, vocab)
    popular = popular_movie_ids(catalog, len(catalog))
    counts = dict(zip(catalog["movie_id"].astype(int), catalog["n_ratings"].astype(int), strict=True))
    movies = {
        int(r.movie_id): MovieInfo(str(r.title), None if pd.isna(r.year) else int(r.year), [str(g) for g in r.genres])
        for r in catalog.itertuples(index=False)
    }
    ranked = [int(m) for m in popular] + sorted(set(movies) - {int(m) for m in popular})
    return Snapshot(
        run_id=str(manifest["run_id"]),
        manifest=manifest,
        index=index,
        vocab=vocab,
        movies=movies,
        popular=popular,
        popular_counts=counts,
        search_order=[(m, movies[m].title.lower()) for m in ranked],
        foldin=foldin,
        neighbours=build_neighbours(model, foldin),
        rating_min=float(model.rating_min),
        rating_max=float(model.rating_max),
        popularity_note=note,
    )


def read_or_rebuild_catalog(folder: Path, table: Path, foldin: FoldIn, vocab: IdVocabulary) -> tuple[pd.DataFrame, str]:
    """The run's catalog.parquet; for older runs, titles and counts from what the folder holds."""
    catalog = read_catalog(folder)
    if catalog is not None:
        return catalog, "the night's most rated movies"
    titles_file = folder / MOVIES_FILE
    if titles_file.is_file():
        titles = pd.read_parquet(titles_file, columns=["movie_id", "title"])
    else:
        titles = ds.dataset(str(table), format="parquet").to_table(columns=["movie_id", "title"]).to_pandas()
    if isinstance(foldin, EaseFoldIn) and foldin.rows is not None:
        counts = np.asarray((foldin.rows != 0).sum(axis=0)).ravel()
        return fallback_catalog(titles, pd.Series(counts, index=vocab.movie_ids)), "the night's most rated movies"
    recommended = ds.dataset(str(table), format="parquet").to_table(columns=["movie_id"]).to_pandas()
    counts = recommended["movie_id"].value_counts()
    return fallback_catalog(titles, counts), "the night's most recommended movies (this run has no rating counts)"


class SnapshotStore:
    """Holds the current snapshot; ``refresh`` loads a newly published run and swaps it in."""

    def __init__(self, data_dir: Path, poll_interval: float = 1.0):
        self.data_dir = Path(data_dir)
        self.poll_interval = poll_interval
        self.last_error: str | None = None
        self._snapshot: Snapshot | None = None
        self._seen: tuple[int, int, int] | None = None  # manifest (mtime_ns, size, inode) last handled
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def manifest_path(self) -> Path:
        return recommendations_root(self.data_dir) / MANIFEST

    @property
    def current(self) -> Snapshot | None:
        """The snapshot to answer one whole request from (take it once per request)."""
        return self._snapshot

    def refresh(self) -> bool:
        """Load and swap in the run ``_latest.json`` names if it changed; True when swapped."""
        with self._refresh_lock:
            try:
                st = self.manifest_path.stat()
            except FileNotFoundError:
                return False
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            if signature == self._seen:
                return False
            try:
                manifest = read_manifest(self.data_dir)
                current = self._snapshot
                if manifest is None or (current is not None and manifest["run_id"] == current.run_id):
                    self._seen = signature
                    return False
                snapshot = load_snapshot(self.data_dir, manifest)
            except Exception as exc:  # noqa: BLE001 - keep answering from the previous run
                self._seen = signature  # retried when the manifest changes again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("could not load the published run: %s", self.last_error)
                return False
            self._snapshot = snapshot  # the swap: one reference assignment
            self._seen = signature
            self.last_error = None
            log.info("serving run %s (%s rows)", snapshot.run_id, f"{snapshot.index.n_rows:,}")
            return True

    def start(self) -> None:
        """Poll the manifest every ``poll_interval`` seconds in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="recsys-api-store", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self.refresh()
