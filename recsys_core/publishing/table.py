"""Publish the top-N table: write to staging, let the caller validate, then promote atomically.

Layout under ``<data_dir>/recommendations/``:
  dt=YYYY-MM-DD/run_id=<id>/part-00000.parquet   one folder per published run of that night
  dt=YYYY-MM-DD/_night.json                      the night's current run (publishing/nights.py)
  _staging/run_id=<id>/                          work in progress (ignored by dataset readers)
  _latest.json                                   the manifest of the newest night published
A run folder appears by one ``rename`` and the manifest by one ``os.replace``, so a reader
sees the previous run or the new one, never a mix, and a failed run leaves both untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from recsys_core.atomic import write_json_atomic
from recsys_core.data.schema import RECOMMENDATIONS_SCHEMA
from recsys_core.errors import ManifestError, PublishError
from recsys_core.memory import release_unused_memory
from recsys_core.models.base import Recommender
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.serving.topn import TopN

MANIFEST = "_latest.json"


def recommendations_root(data_dir: Path) -> Path:
    return Path(data_dir) / "recommendations"


def run_partition(data_dir: Path, run_id: str, night: date) -> Path:
    """Hive-style folder of one run: dt=<the night, as_of>/run_id=<id>."""
    return recommendations_root(data_dir) / f"dt={night:%Y-%m-%d}" / f"run_id={run_id}"


def staging_dir(data_dir: Path, run_id: str) -> Path:
    return recommendations_root(data_dir) / "_staging" / f"run_id={run_id}"


def build_table(
    top: TopN,
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    model: Recommender,
    *,
    run_id: str,
    generated_at: datetime,
) -> pd.DataFrame:
    """Long format, one row per (user, rank); padding of short lists is dropped."""
    n = top.movie_idx.shape[1]
    valid = top.valid().ravel()
    user_idx = np.repeat(top.user_idx, n)[valid]
    movie_idx = top.movie_idx.ravel()[valid]
    movie_ids = vocab.decode_movies(movie_idx)
    titles = movies.set_index("movie_id")["title"].reindex(movie_ids).to_numpy()
    predicted = model.predict(user_idx, movie_idx) if model.predicts_ratings else None
    return _frame(
        vocab.decode_users(user_idx),
        np.tile(np.arange(1, n + 1, dtype=np.int16), len(top.user_idx))[valid],
        movie_ids,
        titles,
        top.scores.ravel()[valid],
        predicted,
        model.label,
        run_id,
        generated_at,
    )


def _frame(
    user_ids: np.ndarray,
    ranks: np.ndarray,
    movie_ids: np.ndarray,
    titles: np.ndarray,
    scores: np.ndarray,
    predicted: np.ndarray | None,
    label: str,
    run_id: str,
    generated_at: datetime,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": user_ids.astype(np.int64),
            "rank": ranks,
            "movie_id": movie_ids.astype(np.int64),
            "title": pd.array(titles, dtype="string"),
            "score": scores.astype(np.float32),
            "predicted_rating": pd.array(predicted, dtype="Float32")
            if predicted is not None
            else pd.array([None] * len(movie_ids), dtype="Float32"),
            "model": label,
            "run_id": run_id,
            "generated_at": pd.Timestamp(generated_at).tz_convert("UTC").as_unit("us"),
        }
    )


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """Cast to the contract schema (types, nullability, schema-version metadata)."""
    return pa.Table.from_pandas(df, schema=RECOMMENDATIONS_SCHEMA, preserve_index=False)


def write_part(df: pd.DataFrame, folder: Path, part: int = 0) -> Path:
    """Write one Parquet file of the table into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part:05d}.parquet"
    pq.write_table(to_arrow(df), path, compression="zstd")
    return path


BATCH_USERS = 100_000  # users per Arrow batch / Parquet row group when a shard is written in pieces


def movie_titles(vocab: IdVocabulary, movies: pd.DataFrame) -> pa.Array:
    """Titles by movie index (null where the catalogue has none), as one Arrow string array."""
    titles = movies.set_index("movie_id")["title"].reindex(vocab.movie_ids)
    return pa.array(titles.to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def table_schema(model: Recommender, run_id: str, generated_at: datetime) -> pa.Schema:
    """The contract schema with the pandas metadata ``write_part`` stores, so a part written in
    batches reads back (``read_table``) exactly like one written from a DataFrame."""
    one = np.zeros(1, np.int64)
    predicted = np.zeros(1, np.float32) if model.predicts_ratings else None
    template = _frame(one, np.ones(1, np.int16), one, np.array(["t"], object), np.zeros(1), predicted, model.label,
                      run_id, generated_at)  # fmt: skip
    return to_arrow(template).schema


def iter_table_batches(
    top: TopN,
    vocab: IdVocabulary,
    titles: pa.Array,
    model: Recommender,
    *,
    run_id: str,
    generated_at: datetime,
    batch_users: int = BATCH_USERS,
) -> Iterator[pa.RecordBatch]:
    """``build_table``'s rows as Arrow batches of ``batch_users`` users, built from the arrays:
    no pandas frame and no Python string per row (titles are taken from ``movie_titles``)."""
    schema = table_schema(model, run_id, generated_at)
    n = top.movie_idx.shape[1]
    stamp = pd.Timestamp(generated_at).tz_convert("UTC").value // 1000  # ns -> us
    label, run = pa.array([model.label], pa.string()), pa.array([run_id], pa.string())
    for start in range(0, len(top.user_idx), batch_users):
        users = top.user_idx[start : start + batch_users]
        movie_block = top.movie_idx[start : start + batch_users]
        valid = (movie_block >= 0).ravel()
        user_idx = np.repeat(users, n)[valid]
        movie_idx = movie_block.ravel()[valid]
        rows = len(movie_idx)
        if not rows:
            continue
        zeros = np.zeros(rows, np.int32)
        predicted = model.predict(user_idx, movie_idx) if model.predicts_ratings else None
        columns = [
            pa.array(vocab.decode_users(user_idx).astype(np.int64)),
            pa.array(np.tile(np.arange(1, n + 1, dtype=np.int16), len(users))[valid]),
            pa.array(vocab.decode_movies(movie_idx).astype(np.int64)),
            titles.take(pa.array(movie_idx)),
            pa.array(top.scores[start : start + batch_users].ravel()[valid].astype(np.float32)),
            pa.array(np.asarray(predicted, np.float32), from_pandas=True)
            if predicted is not None
            else pa.nulls(rows, pa.float32()),
            label.take(pa.array(zeros)),
            run.take(pa.array(zeros)),
            pa.array(np.full(rows, stamp, np.int64), type=pa.timestamp("us", tz="UTC")),
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def write_batches(batches: Iterable[pa.RecordBatch], schema: pa.Schema, folder: Path, part: int = 0) -> Path | None:
    """Write batches as one Parquet part (one row group each); None, and no file, without rows."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part:05d}.parquet"
    writer = None
    try:
        for batch in batches:
            if writer is None:
                writer = pq.ParquetWriter(path, schema, compression="zstd")
            writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
        release_unused_memory()
    return path if writer is not None else None


def read_table(folder: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read every part of one run folder (only ``columns`` when given: a 32M-rating night's
    table with its titles costs gigabytes as pandas objects, its scores a few megabytes)."""
    files = sorted(Path(folder).glob("part-*.parquet"))
    if not files:
        raise PublishError(f"No part-*.parquet files in {folder}.")
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files]).to_pandas()


def promote(staging: Path, final: Path) -> Path:
    """Make a validated staging folder visible with one atomic rename."""
    if final.exists():
        raise PublishError(f"{final} already exists; a run id must be published only once.")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, final)
    return final


def discard_staging(data_dir: Path, run_id: str) -> None:
    """Remove a run's staging folder (after a failure, or leftovers of a killed run)."""
    shutil.rmtree(staging_dir(data_dir, run_id), ignore_errors=True)


def manifest_path(data_dir: Path) -> Path:
    return recommendations_root(data_dir) / MANIFEST


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The manifest, None when nothing was published; ManifestError when it is unreadable."""
    path = manifest_path(data_dir)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"The manifest {path} is unreadable (not valid JSON: {exc}). The next `recsys run` "
            "replaces it; to keep serving the previous table meanwhile, restore the file from a "
            "backup or rewrite it from a run folder's table path."
        ) from None
    if not isinstance(manifest, dict):
        raise ManifestError(
            f"The manifest {path} is unreadable (not a JSON object). The next `recsys run` replaces it."
        )
    return manifest


def require_table_files(manifest: dict[str, Any], data_dir: Path) -> Path:
    """The run folder the manifest names, after checking its Parquet parts are there."""
    folder = Path(manifest.get("path") or "")
    if not manifest.get("path") or not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        raise PublishError(
            f"The manifest {manifest_path(data_dir)} names run {manifest.get('run_id')} at {folder}, "
            "but that folder has no part-*.parquet files (deleted or moved?). Restore the folder, "
            "or run `recsys run` to publish a new table."
        )
    return folder


STALE_STAGING_S = 24 * 3600


def is_stale_staging(data_dir: Path, staging: Path, now: float | None = None) -> bool:
    """Staging whose run is gone or failed, or untouched for a day (a run killed mid-publish)."""
    run_folder = Path(data_dir) / "runs" / staging.name.removeprefix("run_id=")
    try:
        if not run_folder.is_dir() or (run_folder / "failure.json").is_file():
            return staging.exists()
        return staging.stat().st_mtime < (now or time.time()) - STALE_STAGING_S
    except FileNotFoundError:  # removed meanwhile (a concurrent run's rollback): nothing to sweep
        return False


def sweep_stale_staging(data_dir: Path) -> list[str]:
    """Remove staging folders left by killed or failed runs; a running run's staging is kept.

    Under the publish lock, so no run promotes a folder while it is being judged; skipped while
    another run is publishing.
    """
    staging_root = recommendations_root(data_dir) / "_staging"
    if not staging_root.is_dir():
        return []
    try:
        with publish_lock(data_dir, wait=False):
            stale = sorted(p.name for p in staging_root.iterdir() if is_stale_staging(data_dir, p))
            for name in stale:
                target = staging_root / name
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
            return stale
    except PublishError:
        return []


def write_manifest(data_dir: Path, manifest: dict[str, Any]) -> Path:
    path = recommendations_root(data_dir) / MANIFEST
    write_json_atomic(path, manifest)
    return path


def read_latest(data_dir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The manifest and table of the last published run."""
    manifest = read_manifest(data_dir)
    if manifest is None:
        raise PublishError(
            f"No published run under {recommendations_root(data_dir)} (no {MANIFEST}). "
            "Run `recsys run` first, or pass --data-dir where a run published."
        )
    return manifest, read_table(require_table_files(manifest, data_dir))


@contextlib.contextmanager
def publish_lock(data_dir: Path, *, wait: bool = True) -> Iterator[None]:
    """One publisher at a time per data dir; a second run waits (or fails when wait=False)."""
    root = recommendations_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / ".publish.lock")
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        raise PublishError(f"Another run is publishing into {root}; try again when it finishes.") from None
    try:
        yield
    finally:
        lock.release()
