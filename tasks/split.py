"""Stage 6: the evaluation split."""

from __future__ import annotations

import pandas as pd

from recsys_core import pipeline
from recsys_core.data.readers import Release
from recsys_core.prep.splitting import Split
from tasks.artifacts import logger
from tasks.stage import stage


@stage("split")
def split_ratings(ratings: pd.DataFrame, release: Release, name: str, seed: int, test_fraction: float = 0.2) -> Split:
    split = pipeline.split_ratings(ratings, release, name, seed, test_fraction)
    logger().info("split %s: %s train, %s test", name, f"{len(split.train):,}", f"{len(split.test):,}")
    return split
