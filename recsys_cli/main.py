"""`recsys`: run the nightly flow now, evaluate a model, read recommendations.

Flags override RECSYS_* environment variables, which override defaults.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Nightly MovieLens recommendations.", no_args_is_help=True, add_completion=False)
state: dict[str, bool] = {"debug": False}

DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="ml-100k, ml-1m, ml-latest-small, ml-25m, ml-32m [env RECSYS_DATASET]")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Mirror URL or local archive path [env RECSYS_SOURCE]")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Where caches, runs and tables live [env RECSYS_DATA_DIR]")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name; see `recsys models` [env RECSYS_MODEL]")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed for splits and training")]


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False) -> None:
    state["debug"] = debug


def _prepare_logging() -> None:
    """Library logs reach the Prefect UI only when named as extra loggers (STACK.md)."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "recsys_core")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("recsys_core").setLevel(logging.DEBUG if state["debug"] else logging.INFO)


def _quiet_tracebacks() -> None:
    """Attach the traceback filter to every handler Prefect configured (after its import)."""
    if state["debug"]:
        return
    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            if not any(isinstance(f, _DropTracebacks) for f in handler.filters):
                handler.addFilter(_DropTracebacks())


class _DropTracebacks(logging.Filter):
    """Keep error lines but not their tracebacks: users get one clear message instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        if isinstance(record.msg, str) and "Traceback (most recent call last)" in record.msg:
            record.msg = record.msg.split("Traceback (most recent call last)")[0].rstrip()
        return True


def _fail(exc: BaseException) -> None:
    """One paragraph on stderr and exit 1; tracebacks only with --debug."""
    if state["debug"]:
        raise exc
    typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _guard(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from recsys_core.errors import RecsysError

    try:
        return fn(*args, **kwargs)
    except (RecsysError, KeyboardInterrupt) as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - report anything unexpected without a traceback
        if state["debug"]:
            raise
        typer.secho(f"Error: {type(exc).__name__}: {exc} (rerun with --debug for details)", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


@app.command()
def run(
    dataset: DatasetOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
    top_n: Annotated[int | None, typer.Option("--top-n", help="Recommendations per user [env RECSYS_TOP_N]")] = None,
    split: Annotated[str | None, typer.Option("--split", help="random, stratified, temporal, u1..u5, ua, ub")] = None,
    seed: SeedOpt = None,
    offline: Annotated[bool, typer.Option("--offline", help="Use the cached archive, no network")] = False,
    reject_threshold: Annotated[float | None, typer.Option("--reject-threshold", help="Largest share of rejected rows (default 0.01)")] = None,
    quality_gate: Annotated[bool, typer.Option("--quality-gate/--no-quality-gate", help="Refuse to publish a model worse than the baselines or the published run")] = True,
) -> None:
    """Run the nightly flow once, now, and publish the table."""
    from recsys_core.settings import load_settings

    s = load_settings(dataset=dataset, source=source, data_dir=data_dir, model=model, top_n=top_n,
                      split=split, seed=seed, reject_threshold=reject_threshold, offline=offline or None)
    _prepare_logging()
    from flows.nightly import nightly_recommendations
    from prefect.logging.configuration import setup_logging

    setup_logging()
    _quiet_tracebacks()
    manifest = _guard(
        nightly_recommendations,
        dataset=s.dataset, source=s.source, data_dir=str(s.data_dir), model=s.model, top_n=s.top_n,
        split=s.split, seed=s.seed, k=s.k, reject_threshold=s.reject_threshold,
        memory_budget_mb=s.memory_budget_mb, offline=s.offline, quality_gate=quality_gate,
    )
    typer.echo(f"\nPublished {manifest['rows']:,} rows for {manifest['users']:,} users")
    typer.echo(f"  table:    {manifest['path']}")
    typer.echo(f"  manifest: {Path(s.data_dir).resolve() / 'recommendations' / '_latest.json'}")
    typer.echo(f"  model:    {manifest['model']}  (split {manifest['split']}, k={manifest['metrics']['k']})")
    typer.echo("  metrics:  " + json.dumps({k: round(v, 4) for k, v in manifest["metrics"].items() if isinstance(v, float)}))


@app.command()
def evaluate(
    dataset: DatasetOpt = None,
    split: Annotated[str, typer.Option("--split", help="u1..u5, ua, ub, random, stratified, temporal")] = "u1",
    model: ModelOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    seed: SeedOpt = None,
    k: Annotated[int, typer.Option("--k", help="Ranking cut-off")] = 10,
) -> None:
    """Train and evaluate without publishing; prints one JSON object of metrics."""
    from recsys_core.settings import load_settings

    s = load_settings(dataset=dataset, source=source, data_dir=data_dir, model=model, seed=seed)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.DEBUG if state["debug"] else logging.WARNING, stream=sys.stderr)

    def work() -> dict[str, Any]:
        from recsys_core.datasets import get_dataset
        from recsys_core.download import fetch_archive
        from recsys_core.experiment import run_experiment

        spec = get_dataset(s.dataset)
        src = s.source or spec.url
        official = src == spec.url
        archive = fetch_archive(src, s.data_dir / "cache", expected_md5=spec.md5 if official else None,
                                expected_size=spec.size if official else None, offline=s.offline)
        return run_experiment(archive.path, spec, split=split, model=s.model, seed=s.seed, k=k)

    result = _guard(work)
    typer.echo(json.dumps(result, default=float))


@app.command()
def recommend(
    user: Annotated[int, typer.Option("--user", help="MovieLens user id")],
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table")] = False,
) -> None:
    """Show a user's list from the latest published table."""
    from recsys_core.settings import load_settings

    s = load_settings(data_dir=data_dir)

    def work() -> tuple[dict[str, Any], Any]:
        import pyarrow.parquet as pq

        from recsys_core.errors import RecsysError
        from recsys_core.publishing import read_manifest

        manifest = read_manifest(s.data_dir)
        if manifest is None:
            raise RecsysError(f"No published run in {s.data_dir / 'recommendations'}. Run `recsys run` first, or pass --data-dir.")
        rows = pq.read_table(manifest["path"], filters=[("user_id", "=", user)]).to_pandas().sort_values("rank")
        if rows.empty:
            raise RecsysError(f"User {user} is not in the latest table (run {manifest['run_id']}, {manifest['users']:,} users).")
        return manifest, rows

    manifest, rows = _guard(work)
    if as_json:
        for rec in rows[["rank", "movie_id", "title", "score", "predicted_rating"]].to_dict("records"):
            typer.echo(json.dumps(rec, default=str))
        return
    typer.echo(f"Top {len(rows)} for user {user} (run {manifest['run_id']}, model {manifest['model']}):")
    for r in rows.itertuples():
        pr = "" if r.predicted_rating is None or r.predicted_rating != r.predicted_rating else f"  predicted {r.predicted_rating:.2f}"
        typer.echo(f"{r.rank:>3}. {r.title} [{r.movie_id}]  score {r.score:.3f}{pr}")


@app.command()
def models() -> None:
    """List the models `--model` accepts."""
    from recsys_core.models import MODELS

    for name, cls in sorted(MODELS.items()):
        typer.echo(f"{name:<14} {cls.description}")


if __name__ == "__main__":
    app()
