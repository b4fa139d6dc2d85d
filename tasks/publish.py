"""Stage 10: write the table to staging, validate it, promote it, replace _latest.json."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task

from data_checks.published import check_recommendations, raise_if_invalid
from recsys_core.download import FetchedArchive
from recsys_core.encoding import IdVocabulary
from recsys_core.evaluation import METRIC_KEYS
from recsys_core.failures import converts_storage_errors
from recsys_core.fallback import build_fallback_table, find_catalogue_gaps
from recsys_core.models.base import Recommender
from recsys_core.publishing import (
    build_table,
    discard_staging,
    promote,
    publish_lock,
    read_table,
    run_partition,
    staging_dir,
    write_manifest,
    write_part,
)
from recsys_core.runs import RunContext
from recsys_core.schema import RECOMMENDATIONS_SCHEMA_VERSION
from recsys_core.scoring import TopN
from recsys_core.serving.catalog import write_catalog
from recsys_core.similarity import write_movie_embedding
from tasks.artifacts import logger, publish_markdown
from tasks.failure import remember_failed_stage


@task(name="publish", on_failure=[remember_failed_stage])
@converts_storage_errors
def publish_recommendations(
    tops: list[TopN],
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    ratings: pd.DataFrame,
    model: Recommender,
    run: RunContext,
    dataset: str,
    top_n: int,
    evaluation: dict[str, Any],
    archive: FetchedArchive,
) -> dict[str, Any]:
    """Everything before the final rename happens in staging; failure removes staging only.

    ``tops`` are the scoring shards in user order; each becomes ``part-<i>.parquet``.
    """
    write_movie_embedding(run.folder, model, vocab)  # `recsys similar` reads it without TensorFlow
    gaps = find_catalogue_gaps(ratings, movies, vocab)
    if len(gaps.exhausted_user_ids) or len(gaps.unrated_movie_ids):
        logger().info("catalogue gaps: %s", gaps.counts())
    with publish_lock(run.data_dir):
        staging = staging_dir(run.data_dir, run.run_id)
        discard_staging(run.data_dir, run.run_id)
        try:
            for part, top in enumerate(tops):  # one Parquet file per scoring shard
                table = build_table(top, vocab, movies, model, run_id=run.run_id, generated_at=run.started_at)
                write_part(table, staging, part)
            fallback = build_fallback_table(
                gaps, ratings, movies, top_n, run_id=run.run_id, generated_at=run.started_at
            )
            if len(fallback):  # users with every rated movie seen: a list over never-rated movies
                write_part(fallback, staging, len(tops))
            written = read_table(staging)
            report = check_recommendations(
                written,
                ratings[["user_id", "movie_id"]],
                top_n=top_n,
                n_users=vocab.n_users,
                n_movies=vocab.n_movies,
                n_catalogue=vocab.n_movies + len(gaps.unrated_movie_ids),
            )
            raise_if_invalid(report, str(staging))
            final = promote(staging, run_partition(run.data_dir, run.run_id, run.started_at))
        except BaseException:
            discard_staging(run.data_dir, run.run_id)
            raise
        metrics = evaluation["metrics"]
        manifest = {
            "run_id": run.run_id,
            "dataset": dataset,
            "model": model.label,
            "top_n": top_n,
            "path": str(final.resolve()),
            "rows": len(written),
            "users": int(written["user_id"].nunique()),
            "generated_at": run.started_at.isoformat(),
            "metrics": {key: metrics.get(key) for key in (*METRIC_KEYS, "k")},
            "split": evaluation["split"],
            "baselines": {n: {m: b.get(m) for m in METRIC_KEYS} for n, b in evaluation["baselines"].items()},
            "schema_version": RECOMMENDATIONS_SCHEMA_VERSION,
            "archive_sha256": archive.sha256,
            "run_folder": str(run.folder.resolve()),
            "catalogue_gaps": gaps.counts(),
        }
        write_catalog(run.folder, movies, ratings)  # titles, years, genres, counts for the API
        write_manifest(run.data_dir, manifest)
    publish_markdown(
        "published-table",
        f"## Published {manifest['rows']:,} rows for {manifest['users']:,} users\n\n"
        f"- table: `{final}`\n- model: `{model.label}`\n- run: `{run.run_id}`\n\n" + report.to_markdown(),
        "Where the new table is and its checks",
    )
    logger().info("published %s rows to %s", f"{manifest['rows']:,}", final)
    return manifest
