"""Shared Keras plumbing: seeding, fitting with early stopping, safe save/load."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow() -> None:
    """Import TensorFlow and Keras now (about 4 s on two cores). The CLI calls this in a
    background thread while Prefect's temporary server starts in its own process, so the import
    overlaps a wait instead of delaying the first training step."""
    import keras  # noqa: F401
    import tensorflow  # noqa: F401


def seed_everything(seed: int, *, xla: bool = False) -> None:
    """Identical seeds give identical weights: seed Python, numpy and TF, deterministic ops.

    ``xla``: the next model compiles its step with XLA, which Keras refuses while TF's op
    determinism flag is on (it cannot vouch for every op). XLA's CPU kernels (the fused
    embedding updates of the pair models) are deterministic themselves; a test trains the
    large profile's rater twice and compares the weights. The flag is process-wide, so each
    fit sets it again."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # no public "disable" in TF 2.x

    keras.utils.set_random_seed(seed)
    if xla:
        tf_config.disable_op_determinism()
    else:
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
    sample_weight: np.ndarray | None = None,
) -> dict[str, list[float]]:
    """Fit with early stopping on the validation slice; returns the per-epoch history.

    ``extra_callbacks`` run before early stopping, so one of them may write the monitored
    ``val_<monitor>`` value itself (see ``validation_callback``). ``sample_weight`` weighs
    each target (per position for sequence outputs: 0 leaves padding out of the loss).
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
        sample_weight=sample_weight,
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


def trained_epochs(history: dict[str, list[float]], monitor: str, mode: str = "min") -> int:
    """How many epochs the kept weights trained: the best validation epoch, else all of them.

    Early stopping restores the best epoch's weights, so a refit without a validation slice
    that trains this many epochs repeats the choice without searching. Keras' rule: the first
    epoch is the best so far (even if NaN), later ones only by strict improvement (NaN never)."""
    values = history.get(f"val_{monitor}") or []
    if not values:
        return max(1, len(history.get("loss", [])))
    best = 0
    for j in range(1, len(values)):
        better = values[j] < values[best] if mode == "min" else values[j] > values[best]
        if better:  # comparisons with NaN are False, as in Keras
            best = j
    return best + 1


def scaled_epochs(epochs: int, epoch_scale: float) -> int:
    """At least one epoch; a warm start trains a fraction of the candidate's."""
    return max(1, int(np.ceil(epochs * epoch_scale)))


def epoch_settings(params: dict[str, Any], epochs: int) -> dict[str, Any]:
    """``params`` with the epoch count fixed (no early stopping: the refit has no validation slice)."""
    return {**params, "epochs": int(epochs)}


def copy_weights(source: Any, target: Any) -> None:
    """Copy a trained network's weights into a freshly built one of the same shapes.

    Both come from one night's vocabulary, so a shape mismatch is a bug, not bad input."""
    from recsys_core.errors import ModelError

    weights = source.get_weights()
    expected = [w.shape for w in target.get_weights()]
    if [w.shape for w in weights] != expected:
        raise ModelError(
            f"Cannot warm-start {target.name}: the candidate's weight shapes {[w.shape for w in weights]} "
            f"differ from {expected}. Train without a warm start (refit_mode='fixed')."
        )
    target.set_weights(weights)


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
