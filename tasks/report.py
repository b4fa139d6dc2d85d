"""Last stage: the run report (markdown artifact, PNG plots, report.html) for people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect.runtime import flow_run

from data_checks.gate import GateResult
from recsys_core.atomic import write_json_atomic
from recsys_core.data.readers import Release
from recsys_core.models.base import Recommender
from recsys_core.prep.splitting import Split
from recsys_core.publishing.table import read_table
from recsys_core.runs.context import RunContext
from recsys_core.runs.failures import converts_storage_errors
from recsys_core.runs.report import (
    InputSummary,
    build_report,
    collect_online_metrics,
    collect_run_metrics,
    render_markdown,
    summarise_inputs,
    write_plots,
    write_report,
)
from recsys_core.serving.similarity import MOVIES_FILE
from tasks.artifacts import logger, publish_markdown
from tasks.stage import stage


def read_stage_timings(flow_run_id: Any) -> list[dict[str, Any]]:
    """Seconds per finished task run of this flow run, from the Prefect API (what the UI shows)."""
    if flow_run_id is None:
        return []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    runs = sorted((r for r in runs if r.start_time and r.end_time), key=lambda r: r.start_time)
    return [{"stage": r.name, "seconds": r.total_run_time.total_seconds(), "state": r.state_name or ""} for r in runs]


@stage("summarise-inputs")
def summarise_run_inputs(release: Release, gated: GateResult, ratings: pd.DataFrame, parts: Split) -> InputSummary:
    """What the report will say about the data, taken now so the raw frames can be let go."""
    return summarise_inputs(release, gated, ratings, parts)


@stage("report")
@converts_storage_errors
def write_run_report(
    run: RunContext,
    dataset: str,
    inputs: InputSummary,
    movies: pd.DataFrame,
    model: Recommender,
    evaluation: dict[str, Any],
    manifest: dict[str, Any],
) -> Path:
    """Runs after publish: the table is already out, this only explains it (plots, timings)."""
    report = build_report(run, dataset, inputs, model, evaluation, manifest)
    if manifest.get("model_reused_from"):
        report.notes.append(
            f"No training tonight: the model (and its metrics) were reused from run {manifest['model_reused_from']}, "
            "whose cleaned ratings, movies and settings are identical to tonight's."
        )
    try:
        report.timings = read_stage_timings(flow_run.get_id())
        write_json_atomic(run.folder / "timings.json", report.timings)  # for benchmarks.nightly and audits
    except Exception as exc:  # noqa: BLE001 - the table is published; a missing timing table is no reason to fail
        logger().warning("could not read stage timings from the Prefect API: %s", exc)
        report.notes.append(f"Stage timings unavailable: {exc}")
    movies[["movie_id", "title"]].to_parquet(run.folder / MOVIES_FILE, index=False)
    online = collect_online_metrics(run.data_dir, dataset=dataset)
    report.online = online.to_dict("records")
    report.plots = write_plots(
        run.folder,
        history=model.history,
        rating_counts=inputs.rating_counts,
        table=read_table(Path(manifest["path"]), columns=["score", "rank"]),  # what the plot draws
        past_metrics=collect_run_metrics(run.data_dir),
        online=online,
    )
    html_path = write_report(run.folder, report)
    report.links["report.html"] = str(html_path.resolve())
    # The UI cannot open file:// links, so the report goes out as markdown; report.html (plots
    # inlined) is for a browser on the machine that ran the flow, or mailed as one file.
    publish_markdown("run-report", render_markdown(report), f"Run {run.run_id}: data, checks, training, timings")
    logger().info("run report: %s (%d plots)", html_path, len(report.plots))
    return html_path
