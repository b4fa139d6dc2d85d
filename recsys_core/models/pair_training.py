"""Fit a pair model from arrays (small data) or from a Parquet file through tf.data (large).

Both paths early-stop on the same in-memory validation slice. The streaming path writes the
encoded training pairs to ``<work_dir>/train_pairs_<model>.parquet`` (a temp folder when no
work dir was given) and deletes the file after training: it duplicates the ratings.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from recsys_core.models.base import Recommender
from recsys_core.models.keras_utils import fit_keras_stream
from recsys_core.models.streaming import Transform, pairs_dataset, write_pairs_parquet
from recsys_core.prep.interactions import Interactions

log = logging.getLogger(__name__)


def fit_streamed(
    model: Recommender,
    net: Any,
    train: Interactions,
    validation: Interactions | None,
    transform: Transform,
    *,
    epochs: int,
    batch_size: int,
    patience: int,
    monitor: str,
) -> dict[str, list[float]]:
    """Train ``net`` on ``train`` streamed from Parquet; returns the Keras history."""
    val = None
    if validation is not None and len(validation):
        val = transform(validation.user_idx, validation.movie_idx, validation.rating)
    with tempfile.TemporaryDirectory(prefix="recsys-pairs-") as scratch:
        directory = model.work_dir or Path(scratch)
        start = time.perf_counter()
        path = write_pairs_parquet(train, directory / f"train_pairs_{model.name}.parquet", seed=model.seed)
        log.info("wrote %s training pairs to %s in %.1f s", f"{len(train):,}", path, time.perf_counter() - start)
        try:
            dataset = pairs_dataset(path, batch_size, model.seed, transform)
            history = fit_keras_stream(net, dataset, validation=val, epochs=epochs, patience=patience, monitor=monitor)
        finally:
            path.unlink(missing_ok=True)
    log.info("streamed %s: %d epochs, batch %d", model.name, len(history.get("loss", [])), batch_size)
    return history
