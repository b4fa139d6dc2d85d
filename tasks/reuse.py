"""Skip training when tonight's input equals a published night's (recsys_core/runs/reuse.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from recsys_core.config import NightlyConfig
from recsys_core.models.base import Recommender
from recsys_core.models.registry import load_model
from recsys_core.publishing.nights import list_nights
from recsys_core.runs.failures import converts_storage_errors
from recsys_core.runs.reuse import copy_published_model, find_reusable, fingerprint_training
from tasks.artifacts import logger, publish_markdown
from tasks.failure import remember_failed_stage


@task(name="fingerprint-training", on_failure=[remember_failed_stage])
def fingerprint_input(ratings: pd.DataFrame, movies: pd.DataFrame, cfg: NightlyConfig) -> str:
    digest = fingerprint_training(ratings, movies, cfg.table_fingerprint())
    logger().info("training fingerprint %s", digest[:12])
    return digest


@task(name="find-reusable-model", on_failure=[remember_failed_stage])
def find_reusable_model(data_dir: Path, dataset: str, fingerprint: str, enabled: bool = True) -> dict[str, Any] | None:
    """The published night whose model tonight would rebuild, if any (``--retrain`` turns this off)."""
    if not enabled:
        return None
    found = find_reusable(list_nights(Path(data_dir)), dataset, fingerprint)
    if found:
        logger().info(
            "tonight's cleaned ratings, movies and settings equal night %s's (run %s): reusing its model, no training",
            found["as_of"],
            found["run_id"],
        )
    return found


@task(name="reuse-model", on_failure=[remember_failed_stage])
@converts_storage_errors
def reuse_published_model(
    manifest: dict[str, Any], run_folder: Path
) -> tuple[Recommender, dict[str, Any], dict[str, Any]]:
    """The night's model copied into tonight's run folder and loaded, its evaluation, and the gate
    record (the model already passed that night's gate on the same data)."""
    evaluation = copy_published_model(manifest, run_folder)
    model = load_model(Path(run_folder) / "model")
    publish_markdown(
        "model-reused",
        f"## Model reused from night {manifest['as_of']} (run `{manifest['run_id']}`)\n\n"
        "Tonight's cleaned ratings, movies and table settings hash the same as that night's, so training "
        "would rebuild the same model: it was copied instead, with its evaluation. Scoring and publishing ran "
        "as usual. Pass `--retrain` to train anyway.",
        "Why no model was trained tonight",
    )
    note = f"model reused from night {manifest['as_of']} (run {manifest['run_id']}): same input and settings"
    gate = {**(manifest.get("gate") or {}), "notes": [note], "reused_from": manifest["run_id"]}
    return model, evaluation, gate
