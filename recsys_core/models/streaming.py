"""Training pairs on disk: a Parquet file of encoded (user_idx, movie_idx, rating), read back
by ``tf.data`` in shuffled batches.

At ml-25m size the training pairs are 25M rows; feeding Keras from one Parquet file keeps
training memory to a few row groups and never builds per-pair Python objects. Rows are
written in a seeded random order; every epoch reads the row groups in a new seeded order and
permutes rows inside each group, so each epoch sees a different, reproducible shuffle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys_core.memory import release_unused_memory
from recsys_core.prep.interactions import Interactions

PAIRS_FILE = "train_pairs.parquet"
ROW_GROUP_ROWS = 1_000_000

# (user_idx, movie_idx, rating) -> (Keras inputs, targets)
Transform = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[dict[str, np.ndarray], np.ndarray]]


def write_pairs_parquet(train: Interactions, path: Path, *, seed: int, row_group_rows: int = ROW_GROUP_ROWS) -> Path:
    """Write the encoded pairs in a seeded random order (row groups then shuffle cheaply)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(train))
    table = pa.table(
        {
            "user_idx": np.asarray(train.user_idx, np.int32)[order],
            "movie_idx": np.asarray(train.movie_idx, np.int32)[order],
            "rating": np.asarray(train.rating, np.float32)[order],
        }
    )
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=row_group_rows, compression="snappy")
    tmp.replace(path)
    del table
    release_unused_memory()
    return path


def iter_pair_batches(path: Path, batch_size: int, seed: int, epoch: int) -> Iterator[tuple[np.ndarray, ...]]:
    """One epoch of (user_idx, movie_idx, rating) batches, shuffled by (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    file = pq.ParquetFile(path)
    for group in rng.permutation(file.num_row_groups):
        table = file.read_row_group(int(group), columns=["user_idx", "movie_idx", "rating"])
        users, movies, ratings = (table.column(c).to_numpy() for c in ("user_idx", "movie_idx", "rating"))
        order = rng.permutation(len(ratings))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield users[rows], movies[rows], ratings[rows]


def pairs_dataset(path: Path, batch_size: int, seed: int, transform: Transform) -> Any:
    """A ``tf.data.Dataset`` of (inputs, targets) batches; a new shuffle each time it is iterated.

    Keras iterates the dataset once per epoch, which calls the generator again; a counter in
    the closure gives each epoch its own seeded order.
    """
    import tensorflow as tf

    file = pq.ParquetFile(path)
    probe = file.read_row_group(0, columns=["user_idx", "movie_idx", "rating"]).slice(0, 1)
    sample_x, sample_y = transform(*(probe.column(c).to_numpy() for c in ("user_idx", "movie_idx", "rating")))
    signature = (
        {k: tf.TensorSpec((None, *np.shape(v)[1:]), tf.as_dtype(np.asarray(v).dtype)) for k, v in sample_x.items()},
        tf.TensorSpec((None, *np.shape(sample_y)[1:]), tf.as_dtype(np.asarray(sample_y).dtype)),
    )
    epochs = iter(range(1 << 30))

    def generate() -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        for users, movies, ratings in iter_pair_batches(path, batch_size, seed, next(epochs)):
            yield transform(users, movies, ratings)

    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    n_batches = sum(-(-size // batch_size) for size in sizes)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    # A known length lets Keras re-iterate the dataset every epoch (it stops after one otherwise).
    return dataset.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)


def should_stream(params: dict[str, Any]) -> bool:
    """Stream from Parquet when the scale profile says so (``stream``); in-memory arrays otherwise."""
    return bool(params.get("stream", False))
