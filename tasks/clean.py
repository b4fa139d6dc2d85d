"""Stage 4: merge titles, average duplicate ratings."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core import pipeline
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage


@task(name="merge-average", on_failure=[remember_failed_stage], cache_policy=NO_CACHE)
def merge_and_average(ratings: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    clean = pipeline.merge_and_average(ratings, movies)
    logger().info("%s ratings after averaging duplicates (from %s)", f"{len(clean):,}", f"{len(ratings):,}")
    return clean
