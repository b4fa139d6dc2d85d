"""Unchanged input, unchanged work: reuse a published model when tonight would train the same one.

Training is a function of the cleaned ratings, the movies (item features), the settings that
shape the table, the rating scale and the code that trains. When all of them hash the same as a
published night's (a fixed release run night after night, a re-run of a night, a quiet log),
training again would rebuild that night's model: it is linked into tonight's run folder instead,
with its evaluation. Scoring and publishing still run, so the table is tonight's and its manifest
says where the model came from. Anything that cannot be hashed means "no reuse", never a failure.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

FINGERPRINT_VERSION = "recsys-training/2"
RATING_COLUMNS = ["user_id", "movie_id", "rating", "timestamp"]
MOVIE_COLUMNS = ["movie_id", "title", "year", "genres"]
PACKAGE = Path(__file__).resolve().parents[1]  # recsys_core/


def framework_versions() -> str:
    """TensorFlow's and Keras' installed versions from package metadata (importing costs ~4 s).

    The distribution that provides the ``tensorflow`` module is looked up, whatever its name
    (tensorflow, tensorflow-cpu, ...); Keras decides how early stopping restores weights."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    parts = []
    for module in ("tensorflow", "keras"):
        dists = packages_distributions().get(module, []) or [module]
        try:
            parts.append(f"{dists[0]} {version(dists[0])}")
        except PackageNotFoundError:
            parts.append(f"{module} absent")
    return " ".join(parts)


@functools.cache
def code_digest() -> str:
    """sha256 of every library source file and of the numeric stack's versions.

    A change to a model, the scale profile or the features (or a TensorFlow upgrade) must train
    again; the package's version number is not bumped for such changes, its source is.
    """
    digest = hashlib.sha256(f"numpy {np.__version__} pandas {pd.__version__} {framework_versions()}".encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def hash_frame(frame: pd.DataFrame, columns: list[str]) -> str:
    """sha256 of the frame's columns: numeric columns by their raw buffers (no copy of 25M rows),
    other columns as JSON text (lists and strings unambiguous)."""
    digest = hashlib.sha256(f"{len(frame)}".encode())
    for column in [c for c in columns if c in frame.columns]:
        series = frame[column]
        digest.update(f"|{column}:{series.dtype}|".encode())
        if pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(
            series.dtype, pd.api.extensions.ExtensionDtype
        ):
            digest.update(memoryview(np.ascontiguousarray(series.to_numpy())).cast("B"))
        else:
            cells = [v.tolist() if isinstance(v, np.ndarray) else v for v in series.astype(object)]
            digest.update(json.dumps(cells, default=str).encode())
    return digest.hexdigest()


def fingerprint_training(
    ratings: pd.DataFrame, movies: pd.DataFrame, config_fingerprint: str, rating_values: tuple[float, ...]
) -> str | None:
    """What a model is trained from, as one digest; None when something cannot be hashed (no reuse)."""
    try:
        parts = [
            FINGERPRINT_VERSION,
            config_fingerprint,
            json.dumps(list(rating_values)),
            code_digest(),
            hash_frame(ratings, RATING_COLUMNS),
            hash_frame(movies, MOVIE_COLUMNS),
        ]
    except Exception as exc:  # noqa: BLE001 - an optimisation: failing to hash only means training
        log.warning("cannot fingerprint tonight's input (%s: %s): the model is trained", type(exc).__name__, exc)
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def find_reusable(nights: list[dict[str, Any]], dataset: str, fingerprint: str | None) -> dict[str, Any] | None:
    """The newest published night trained from the same input whose model and evaluation are on disk."""
    if fingerprint is None:
        return None
    for manifest in reversed(nights):
        if manifest.get("dataset") != dataset or manifest.get("training_fingerprint") != fingerprint:
            continue
        folder = Path(manifest.get("run_folder") or "")
        if (
            manifest.get("run_folder")
            and (folder / "model" / "model.json").is_file()
            and (folder / "metrics.json").is_file()
        ):
            return manifest
    return None


def link_or_copy(source: str, target: str) -> None:
    """Hard links: a model's files are written once, so a reused night costs no disk."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def copy_published_model(manifest: dict[str, Any], run_folder: Path) -> dict[str, Any]:
    """Link the night's ``model/`` into ``run_folder`` (retention may later delete the source) and
    return its evaluation (``metrics.json``), which is tonight's too: same data, same settings."""
    source = Path(manifest["run_folder"])
    target = Path(run_folder) / "model"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / "model", target, copy_function=link_or_copy)
    evaluation = json.loads((source / "metrics.json").read_text())
    evaluation["reused_from"] = manifest["run_id"]
    (Path(run_folder) / "metrics.json").write_text(json.dumps(evaluation, indent=2, default=str))
    return evaluation
