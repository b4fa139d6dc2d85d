"""Run a JSON expectation suite on a DataFrame and return a plain, serialisable report."""

from __future__ import annotations

import html
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SUITES_DIR = Path(__file__).resolve().parent / "suites"


@dataclass
class ExpectationOutcome:
    """One expectation's verdict, stripped of Great Expectations objects."""

    expectation: str
    column: str | None
    success: bool
    severity: str
    reason: str | None
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_index: list = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        target = f"column {self.column!r}" if self.column else "table"
        detail = self.reason or self.expectation
        bits = [f"{self.expectation} on {target}: {detail}"]
        if self.unexpected_count:
            bits.append(f"{self.unexpected_count} bad row(s)")
        if self.observed_value is not None:
            bits.append(f"observed {self.observed_value!r}")
        if self.error:
            bits.append(f"error: {self.error}")
        return "; ".join(bits)


@dataclass
class SuiteReport:
    """What a suite found on one frame."""

    suite: str
    rows: int
    seconds: float
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    def failures(self, severity: str | None = None) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and (severity is None or o.severity == severity)]

    def bad_rows(self) -> dict[Any, list[str]]:
        """Index label -> reasons, for row-level expectations that failed."""
        rows: dict[Any, list[str]] = {}
        for o in self.failures("row"):
            for idx in o.unexpected_index:
                rows.setdefault(idx, []).append(o.reason or o.expectation)
        return rows

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["success"] = self.success
        for o in d["outcomes"]:
            o["unexpected_index"] = o["unexpected_index"][:20]  # a sample is enough for reports
        return d

    def to_markdown(self) -> str:
        lines = [
            f"### Suite `{self.suite}`: {'passed' if self.success else 'FAILED'} "
            f"({self.rows:,} rows, {self.seconds:.2f} s)",
            "",
            "| expectation | column | severity | result | observed | unexpected |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for o in self.outcomes:
            observed = "" if o.observed_value is None else str(o.observed_value)[:40]
            lines.append(
                f"| {o.expectation} | {o.column or ''} | {o.severity} | {'ok' if o.success else 'FAIL'} "
                f"| {observed} | {o.unexpected_count or 0} |"
            )
        return "\n".join(lines)


def load_suite(name: str) -> dict[str, Any]:
    """The suite definition shipped in ``data_checks/suites/<name>.json``."""
    return json.loads((SUITES_DIR / f"{name}.json").read_text())


class SuiteSession:
    """One ephemeral GX context for several suites; optionally a Data Docs site on disk.

    With ``docs_dir`` every suite runs through a Checkpoint whose UpdateDataDocsAction renders
    GX's own Data Docs (index.html plus one page per validation) into that folder; without it
    nothing is written anywhere.
    """

    def __init__(self, docs_dir: Path | None = None) -> None:
        self._gx = _import_gx()
        self._ctx = self._gx.get_context(mode="ephemeral")
        _silence(self._ctx)
        self._source = self._ctx.data_sources.add_pandas("pandas")
        # Great Expectations refuses a relative Data Docs folder (STACK.md): resolve it here too.
        self.docs_dir = docs_dir = Path(docs_dir).resolve() if docs_dir is not None else None
        if docs_dir is not None:
            self._ctx.add_data_docs_site(
                site_name="run",
                site_config={
                    "class_name": "SiteBuilder",
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                },
            )

    def __enter__(self) -> SuiteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the validated frames.

        GX keeps every batch's DataFrame in the context's data source, and its project manager
        keeps the last context made for the rest of the process: the gate's copy of the raw
        ratings (0.7 GB at 25M ratings) stayed resident through training and publishing."""
        from great_expectations.data_context.data_context.context_factory import project_manager
        from great_expectations.exceptions import DataContextRequiredError

        if self._ctx is None:
            return
        try:
            ours = project_manager.get_current_project() is self._ctx
        except DataContextRequiredError:
            ours = False
        if ours:  # another context made since (not by us) stays
            project_manager.set_project(None)
        self._source = self._ctx = None

    def run(self, df: pd.DataFrame, suite_name: str, parameters: dict[str, Any] | None = None) -> SuiteReport:
        """Validate ``df`` against ``suites/<suite_name>.json`` with COMPLETE results."""
        gx = self._gx
        spec = load_suite(suite_name)
        suite = gx.ExpectationSuite(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta"))
        start = time.perf_counter()
        batch_def = self._source.add_dataframe_asset(suite_name).add_batch_definition_whole_dataframe("whole")
        params = parameters or {}
        if self.docs_dir is None:
            batch = batch_def.get_batch(batch_parameters={"dataframe": df})
            results = batch.validate(suite, result_format="COMPLETE", expectation_parameters=params).results
        else:
            from great_expectations.checkpoint import UpdateDataDocsAction

            suite = self._ctx.suites.add(suite)
            definition = self._ctx.validation_definitions.add(
                gx.ValidationDefinition(name=suite_name, data=batch_def, suite=suite)
            )
            checkpoint = self._ctx.checkpoints.add(
                gx.Checkpoint(
                    name=f"{suite_name}-checkpoint",
                    validation_definitions=[definition],
                    actions=[UpdateDataDocsAction(name="data-docs", site_names=["run"])],
                    result_format="COMPLETE",
                )
            )
            run = checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=params)
            results = [r for res in run.run_results.values() for r in res.results]
        outcomes = [_outcome(r) for r in results]
        return SuiteReport(spec["name"], len(df), time.perf_counter() - start, outcomes)


def run_suite(df: pd.DataFrame, suite_name: str, parameters: dict[str, Any] | None = None) -> SuiteReport:
    """Validate ``df`` in a fresh ephemeral GX context (nothing written to disk)."""
    with SuiteSession() as session:
        return session.run(df, suite_name, parameters)


def _outcome(r: Any) -> ExpectationOutcome:
    cfg = r.expectation_config
    meta = cfg.meta or {}
    res = r.result or {}
    exc = (r.exception_info or {}) if isinstance(r.exception_info, dict) else {}
    error = exc.get("exception_message") if exc.get("raised_exception") else None
    return ExpectationOutcome(
        expectation=cfg.type,
        column=cfg.kwargs.get("column"),
        success=bool(r.success),
        severity=meta.get("severity", "contract"),
        reason=meta.get("reason"),
        observed_value=_plain(res.get("observed_value")),
        unexpected_count=res.get("unexpected_count"),
        unexpected_index=list(res.get("unexpected_index_list") or []),
        error=error,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def preload_in_background(then: Sequence[Callable[[], Any]] = ()) -> None:
    """Start importing Great Expectations (~3 s) in a thread, so it overlaps other start-up
    work (the Prefect server, the download) instead of adding to the validate stage; the
    imports in ``then`` (TensorFlow, plotting) follow in the same thread, one at a time."""
    import threading

    def preload() -> None:
        _import_gx()
        for load in then:
            load()

    threading.Thread(target=preload, name="preload-imports", daemon=True).start()


def _import_gx() -> Any:
    """Import GX quietly: its loggers and progress bars would drown the run's logs."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return gx


def _silence(ctx: Any) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)


def render_reports_html(reports: list[SuiteReport], title: str) -> str:
    """A self-contained HTML page of every expectation's verdict (the run's validation docs)."""
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}.FAIL{background:#fdd}.ok{background:#dfd}</style>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for rep in reports:
        parts.append(
            f"<h2>{html.escape(rep.suite)}: {'passed' if rep.success else 'FAILED'}</h2>"
            f"<p>{rep.rows:,} rows, {rep.seconds:.2f} s</p><table><tr><th>expectation</th>"
            "<th>column</th><th>severity</th><th>result</th><th>observed</th><th>unexpected</th>"
            "<th>sample of bad rows</th></tr>"
        )
        for o in rep.outcomes:
            verdict = "ok" if o.success else "FAIL"
            parts.append(
                f"<tr class='{verdict}'><td>{html.escape(o.expectation)}</td><td>{html.escape(o.column or '')}</td>"
                f"<td>{o.severity}</td><td>{verdict}</td><td>{html.escape(str(o.observed_value or ''))}</td>"
                f"<td>{o.unexpected_count or 0}</td><td>{html.escape(str(o.unexpected_index[:10]))}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)
