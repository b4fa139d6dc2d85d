"""Stage 4: merge titles, average duplicate ratings."""

from __future__ import annotations

import pandas as pd
from prefect import task

from recsys_core import pipeline
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage


@task(name="merge-average", on_failure=[remember_failed_stage])
def merge_and_average(ratings: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    clean = pipeline.merge_and_average(ratings, movies)
    logger().info("%s ratings after averaging duplicates (from %s)", f"{len(clean):,}", f"{len(ratings):,}")
    return clean
