"""Stage 10: write the table to staging, validate it, promote it, replace _latest.json."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task

from data_checks.published import check_recommendations, raise_if_invalid
from recsys_core.download import FetchedArchive
from recsys_core.encoding import IdVocabulary
from recsys_core.evaluation import METRIC_KEYS
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
from tasks.artifacts import logger, publish_markdown


@task(name="publish")
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
    with publish_lock(run.data_dir):
        staging = staging_dir(run.data_dir, run.run_id)
        discard_staging(run.data_dir, run.run_id)
        try:
            for part, top in enumerate(tops):  # one Parquet file per scoring shard
                table = build_table(top, vocab, movies, model, run_id=run.run_id, generated_at=run.started_at)
                write_part(table, staging, part)
            written = read_table(staging)
            report = check_recommendations(
                written, ratings[["user_id", "movie_id"]], top_n=top_n, n_users=vocab.n_users, n_movies=vocab.n_movies
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
