"""Shared Keras plumbing: seeding, fitting with early stopping, safe save/load."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def seed_everything(seed: int) -> None:
    """Identical seeds give identical weights: seed Python, numpy and TF, deterministic ops."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit_keras(
    model: Any,
    inputs: dict[str, np.ndarray],
    targets: np.ndarray,
    *,
    validation: tuple[dict[str, np.ndarray], np.ndarray] | None,
    epochs: int,
    batch_size: int,
    patience: int,
    monitor: str,
    seed: int,
    mode: str = "min",
    extra_callbacks: Sequence[Any] = (),
) -> dict[str, list[float]]:
    """Fit with early stopping on the validation slice; returns the per-epoch history.

    ``extra_callbacks`` run before early stopping, so one of them may write the monitored
    ``val_<monitor>`` value itself (see ``validation_callback``).
    """
    import keras

    callbacks = list(extra_callbacks)
    has_validation = validation is not None and len(validation[1])
    if has_validation or extra_callbacks:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=f"val_{monitor}", mode=mode, patience=patience, restore_best_weights=True
            )
        )
    if not has_validation:
        validation = None
    hist = model.fit(
        inputs,
        targets,
        validation_data=validation,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def fit_keras_stream(
    model: Any,
    dataset: Any,
    *,
    validation: tuple[dict[str, np.ndarray], np.ndarray] | None,
    epochs: int,
    patience: int,
    monitor: str,
    validation_batch_size: int = 65536,
) -> dict[str, list[float]]:
    """Like ``fit_keras`` but the training batches come from a ``tf.data.Dataset`` (already
    batched and shuffled per epoch, see ``recsys_core.models.streaming``)."""
    import keras

    callbacks = []
    if validation is not None and len(validation[1]):
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=f"val_{monitor}", patience=patience, restore_best_weights=True)
        )
    else:
        validation = None
    hist = model.fit(
        dataset,
        validation_data=validation,
        validation_batch_size=validation_batch_size,
        epochs=epochs,
        shuffle=False,  # the dataset shuffles itself, per epoch and seeded
        verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def validation_callback(name: str, compute: Callable[[], float]) -> Any:
    """A callback that writes ``val_<name> = compute()`` into the epoch logs.

    For metrics Keras cannot compute per batch (masked RMSE over a whole matrix, NDCG of a
    full ranking); place it before EarlyStopping so the stopper sees the value.
    """
    import keras

    class _Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is not None:
                logs[f"val_{name}"] = float(compute())

    return _Validation()


def predict_batched(model: Any, inputs: Any, batch_size: int = 65536) -> np.ndarray:
    """Inference without training-mode layers, in large batches (fast on CPU)."""
    return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))


def save_keras(model: Any, directory: Path) -> None:
    model.save(Path(directory) / "model.keras")


def load_keras(directory: Path) -> Any:
    """Load with safe_mode=True: no arbitrary code (lambda layers) is deserialised."""
    import keras

    return keras.models.load_model(Path(directory) / "model.keras", safe_mode=True, compile=False)
