"""Stage 10: stage the table, check it with its suite, commit it (inside a Prefect transaction).

The flow wraps the three tasks in ``transaction()``: when the check (or the commit) fails, the
staging task's rollback hook removes the staged folder, and readers never saw any of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect.transactions import Transaction, get_transaction

from data_checks.published import check_recommendations, raise_if_invalid
from recsys_core.config import NightlyConfig
from recsys_core.data.archive_cache import FetchedArchive
from recsys_core.models.base import Recommender
from recsys_core.nights.cutoff import NightData
from recsys_core.pipeline import Trained
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.publishing import steps
from recsys_core.publishing.steps import StagedTable, commit_table, stage_table
from recsys_core.publishing.table import read_table
from recsys_core.runs.context import RunContext
from recsys_core.runs.failures import converts_storage_errors
from recsys_core.scale import ScaleProfile
from recsys_core.serving.catalog import write_catalog
from recsys_core.serving.similarity import write_movie_embedding
from recsys_core.serving.topn import TopN
from recsys_core.serving.trend import TrendChoice
from tasks.artifacts import logger, publish_markdown
from tasks.stage import stage

STAGING_KEY = "staging"


@stage("stage-table")
@converts_storage_errors
def stage_recommendations(
    tops: list[TopN],
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    ratings: pd.DataFrame,
    model: Recommender,
    run: RunContext,
    top_n: int,
) -> StagedTable:
    """``tops`` are the scoring shards in user order; each becomes ``part-<i>.parquet`` in staging."""
    staged = stage_table(tops, vocab, movies, ratings, model, run, top_n)
    txn = get_transaction()
    if txn is not None:
        txn.set(STAGING_KEY, str(staged.path))
    if len(staged.gaps.exhausted_user_ids) or len(staged.gaps.unrated_movie_ids):
        logger().info("catalogue gaps: %s", staged.gaps.counts())
    return staged


@stage_recommendations.on_rollback
def discard_staged_table(txn: Transaction) -> None:
    """Rollback: the staged folder of a table that failed its check (or its commit) goes."""
    import shutil

    path = txn.get(STAGING_KEY, None)
    if path:
        shutil.rmtree(path, ignore_errors=True)


@stage("check-table")
def check_staged_table(staged: StagedTable, ratings: pd.DataFrame, vocab: IdVocabulary, top_n: int) -> str:
    """The published-table suite on what was staged; raising rolls the staging back."""
    report = check_recommendations(
        read_table(staged.path),
        ratings,  # its user_id and movie_id columns; no 2-column copy of every rating
        top_n=top_n,
        n_users=vocab.n_users,
        n_movies=vocab.n_movies,
        n_catalogue=vocab.n_movies + len(staged.gaps.unrated_movie_ids),
    )
    raise_if_invalid(report, str(staged.path))
    return report.to_markdown()


def night_fields(
    night: NightData,
    previous: dict[str, Any],
    gate: dict[str, Any] | None,
    cfg: NightlyConfig,
    archive: FetchedArchive,
    training_fingerprint: str | None = None,
    reused: dict[str, Any] | None = None,
    refit: Trained | None = None,
    trend: TrendChoice | None = None,
) -> dict[str, Any]:
    """The night's manifest fields; the input fingerprint is the archive's sha256 (the night's data
    is that archive cut at ``as_of``), or, for a log, the fingerprint taken when it was read.
    ``refit`` is the model trained on every rating (None: the candidate, or a reused model whose
    own manifest's ``refit`` is carried over)."""
    return steps.night_fields(
        night,
        previous,
        gate,
        config_fingerprint=cfg.table_fingerprint(),
        input_fingerprint=archive.sha256,
        training_fingerprint=training_fingerprint,
        reused_from=(reused or {}).get("run_id"),
        refit=(reused or {}).get("refit")
        if refit is None
        else {"mode": refit.refit_mode, "seconds": round(refit.seconds, 2)},
        trend=None if trend is None else trend.summary(),
    )


@stage("publish")
@converts_storage_errors
def publish_recommendations(
    staged: StagedTable,
    checks: str,
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    ratings: pd.DataFrame,
    model: Recommender,
    run: RunContext,
    dataset: str,
    top_n: int,
    evaluation: dict[str, Any],
    archive: FetchedArchive,
    scale: ScaleProfile | None = None,
    night: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Serving files first (movie embedding, catalogue), then the table and manifest become visible.

    ``night`` holds the night's manifest fields (``recsys_core.publishing.steps.night_fields``).
    """
    write_movie_embedding(run.folder, model, vocab)  # `recsys similar` reads it without TensorFlow
    write_catalog(run.folder, movies, ratings)  # titles, years, genres, counts for the API
    manifest = commit_table(
        staged,
        run,
        {
            "dataset": dataset,
            "model_label": model.label,
            "top_n": top_n,
            "evaluation": evaluation,
            "archive_sha256": archive.sha256,
            "scale": scale.summary() if scale is not None else None,
            "night": night,
        },
    )
    final = Path(manifest["path"])
    publish_markdown(
        "published-table",
        f"## Published {manifest['rows']:,} rows for {manifest['users']:,} users\n\n"
        f"- table: `{final}`\n- model: `{model.label}`\n- run: `{run.run_id}`\n\n" + checks,
        "Where the new table is and its checks",
    )
    logger().info("published %s rows to %s", f"{manifest['rows']:,}", final)
    if not manifest["latest"]:
        logger().info("night %s published; _latest.json stays at a newer night", manifest["as_of"])
    return manifest
