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

DatasetOpt = Annotated[
    str | None, typer.Option("--dataset", help="ml-100k, ml-1m, ml-latest-small, ml-25m, ml-32m [env RECSYS_DATASET]")
]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Mirror URL or local archive path [env RECSYS_SOURCE]")]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Where caches, runs and tables live [env RECSYS_DATA_DIR]")
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name; see `recsys models` [env RECSYS_MODEL]")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed for splits and training")]
TopNOpt = Annotated[int | None, typer.Option("--top-n", help="Recommendations per user [env RECSYS_TOP_N]")]
SplitOpt = Annotated[
    str | None, typer.Option("--split", help="random, stratified, temporal, u1..u5, ua, ub [env RECSYS_SPLIT]")
]


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
        typer.secho(
            f"Error: {type(exc).__name__}: {exc} (rerun with --debug for details)", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(1) from None


@app.command()
def run(
    dataset: DatasetOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
    top_n: TopNOpt = None,
    split: SplitOpt = None,
    seed: SeedOpt = None,
    offline: Annotated[bool, typer.Option("--offline", help="Use the cached archive, no network")] = False,
    reject_threshold: Annotated[
        float | None, typer.Option("--reject-threshold", help="Largest share of rejected rows (default 0.01)")
    ] = None,
    quality_gate: Annotated[
        bool,
        typer.Option(
            "--quality-gate/--no-quality-gate",
            help="Refuse to publish a model worse than the baselines or the published run",
        ),
    ] = True,
    shards: Annotated[
        int | None, typer.Option("--shards", help="User shards scored in parallel [env RECSYS_SHARDS]")
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address", help="Score on an existing Dask cluster, e.g. tcp://host:8786 [env RECSYS_DASK_ADDRESS]"
        ),
    ] = None,
    retention: Annotated[
        int | None, typer.Option("--retention", help="Published runs to keep (default 14) [env RECSYS_RETENTION]")
    ] = None,
    memory_budget_mb: Annotated[
        int | None, typer.Option("--memory-budget", help="Scoring memory budget in MB per shard (default 2048)")
    ] = None,
) -> None:
    """Run the nightly flow once, now, and publish the table."""
    from recsys_core.settings import load_settings

    s = load_settings(
        dataset=dataset,
        source=source,
        data_dir=data_dir,
        model=model,
        top_n=top_n,
        split=split,
        seed=seed,
        reject_threshold=reject_threshold,
        offline=offline or None,
        shards=shards,
        dask_address=dask_address,
        retention=retention,
        memory_budget_mb=memory_budget_mb,
    )
    _prepare_logging()
    from prefect.logging.configuration import setup_logging

    from data_checks.runner import preload_in_background
    from flows.nightly import nightly_recommendations

    preload_in_background()

    setup_logging()
    _quiet_tracebacks()
    manifest = _guard(
        nightly_recommendations,
        dataset=s.dataset,
        source=s.source,
        data_dir=str(s.data_dir),
        model=s.model,
        top_n=s.top_n,
        split=s.split,
        seed=s.seed,
        k=s.k,
        reject_threshold=s.reject_threshold,
        memory_budget_mb=s.memory_budget_mb,
        offline=s.offline,
        quality_gate=quality_gate,
        n_shards=s.shards,
        dask_address=s.dask_address,
        retention=s.retention,
    )
    typer.echo(f"\nPublished {manifest['rows']:,} rows for {manifest['users']:,} users")
    typer.echo(f"  table:    {manifest['path']}")
    typer.echo(f"  manifest: {Path(s.data_dir).resolve() / 'recommendations' / '_latest.json'}")
    typer.echo(f"  model:    {manifest['model']}  (split {manifest['split']}, k={manifest['metrics']['k']})")
    typer.echo(
        "  metrics:  " + json.dumps({k: round(v, 4) for k, v in manifest["metrics"].items() if isinstance(v, float)})
    )


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
        from recsys_core.datasets import get_dataset, pinned_digests
        from recsys_core.download import fetch_archive
        from recsys_core.experiment import run_experiment

        spec = get_dataset(s.dataset)
        src = s.source or spec.url
        md5, size = pinned_digests(spec, src)
        archive = fetch_archive(src, s.data_dir / "cache", expected_md5=md5, expected_size=size, offline=s.offline)
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
            raise RecsysError(
                f"No published run in {s.data_dir / 'recommendations'}. Run `recsys run` first, or pass --data-dir."
            )
        rows = pq.read_table(manifest["path"], filters=[("user_id", "=", user)]).to_pandas().sort_values("rank")
        if rows.empty:
            raise RecsysError(
                f"User {user} is not in the latest table (run {manifest['run_id']}, {manifest['users']:,} users)."
            )
        return manifest, rows

    manifest, rows = _guard(work)
    if as_json:
        for rec in rows[["rank", "movie_id", "title", "score", "predicted_rating"]].to_dict("records"):
            typer.echo(json.dumps(rec, default=str))
        return
    typer.echo(f"Top {len(rows)} for user {user} (run {manifest['run_id']}, model {manifest['model']}):")
    for r in rows.itertuples():
        pr = (
            ""
            if r.predicted_rating is None or r.predicted_rating != r.predicted_rating
            else f"  predicted {r.predicted_rating:.2f}"
        )
        typer.echo(f"{r.rank:>3}. {r.title} [{r.movie_id}]  score {r.score:.3f}{pr}")


@app.command()
def models() -> None:
    """List the models `--model` accepts."""
    from recsys_core.models import MODELS

    for name, cls in sorted(MODELS.items()):
        typer.echo(f"{name:<14} {cls.description}")


NO_SERVER_HELP = (
    "`recsys serve` needs a running Prefect server: the temporary server that `recsys run` starts "
    "has no scheduler, so the nightly schedule would never fire.\n"
    "  1. start one:  make server      (or: prefect server start --host 127.0.0.1 --port 4200)\n"
    "  2. point at it: export PREFECT_API_URL=http://127.0.0.1:4200/api\n"
    "  3. then:       recsys serve     (UI: http://127.0.0.1:4200)"
)


def _require_server() -> str:
    """The configured API URL, after checking a server answers there (else the help above)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        typer.secho(f"Error: PREFECT_API_URL is not set.\n{NO_SERVER_HELP}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        message = f"Error: no Prefect server answers at {url} ({exc}).\n{NO_SERVER_HELP}"
        typer.secho(message, fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    return url


@app.command()
def serve(
    dataset: DatasetOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
    top_n: TopNOpt = None,
    split: SplitOpt = None,
    cron: Annotated[str, typer.Option("--cron", help="Schedule, UTC")] = "0 3 * * *",
    quality_gate: Annotated[bool, typer.Option("--quality-gate/--no-quality-gate")] = True,
) -> None:
    """Run the nightly schedule in this process against a Prefect server (Ctrl-C stops it)."""
    from recsys_core.settings import load_settings

    s = load_settings(dataset=dataset, source=source, data_dir=data_dir, model=model, top_n=top_n, split=split)
    _prepare_logging()
    url = _require_server()
    from prefect.schedules import Cron

    from flows.nightly import nightly_recommendations

    params = {
        "dataset": s.dataset,
        "source": s.source,
        "data_dir": str(Path(s.data_dir).resolve()),
        "model": s.model,
        "top_n": s.top_n,
        "split": s.split,
        "quality_gate": quality_gate,
    }
    typer.echo(f"Serving nightly-recommendations/nightly on {url} ({cron} UTC); UI: {url.removesuffix('/api')}")
    _guard(
        nightly_recommendations.serve,
        name="nightly",
        schedules=[Cron(cron, timezone="UTC", slug="nightly-0300-utc")],
        pause_on_shutdown=False,
        parameters=params,
        global_limit=1,
    )


@app.command()
def runs(
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per run")] = False,
) -> None:
    """List published runs (newest first) with their metrics; * marks the one _latest.json names."""
    from recsys_core.settings import load_settings

    s = load_settings(data_dir=data_dir)
    from recsys_core.retention import describe_published_runs

    rows = _guard(describe_published_runs, s.data_dir)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
        return
    if not rows:
        typer.echo(f"No published runs under {s.data_dir / 'recommendations'}.")
        return
    typer.echo(
        f"  {'run_id':<26} {'dt':<10} {'rows':>9}  {'model':<16} {'split':<10} {'rmse':>7} {'ndcg@k':>7} {'cover':>6}"
    )
    for r in rows:
        m = r["metrics"] or {}

        def num(key: str, m: dict[str, Any] = m) -> str:
            v = m.get(key)
            return f"{v:.4f}" if isinstance(v, float) else "-"

        typer.echo(
            f"{'*' if r['latest'] else ' '} {r['run_id']:<26} {r['dt']:<10} {r['rows']:>9,}  "
            f"{r['model'] or '-':<16} {r['split'] or '-':<10} "
            f"{num('rmse'):>7} {num('ndcg_at_k'):>7} {num('coverage'):>6}"
        )


@app.command()
def similar(
    movie: Annotated[int, typer.Option("--movie", help="MovieLens movie id")],
    n: Annotated[int, typer.Option("--n", help="How many movies")] = 10,
    data_dir: DataDirOpt = None,
) -> None:
    """Movies nearest to MOVIE by the published model's learned embedding (cosine)."""
    from recsys_core.settings import load_settings

    s = load_settings(data_dir=data_dir)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    def work() -> tuple[Any, Any]:
        from recsys_core.errors import RecsysError
        from recsys_core.publishing import read_manifest, read_table
        from recsys_core.similarity import load_published_model, similar_movies

        manifest = read_manifest(s.data_dir)
        if manifest is None:
            raise RecsysError(
                f"No published run in {s.data_dir / 'recommendations'}. Run `recsys run` first, or pass --data-dir."
            )
        folder = Path(manifest.get("run_folder") or s.data_dir / "runs" / manifest["run_id"])
        titles = read_table(Path(manifest["path"]))[["movie_id", "title"]].drop_duplicates("movie_id")
        published = load_published_model(folder, manifest["run_id"], titles)
        return published, similar_movies(published, movie, n)

    published, rows = _guard(work)
    name = published.titles.get(movie, f"movie {movie}")
    typer.echo(f"Nearest to {name} [{movie}] by {published.model.label} (run {published.run_id}):")
    for i, r in enumerate(rows.itertuples(), 1):
        typer.echo(f"{i:>3}. {r.title} [{r.movie_id}]  cosine {r.similarity:.3f}")


@app.command()
def synth(
    users: Annotated[int, typer.Option("--users", help="Number of users")],
    movies: Annotated[int, typer.Option("--movies", help="Number of movies")],
    ratings: Annotated[int, typer.Option("--ratings", help="Number of ratings")],
    out: Annotated[Path, typer.Option("--out", help="Archive to write (ml-25m CSV layout)")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes")] = 0,
) -> None:
    """Write a synthetic MovieLens-shaped archive (power-law popularity, half stars), streamed."""

    def work() -> Any:
        from recsys_core.errors import RecsysError
        from recsys_core.synth import write_synthetic_release

        try:
            return write_synthetic_release(out, users, movies, ratings, seed=seed)
        except ValueError as exc:
            raise RecsysError(f"Cannot synthesise that release: {exc}. Adjust --users/--movies/--ratings.") from None

    summary = _guard(work)
    typer.echo(
        f"Wrote {summary.path} ({summary.bytes / 1e6:.1f} MB): {summary.n_ratings:,} ratings, "
        f"{summary.n_users:,} users, {summary.n_movies:,} movies. Use it with "
        f"`recsys run --dataset ml-25m --source {summary.path}`."
    )


@app.command()
def api(
    data_dir: DataDirOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (127.0.0.1: this machine only)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="Seconds between checks of _latest.json for a new night")
    ] = 1.0,
) -> None:
    """Serve the latest published lists over HTTP (page at /, OpenAPI docs at /docs)."""
    from recsys_core.settings import load_settings

    s = load_settings(data_dir=data_dir)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(
        level=logging.DEBUG if state["debug"] else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    data = Path(s.data_dir).resolve()

    def work() -> None:
        import uvicorn

        from recsys_api.app import create_app

        typer.echo(f"Serving {data / 'recommendations'} on http://{host}:{port}/ (docs: /docs); Ctrl-C stops it")
        uvicorn.run(create_app(data, poll_interval=poll_interval), host=host, port=port, log_level="info")

    _guard(work)


if __name__ == "__main__":
    app()
