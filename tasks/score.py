"""Stage 9: top-N of every user over every movie they have not rated, in parallel shards.

Users are split into shards; each shard is one mapped task run, so shards run on the
flow's task runner: threads locally, or an existing Dask cluster (``dask_address``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from prefect import flow, task, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from recsys_core.encoding import IdVocabulary
from recsys_core.interactions import to_interactions
from recsys_core.models.base import Recommender
from recsys_core.scorers import to_portable_scorer
from recsys_core.scoring import TopN, choose_n_threads, recommend_top_n, shard_users
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage


@task(name="score-shard", on_failure=[remember_failed_stage])
def score_shard(
    scorer: Any, seen: sp.csr_matrix, users: np.ndarray, top_n: int, memory_budget_mb: int, n_threads: int | None
) -> TopN:
    """One shard of users; the memory budget is per shard."""
    return recommend_top_n(
        scorer, seen, top_n, user_idx=users, memory_budget_bytes=memory_budget_mb * 1024**2, n_threads=n_threads
    )


@flow(name="score-users")
def score_in_shards(
    scorer: Any, seen: sp.csr_matrix, top_n: int, n_shards: int, memory_budget_mb: int, threads_per_shard: int | None
) -> list[TopN]:
    """Map ``score_shard`` over the shards and gather them in shard order."""
    shards = shard_users(seen.shape[0], n_shards)
    progress_id = create_progress_artifact(
        progress=0.0, description=f"scoring {seen.shape[0]:,} users in {n_shards} shard(s)"
    )
    futures = score_shard.map(unmapped(scorer), unmapped(seen), shards, top_n, memory_budget_mb, threads_per_shard)
    results: list[TopN] = []
    for i, future in enumerate(futures):
        results.append(future.result())
        update_progress_artifact(progress_id, progress=100.0 * (i + 1) / len(futures))
    return results


@task(name="prepare-scoring", on_failure=[remember_failed_stage])
def prepare_scoring(model: Recommender, ratings: pd.DataFrame, vocab: IdVocabulary) -> tuple[Any, sp.csr_matrix]:
    """Seen movies come from every cleaned rating, so no one is offered what they rated."""
    seen = to_interactions(ratings, vocab).to_csr()
    logger().info(
        "scoring %s users x %s movies (%s seen pairs masked)",
        f"{vocab.n_users:,}",
        f"{vocab.n_movies:,}",
        f"{seen.nnz:,}",
    )
    return to_portable_scorer(model), seen


def threads_per_shard(n_shards: int, dask_address: str | None) -> int | None:
    """Local shards share this machine's cores; on Dask each worker uses its own (None)."""
    if dask_address:
        return None
    return max(1, choose_n_threads() // max(1, n_shards))


def score_task_runner(dask_address: str | None, n_shards: int) -> Any:
    """Threads locally; prefect-dask's DaskTaskRunner against an existing cluster."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=max(1, n_shards))
