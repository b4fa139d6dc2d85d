"""Skip training when tonight's input equals a published night's (recsys_core/runs/reuse.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.config import NightlyConfig
from recsys_core.data.datasets import DatasetSpec
from recsys_core.models.base import Recommender
from recsys_core.models.registry import load_model
from recsys_core.publishing.nights import list_nights
from recsys_core.runs.reuse import copy_published_model, find_reusable, fingerprint_training
from tasks.artifacts import logger, publish_markdown
from tasks.stage import stage


@stage("fingerprint-training")
def fingerprint_input(ratings: pd.DataFrame, movies: pd.DataFrame, cfg: NightlyConfig, spec: DatasetSpec) -> str | None:
    digest = fingerprint_training(ratings, movies, cfg.table_fingerprint(), spec.rating_values)
    logger().info("training fingerprint %s", digest[:12] if digest else "unavailable (the model is trained)")
    return digest


@stage("find-reusable-model")
def find_reusable_model(
    data_dir: Path, dataset: str, fingerprint: str | None, enabled: bool = True
) -> dict[str, Any] | None:
    """The published night whose model tonight would rebuild, if any (``--retrain`` turns this off)."""
    if not enabled:
        return None
    found = find_reusable(list_nights(Path(data_dir)), dataset, fingerprint)
    if found:
        logger().info(
            "tonight's cleaned ratings, movies, settings and code equal night %s's (run %s): reusing its model",
            found["as_of"],
            found["run_id"],
        )
    return found


@stage("reuse-model", persist_result=False)
def reuse_published_model(
    manifest: dict[str, Any] | None, run_folder: Path, gate_enabled: bool = True
) -> tuple[Recommender, dict[str, Any], dict[str, Any]] | None:
    """The night's model linked into tonight's run folder and loaded, its evaluation, and the gate
    record; None (tonight trains) when there is nothing to reuse or it cannot be loaded."""
    if manifest is None:
        return None
    try:
        evaluation = copy_published_model(manifest, run_folder)
        model = load_model(Path(run_folder) / "model")
    except Exception as exc:  # noqa: BLE001 - reuse is an optimisation: train instead
        logger().warning(
            "cannot reuse the model of run %s (%s: %s): training tonight's", manifest["run_id"], type(exc).__name__, exc
        )
        shutil.rmtree(Path(run_folder) / "model", ignore_errors=True)
        return None
    note = (
        f"model reused from night {manifest['as_of']} (run {manifest['run_id']}), which passed its gate on the same "
        "input: no candidate was trained, nothing to compare"
    )
    publish_markdown(
        "model-reused",
        f"## Model reused from night {manifest['as_of']} (run `{manifest['run_id']}`)\n\n"
        "Tonight's cleaned ratings, movies, table settings and code hash the same as that night's, so training "
        "would rebuild the same model: it was linked instead, with its evaluation. Scoring and publishing ran "
        "as usual. Pass `--retrain` to train anyway.",
        "Why no model was trained tonight",
    )
    publish_markdown(
        "quality-gate",
        f"## Quality gate: not run{'' if gate_enabled else ' (not enforced)'}\n\n- {note}",
        "Champion/challenger decision",
    )
    gate = {
        "passed": True,
        "enforced": gate_enabled,
        "reasons": [],
        "notes": [note],
        "champion": None,
        "reused_from": manifest["run_id"],
    }
    return model, evaluation, gate
