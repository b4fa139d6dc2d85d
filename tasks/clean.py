"""Stage 4: merge titles, average duplicate ratings."""

from __future__ import annotations

import pandas as pd

from recsys_core import pipeline
from tasks.artifacts import logger
from tasks.stage import stage


@stage("merge-average")
def merge_and_average(ratings: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    clean = pipeline.merge_and_average(ratings, movies)
    logger().info("%s ratings after averaging duplicates (from %s)", f"{len(clean):,}", f"{len(ratings):,}")
    return clean
