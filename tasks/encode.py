"""Stage 5: contiguous user and movie indices; the vocabulary is saved with the run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys_core.prep.encoding import IdVocabulary, fit_vocabulary
from recsys_core.runs.failures import converts_storage_errors
from tasks.artifacts import logger
from tasks.stage import stage


@stage("encode")
@converts_storage_errors
def encode_ids(ratings: pd.DataFrame, run_folder: Path) -> IdVocabulary:
    vocab = fit_vocabulary(ratings)
    vocab.save(run_folder / "vocabulary.json")
    logger().info("%s users, %s movies", f"{vocab.n_users:,}", f"{vocab.n_movies:,}")
    return vocab
