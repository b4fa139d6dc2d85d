"""Stage 3: the Great Expectations gate on raw ratings and movies."""

from __future__ import annotations

from pathlib import Path

from data_checks.gate import GateResult, check_raw_data, check_top_n_fits
from data_checks.runner import render_reports_html
from recsys_core import pipeline
from recsys_core.atomic import write_bytes_atomic
from recsys_core.data.datasets import DatasetSpec
from recsys_core.data.readers import Release
from recsys_core.data.sources import as_spec
from recsys_core.runs.failures import converts_storage_errors
from tasks.artifacts import logger, publish_markdown
from tasks.stage import stage


@stage("validate")
@converts_storage_errors
def validate_release(
    release: Release,
    dataset: str | DatasetSpec,
    run_folder: Path,
    reject_threshold: float = 0.01,
    top_n: int | None = None,
) -> GateResult:
    """Contract breaks raise (the run fails with the report); bad rows go to rejects.parquet."""
    spec = as_spec(dataset)
    if top_n is not None:
        check_top_n_fits(top_n, release.movies, spec.name)
    result = pipeline.gate_release(
        release, spec, check_raw_data, reject_threshold=reject_threshold, docs_dir=run_folder / "data_docs"
    )
    run_folder.mkdir(parents=True, exist_ok=True)
    if len(result.rejects):
        result.rejects.to_parquet(run_folder / "rejects.parquet", index=False)
    html = render_reports_html(result.reports, f"Validation of {spec.name}")
    write_bytes_atomic(run_folder / "validation.html", html.encode("utf-8"))
    summary = "\n\n".join(r.to_markdown() for r in result.reports)
    publish_markdown(
        "validation-summary",
        f"## Data gate: {len(result.rejects):,} rejected of {len(release.ratings):,} ratings "
        f"({result.reject_fraction:.3%})\n\n{summary}\n\nGreat Expectations Data Docs: "
        f"`{run_folder / 'data_docs' / 'index.html'}`; summary page: `{run_folder / 'validation.html'}`",
        "Great Expectations results on the raw release",
    )
    logger().info("validation passed: %s rejects (%.3f%%)", f"{len(result.rejects):,}", 100 * result.reject_fraction)
    return result
