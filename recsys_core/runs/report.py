"""The run report: PNG plots in the run folder and a static ``report.html`` that shows them.

People would rather look at curves than logs, and the Prefect UI cannot show images, so each
run writes ``<run_folder>/plots/*.png`` and a self-contained ``report.html`` with the plots
inlined (it opens offline, mailed or copied alone). The same facts also go out as a
markdown artifact (``render_markdown``). Matplotlib is used through ``Figure`` with the Agg
canvas only: no pyplot, no display, no global state, safe in worker threads.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.atomic import write_bytes_atomic
from recsys_core.data.readers import Release
from recsys_core.models.base import Recommender
from recsys_core.prep.splitting import Split
from recsys_core.publishing.nights import list_nights
from recsys_core.publishing.table import MANIFEST, recommendations_root
from recsys_core.runs.context import RunContext
from recsys_core.runs.history import build_panels, summarise_history

PLOTS_DIR = "plots"
REPORT_FILE = "report.html"
TREND_METRICS = ("rmse", "ndcg_at_k", "precision_at_k", "coverage")


@dataclass
class RunReport:
    """Plain facts about one run, gathered by the caller (the report task)."""

    run_id: str
    dataset: str
    model: str
    split: str
    counts: dict[str, int] = field(default_factory=dict)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    validation: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: list[dict[str, Any]] = field(default_factory=list)
    table_path: str | None = None
    manifest_path: str | None = None
    links: dict[str, str] = field(default_factory=dict)  # relative ones live in the run folder
    plots: dict[str, str] = field(default_factory=dict)
    run_folder: str | None = None
    notes: list[str] = field(default_factory=list)
    online: list[dict[str, Any]] = field(default_factory=list)  # collect_online_metrics rows, oldest first


@dataclass(frozen=True)
class InputSummary:
    """What the report says about the night's data, taken once the split is made, so the flow
    can let the raw and gated rating frames go (two copies of every rating: 0.67 GB each at 25M)."""

    counts: dict[str, int]
    reject_reasons: dict[str, int]
    validation: list[dict[str, Any]]
    rating_counts: pd.Series  # ratings per star value, for the distribution plot
    split: str


def summarise_inputs(release: Release, gated: Any, ratings: pd.DataFrame, parts: Split) -> InputSummary:
    """Counts, reject reasons and validation results of the run's inputs.

    ``gated`` is the data gate's result (``data_checks.gate.GateResult``: ``rejects``, ``reports``).
    """
    counts = {
        "raw ratings": len(release.ratings),
        "raw movies": len(release.movies),
        "malformed lines": len(release.malformed),
        "rejected ratings": len(gated.rejects),
        "clean ratings (deduplicated)": len(ratings),
        "users": int(ratings["user_id"].nunique()),
        "movies rated": int(ratings["movie_id"].nunique()),
        f"train ratings ({parts.name})": len(parts.train),
        f"test ratings ({parts.name})": len(parts.test),
    }
    reasons = gated.rejects["reason"].value_counts().head(10).to_dict() if "reason" in gated.rejects else {}
    validation = [
        {"suite": r.suite, "rows": r.rows, "success": r.success, "failed": [o.expectation for o in r.failures()]}
        for r in gated.reports
    ]
    return InputSummary(
        counts=counts,
        reject_reasons={str(k): int(v) for k, v in reasons.items()},
        validation=validation,
        rating_counts=count_ratings(ratings["rating"]),
        split=parts.name,
    )


def count_ratings(ratings: pd.Series) -> pd.Series:
    """Ratings per star value, in star order."""
    return pd.Series(ratings).dropna().value_counts().sort_index()


ONLINE_COLUMNS = ("night", "lists of", "users", "ndcg", "hit_rate", "popularity ndcg", "popularity hit_rate")


def import_plotting() -> None:
    """Import matplotlib's figure and PNG machinery now (~1 s): the CLI does it in the background
    while the run trains, so the report stage only draws."""
    from matplotlib.backends import backend_agg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401


def _new_figure(width: float = 6.4, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_training_history(history: dict[str, list[float]], path: Path, max_cols: int = 4) -> Path | None:
    """One panel per metric and model part (train and validation together), in a grid so that
    models with many parts stay readable; the point the model kept is marked."""
    panels = build_panels(history)
    if not panels:
        return None
    cols = min(max_cols, len(panels))
    rows = -(-len(panels) // cols)
    fig = _new_figure(4.2 * cols, 3.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        for label in ("train", "validation"):
            values = panel.curves.get(label) or []
            if values:
                xs = panel.x or list(range(1, len(values) + 1))
                ax.plot(xs, values, marker="." if len(values) < 30 else None, label=label)
        chosen = panel.chosen
        if chosen is not None:
            what = "chosen lambda" if panel.x else "best epoch"
            ax.axvline(chosen[0], color="grey", linestyle=":", linewidth=1)
            ax.plot([chosen[0]], [chosen[1]], "o", color="black", label=f"{what}: {chosen[0]:g}")
        if panel.x:
            ax.set_xscale("log")
        better = "higher is better" if panel.higher_is_better else "lower is better"
        ax.set(title=panel.title, xlabel=panel.x_label, ylabel=f"{panel.metric} ({better})")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_rating_distribution(counts: pd.Series, path: Path) -> Path | None:
    """How many ratings per star value (``count_ratings``): skew explains much of RMSE."""
    if counts.empty:
        return None
    fig = _new_figure()
    ax = fig.subplots()
    width = 0.8 * float(pd.Series(counts.index).diff().min()) if len(counts) > 1 else 0.8
    ax.bar(counts.index.astype(float), counts.to_numpy(), width=width, color="#4c72b0")
    ax.set(title=f"Rating distribution ({int(counts.sum()):,} ratings)", xlabel="rating", ylabel="count")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_score_distribution(table: pd.DataFrame, path: Path) -> Path | None:
    """Scores of the published rows: all ranks and rank 1 (a collapsed model shows up here)."""
    if table.empty or "score" not in table:
        return None
    fig = _new_figure()
    ax = fig.subplots()
    scores = table["score"].astype(float)
    bins = np.histogram_bin_edges(scores, bins=40)
    ax.hist(scores, bins=bins, alpha=0.6, label="all ranks")
    if "rank" in table:
        ax.hist(scores[table["rank"] == 1], bins=bins, alpha=0.8, label="rank 1")
    ax.set(title=f"Score distribution of the published table ({len(table):,} rows)", xlabel="score", ylabel="rows")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def collect_run_metrics(data_dir: Path, limit: int = 30) -> pd.DataFrame:
    """Metrics of the last ``limit`` runs that wrote ``runs/<run_id>/metrics.json``, oldest first."""
    rows = []
    for path in sorted((Path(data_dir) / "runs").glob("*/metrics.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a run killed while writing: skip it rather than fail the report
        rows.append(
            {
                "run_id": path.parent.name,
                "model": data.get("model"),
                "split": data.get("split"),
                **{k: v for k, v in (data.get("metrics") or {}).items() if not isinstance(v, dict)},
            }
        )
    return pd.DataFrame(rows).tail(limit).reset_index(drop=True)


def plot_metrics_over_runs(history: pd.DataFrame, path: Path) -> Path | None:
    """RMSE and ranking metrics per run, so drift across nights is visible at a glance."""
    metrics = [m for m in TREND_METRICS if m in history and history[m].notna().any()]
    if history.empty or not metrics:
        return None
    cols = min(2, len(metrics))
    rows = -(-len(metrics) // cols)
    fig = _new_figure(5.0 * cols, 3.2 * rows)
    x = range(len(history))
    labels = [str(r)[:15] for r in history["run_id"]]
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    for ax, name in zip(axes, metrics, strict=False):
        ax.plot(x, history[name].astype(float), marker="o")
        ax.set(title=name, xlabel="run")
        ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def collect_online_metrics(data_dir: Path, limit: int = 60, dataset: str | None = None) -> pd.DataFrame:
    """Online metrics of the last ``limit`` published nights (each scores the night before), oldest
    first; only ``dataset``'s nights when given (one data dir may hold several)."""
    rows = []
    for manifest in list_nights(Path(data_dir)):
        if dataset is not None and manifest.get("dataset") != dataset:
            continue
        online = manifest.get("online_metrics") or {}
        if not online.get("users"):
            continue
        popular = (online.get("baselines") or {}).get("popularity") or {}
        rows.append(
            {
                "night": manifest["as_of"],
                "lists of": online.get("previous_as_of"),
                "users": online.get("users"),
                "ndcg": online.get("ndcg_at_k"),
                "hit_rate": online.get("hit_rate_at_k"),
                "popularity ndcg": popular.get("ndcg_at_k"),
                "popularity hit_rate": popular.get("hit_rate_at_k"),
            }
        )
    return pd.DataFrame(rows, columns=list(ONLINE_COLUMNS)).tail(limit).reset_index(drop=True)


def plot_online_over_nights(online: pd.DataFrame, path: Path) -> Path | None:
    """Each night's published lists against the next ratings, next to popularity's."""
    if online.empty:
        return None
    fig = _new_figure(10.0, 3.4)
    x = range(len(online))
    labels = [str(n) for n in online["lists of"]]
    panels = (("ndcg", "online NDCG@k"), ("hit_rate", "online hit rate"))
    for ax, (name, title) in zip(fig.subplots(1, 2), panels, strict=True):
        ax.plot(x, online[name].astype(float), marker="o", label="published lists")
        ax.plot(x, online[f"popularity {name}"].astype(float), marker="s", linestyle="--", label="popularity")
        ax.set(title=title, xlabel="lists of night (scored on the ratings until the next night)", ylabel=title)
        ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def write_plots(
    run_folder: Path,
    *,
    history: dict[str, list[float]],
    rating_counts: pd.Series,
    table: pd.DataFrame,
    past_metrics: pd.DataFrame,
    online: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Write every plot that has data; returns title -> path relative to the run folder."""
    folder = Path(run_folder) / PLOTS_DIR
    made = {
        "Yesterday's lists against the next ratings, over nights": plot_online_over_nights(
            online if online is not None else pd.DataFrame(), folder / "online_over_nights.png"
        ),
        "Training curves": plot_training_history(history, folder / "training_history.png"),
        "Rating distribution": plot_rating_distribution(rating_counts, folder / "rating_distribution.png"),
        "Score distribution": plot_score_distribution(table, folder / "score_distribution.png"),
        "Metrics over the last runs": plot_metrics_over_runs(past_metrics, folder / "metrics_over_runs.png"),
    }
    return {title: f"{PLOTS_DIR}/{p.name}" for title, p in made.items() if p is not None}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def _metric_rows(report: RunReport) -> list[tuple[str, dict[str, Any]]]:
    return [(report.model, report.metrics)] + [(f"baseline: {n}", m) for n, m in report.baselines.items()]


def _metric_names(report: RunReport) -> list[str]:
    return [
        k
        for k in ("rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")
        if k in report.metrics
    ]


def _history_summary(history: dict[str, list[float]]) -> list[tuple[str, int, float, float, float]]:
    return summarise_history(history)


def render_markdown(report: RunReport) -> str:
    """The run report as a Prefect markdown artifact (no images: the UI would not load them)."""
    out = [f"# Run `{report.run_id}`", "", f"{report.dataset}, model `{report.model}`, split `{report.split}`", ""]
    if report.table_path:
        out += [f"**Table:** `{report.table_path}`  ", f"**Manifest:** `{report.manifest_path}`", ""]
    out += ["## Data", "", "| what | count |", "| --- | ---: |"]
    out += [f"| {k} | {_fmt(v)} |" for k, v in report.counts.items()]
    if report.reject_reasons:
        out += ["", "**Rejected rows by reason**", "", "| reason | rows |", "| --- | ---: |"]
        out += [f"| {r} | {_fmt(n)} |" for r, n in report.reject_reasons.items()]
    if report.validation:
        out += [
            "",
            "## Validation",
            "",
            "| suite | rows | result | failed expectations |",
            "| --- | ---: | --- | --- |",
        ]
        out += [
            f"| {v['suite']} | {_fmt(v['rows'])} | {'passed' if v['success'] else 'FAILED'} | "
            f"{', '.join(v['failed']) or '-'} |"
            for v in report.validation
        ]
    names = _metric_names(report)
    if names:
        out += ["", "## Metrics", "", "| model | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
        out += [f"| {label} | " + " | ".join(_fmt(m.get(n)) for n in names) + " |" for label, m in _metric_rows(report)]
    if report.online:
        out += ["", "## Yesterday's lists against the next ratings", "", "| " + " | ".join(ONLINE_COLUMNS) + " |"]
        out += ["| --- | --- |" + " ---: |" * (len(ONLINE_COLUMNS) - 2)]
        out += ["| " + " | ".join(_fmt(row.get(c)) for c in ONLINE_COLUMNS) + " |" for row in report.online[-14:]]
    if report.history:
        out += [
            "",
            "## Training history",
            "",
            "| metric | points | first | best | last |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        out += [f"| {k} | {n} | {a:.4f} | {b:.4f} | {c:.4f} |" for k, n, a, b, c in _history_summary(report.history)]
    if report.timings:
        out += ["", "## Timings per stage", "", "| stage | seconds | state |", "| --- | ---: | --- |"]
        out += [f"| {t['stage']} | {t['seconds']:.1f} | {t.get('state', '')} |" for t in report.timings]
    if report.links or report.plots:
        out += ["", "## Files", ""]
        base = Path(report.run_folder) if report.run_folder else Path()
        out += [f"- {name}: `{base / target}`" for name, target in report.links.items()]
        out += [f"- plot {title}: `{base / rel}`" for title, rel in report.plots.items()]
    out += [f"\n> {n}" for n in report.notes]
    return "\n".join(out) + "\n"


def inline_png(path: Path) -> str:
    """A data URI, so report.html opens anywhere (mail, another machine, offline) with its plots."""
    try:
        return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
    except OSError:
        return path.name


def _template() -> Any:
    """The Jinja2 template (autoescaped) in recsys_core/runs/templates/report.html.j2."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    loader = PackageLoader("recsys_core.runs", "templates")
    env = Environment(loader=loader, autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = _fmt
    env.filters["href"] = _href
    return env.get_template("report.html.j2")


def render_html(report: RunReport) -> str:
    """A self-contained static page: CSS and plots inlined, no network, no neighbouring files."""
    base = Path(report.run_folder) if report.run_folder else None
    plots = [(title, inline_png(base / rel) if base else rel) for title, rel in report.plots.items()]
    names = _metric_names(report)
    page = _template().render(
        report=report,
        plots=plots,
        validation_rows=[
            [v["suite"], v["rows"], "passed" if v["success"] else "FAILED", ", ".join(v["failed"]) or "-"]
            for v in report.validation
        ],
        metric_names=names,
        metric_rows=[[label, *(m.get(n) for n in names)] for label, m in _metric_rows(report)],
        history_rows=[list(r) for r in _history_summary(report.history)],
        online_columns=list(ONLINE_COLUMNS),
        online_rows=[[row.get(c) for c in ONLINE_COLUMNS] for row in report.online[-14:]],
        timing_rows=[[t["stage"], f"{float(t['seconds']):.1f}", t.get("state", "")] for t in report.timings],
    )
    return page + "\n"


def _href(target: str) -> str:
    """Files in the run folder stay relative (the folder can move); absolute paths become file URIs."""
    return Path(target).as_uri() if Path(target).is_absolute() else target


def write_report(run_folder: Path, report: RunReport) -> Path:
    """Write ``report.html`` atomically into the run folder (plots are written before)."""
    path = Path(run_folder) / REPORT_FILE
    write_bytes_atomic(path, render_html(report).encode("utf-8"))
    return path


def build_report(
    run: RunContext,
    dataset: str,
    inputs: InputSummary,
    model: Recommender,
    evaluation: dict[str, Any],
    manifest: dict[str, Any],
) -> RunReport:
    """Gather counts, validation, metrics and paths into one plain object."""
    counts = {
        **inputs.counts,
        "published rows": int(manifest.get("rows", 0)),
        "published users": int(manifest.get("users", 0)),
        **manifest.get("catalogue_gaps", {}),
    }
    links = {
        "Data Docs": "data_docs/index.html",
        "validation summary": "validation.html",
        "table": manifest["path"],
        "manifest": str((recommendations_root(run.data_dir) / MANIFEST).resolve()),
    }
    if (run.folder / "rejects.parquet").is_file():
        links["rejects"] = "rejects.parquet"
    return RunReport(
        run_id=run.run_id,
        dataset=dataset,
        model=model.label,
        split=evaluation.get("split", inputs.split),
        counts=counts,
        reject_reasons=inputs.reject_reasons,
        validation=inputs.validation,
        history=model.history,
        metrics=evaluation.get("metrics", {}),
        baselines=evaluation.get("baselines", {}),
        table_path=manifest["path"],
        manifest_path=links["manifest"],
        links=links,
        run_folder=str(run.folder.resolve()),
    )
