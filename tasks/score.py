"""Stage 9: top-N of every user over every movie they have not rated."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from recsys_core.encoding import IdVocabulary
from recsys_core.interactions import to_interactions
from recsys_core.models.base import Recommender
from recsys_core.scoring import TopN, recommend_top_n
from tasks.artifacts import logger


@task(name="score")
def score_users(model: Recommender, ratings: pd.DataFrame, vocab: IdVocabulary, top_n: int, memory_budget_mb: int = 2048) -> TopN:
    """Seen movies come from every cleaned rating, so no one is offered what they rated."""
    seen = to_interactions(ratings, vocab).to_csr()
    progress_id = create_progress_artifact(progress=0.0, description="scoring users")
    last = [-1.0]

    def report(done: int, total: int) -> None:
        pct = 100.0 * done / total
        if pct - last[0] >= 5 or done == total:
            last[0] = pct
            update_progress_artifact(progress_id, progress=pct)

    top = recommend_top_n(model, seen, top_n, memory_budget_bytes=memory_budget_mb * 1024**2, progress=report)
    logger().info("scored %s users x %s movies", f"{vocab.n_users:,}", f"{vocab.n_movies:,}")
    return top
