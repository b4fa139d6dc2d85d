"""The three steps of publishing a night: stage the table, (the caller checks it), commit it.

The flow runs them as tasks inside a Prefect transaction: a failing check rolls the staging
back, and only ``commit_table`` touches what readers see (one rename, one ``os.replace`` of the
manifest, under the publish lock). Checking lives in ``data_checks``; this module never
imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.data.schema import RECOMMENDATIONS_SCHEMA_VERSION
from recsys_core.evaluation.evaluate import METRIC_KEYS
from recsys_core.models.base import Recommender
from recsys_core.nights.cutoff import NightData
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.publishing.nights import point_night
from recsys_core.publishing.table import (
    discard_staging,
    iter_table_batches,
    movie_titles,
    promote,
    publish_lock,
    run_partition,
    staging_dir,
    table_schema,
    write_batches,
    write_part,
)
from recsys_core.runs.context import RunContext
from recsys_core.serving.fallback import CatalogueGaps, build_fallback_table, find_catalogue_gaps
from recsys_core.serving.topn import TopN


@dataclass(frozen=True)
class StagedTable:
    """A run's table written to staging, not yet visible to readers."""

    path: Path
    run_id: str
    rows: int
    users: int
    gaps: CatalogueGaps


def stage_table(
    tops: list[TopN],
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    ratings: pd.DataFrame,
    model: Recommender,
    run: RunContext,
    top_n: int,
) -> StagedTable:
    """One Parquet part per scoring shard, plus the fallback lists of users the model cannot serve.

    Each shard's part is written in Arrow batches of users straight from the top-N arrays (no
    pandas frame of the shard, titles taken from one Arrow array), so staging holds one batch at a
    time. Rows and users are counted from the arrays written, so the table is read back only once,
    by its check.
    """
    staging = staging_dir(run.data_dir, run.run_id)
    discard_staging(run.data_dir, run.run_id)
    gaps = find_catalogue_gaps(ratings, movies, vocab)
    titles = movie_titles(vocab, movies)
    schema = table_schema(model, run.run_id, run.started_at)
    rows = users = part = 0
    for top in tops:
        batches = iter_table_batches(top, vocab, titles, model, run_id=run.run_id, generated_at=run.started_at)
        if write_batches(batches, schema, staging, part) is None:
            continue
        valid = top.valid()
        # shards hold disjoint users, and fallback users have no model rows: counts add up
        rows, users, part = rows + int(valid.sum()), users + int(valid.any(axis=1).sum()), part + 1
    fallback = build_fallback_table(gaps, ratings, movies, top_n, run_id=run.run_id, generated_at=run.started_at)
    if len(fallback):
        write_part(fallback, staging, part)
        rows, users = rows + len(fallback), users + int(fallback["user_id"].nunique())
    return StagedTable(staging, run.run_id, rows, users, gaps)


def build_manifest(
    staged: StagedTable,
    final: Path,
    *,
    run: RunContext,
    dataset: str,
    model_label: str,
    top_n: int,
    evaluation: dict[str, Any],
    archive_sha256: str,
    scale: dict[str, Any] | None,
    night: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`_latest.json` / `_night.json`: what downstream readers need to find and judge the table.

    ``night`` adds the night's fields: ``cutoff``, ``new_since_previous``, ``online_metrics``,
    ``gate`` and the fingerprints a backfill compares to skip a night already published.
    """
    metrics = evaluation["metrics"]
    return {
        "run_id": run.run_id,
        "as_of": run.night.isoformat(),
        "dataset": dataset,
        "model": model_label,
        "top_n": top_n,
        "path": str(Path(final).resolve()),
        "rows": staged.rows,
        "users": staged.users,
        "generated_at": run.started_at.isoformat(),
        "metrics": {
            **{key: metrics.get(key) for key in (*METRIC_KEYS, "k")},
            **({"explore": metrics["explore"]} if metrics.get("explore") else {}),
        },
        "split": evaluation["split"],
        "baselines": {n: {m: b.get(m) for m in METRIC_KEYS} for n, b in evaluation["baselines"].items()},
        "schema_version": RECOMMENDATIONS_SCHEMA_VERSION,
        "archive_sha256": archive_sha256,
        "run_folder": str(run.folder.resolve()),
        "catalogue_gaps": staged.gaps.counts(),
        "scale": scale,
        **(night or {}),
    }


def night_fields(
    night: NightData,
    previous: dict[str, Any],
    gate: dict[str, Any] | None,
    *,
    config_fingerprint: str,
    input_fingerprint: str,
    training_fingerprint: str | None = None,
    reused_from: str | None = None,
    refit: dict[str, Any] | None = None,
    trend: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The night's part of the manifest: its cutoff, what is new, how the last lists did, the gate,
    how the published model was trained (``refit``: mode and seconds; None without a refit) and the
    night's trend choice (``serving/trend.py``: weight, window, validation NDCG with and without)."""
    summary = night.summary()
    return {
        "cutoff": summary["cutoff"],
        "cutoff_ts": night.cutoff,
        "release_span": [summary["release_first_rating"], summary["release_last_rating"]],
        "nothing_new": night.nothing_new,
        "new_since_previous": previous.get("new_since_previous"),
        "online_metrics": previous.get("online_metrics"),
        "gate": gate,
        "config_fingerprint": config_fingerprint,
        "input_fingerprint": input_fingerprint,
        "training_fingerprint": training_fingerprint,
        "model_reused_from": reused_from,
        "refit": refit,
        "trend": trend,
    }


def commit_table(staged: StagedTable, run: RunContext, manifest_fields: dict[str, Any]) -> dict[str, Any]:
    """Make the checked table visible (one rename) and point its night, and ``_latest.json`` when it
    is the newest night, at it (one replace each). ``latest`` in the result says which."""
    with publish_lock(run.data_dir):
        final = promote(staged.path, run_partition(run.data_dir, run.run_id, run.night))
        manifest = build_manifest(staged, final, run=run, **manifest_fields)
        moved = point_night(run.data_dir, manifest)
    return {**manifest, "latest": moved}
