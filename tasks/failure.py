"""Flow-run hooks: when a run fails, crashes or is cancelled, say why in the UI and clean up.

The hook cleans the run's partial outputs (models, tables) and leaves a `failure` markdown
artifact with the stage, the one-paragraph message and what to do. The published table and
`_latest.json` are never touched by a failing run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from recsys_core.config import absolute
from recsys_core.publishing.table import read_manifest
from recsys_core.runs.failures import discard_partial_outputs, find_run_folder, render_failure_markdown

log = logging.getLogger("recsys_core.runs.failures")
PREFIX = "Flow run encountered an exception: "
# flow run id -> name of the task that failed last. Filled by the tasks' own on_failure hook,
# because the task's Failed state may reach the API after the flow's hook already runs.
_FAILED_STAGES: dict[str, str] = {}


def remember_failed_stage(task: Any, task_run: Any, state: Any) -> None:
    """on_failure hook of every stage task: the flow's failure report names this stage."""
    if task_run.flow_run_id is not None:
        _FAILED_STAGES[str(task_run.flow_run_id)] = task.name


def failed_stage(flow_run_id: Any) -> str | None:
    """The name of the task run that failed last in this flow run (what the UI highlights)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    failed = [r for r in runs if r.state_type and r.state_type.value in ("FAILED", "CRASHED", "CANCELLED")]
    failed.sort(key=lambda r: r.end_time or r.start_time or r.expected_start_time)
    return failed[-1].name.rsplit("-", 1)[0] if failed else None


def published_run_id(data_dir: Path) -> str | None:
    """The run `_latest.json` names (None when none or unreadable)."""
    try:
        manifest = read_manifest(data_dir)
    except Exception:  # noqa: BLE001 - an unreadable manifest names no run
        return None
    return manifest.get("run_id") if manifest else None


def report_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure / on_crashed / on_cancellation hook of the nightly flow; never raises."""
    try:
        _report(flow_run, state)
    except Exception as exc:  # noqa: BLE001 - a hook must not mask the run's own failure
        log.warning("could not record the failure of flow run %s: %s", flow_run.id, exc)


def _report(flow_run: Any, state: Any) -> None:
    from prefect.artifacts import MarkdownArtifact

    message = (state.message or state.name or "the run did not finish").removeprefix(PREFIX)
    stage = _FAILED_STAGES.pop(str(flow_run.id), None)
    if stage is None:
        try:
            stage = failed_stage(flow_run.id)
        except Exception:  # noqa: BLE001 - the message alone still helps
            stage = None
    data_dir = absolute(Path(flow_run.parameters.get("data_dir") or "data"), Path.cwd())
    folder = find_run_folder(data_dir, str(flow_run.id))
    published = folder is not None and published_run_id(data_dir) == folder.name
    if folder is not None and not published:
        note = discard_partial_outputs(folder, stage=stage, message=message, state=state.name)
        log.warning("run folder %s: removed partial outputs (%s bytes)", folder, f"{note['freed_bytes']:,}")
    markdown = render_failure_markdown(
        stage=stage, message=message, state=state.name, run_folder=folder, published=published
    )
    MarkdownArtifact(
        key="failure", markdown=markdown, description="Why the run did not publish", flow_run_id=flow_run.id
    ).create()
