"""The scoring sub-flow: top-N of every user over every unseen movie, in parallel shards.

Users are split into shards; each shard is one mapped ``score-shard`` task run, so shards run
on this sub-flow's task runner: threads locally, or an existing Dask cluster (``dask_address``).
"""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp
from prefect import flow, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from recsys_core.errors import RecsysError
from recsys_core.serving.topn import TopN, shard_users
from tasks.score import score_shard


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


def score_task_runner(dask_address: str | None, n_shards: int) -> Any:
    """Threads locally; prefect-dask's DaskTaskRunner against an existing cluster."""
    if dask_address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise RecsysError(
                f"--dask-address {dask_address} needs prefect-dask: pip install -e '.[dask]' (on this machine "
                "and on every Dask worker), or drop --dask-address to score with local threads."
            ) from None
        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=max(1, n_shards))
