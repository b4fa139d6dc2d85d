"""`recsys`: run the nightly flow now, evaluate a model, read recommendations.

Flags override RECSYS_* environment variables, which override defaults.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys_cli.temporary_server import isolate_temporary_server, stop_temporary_servers

app = typer.Typer(help="Nightly MovieLens recommendations.", no_args_is_help=True, add_completion=False)
state: dict[str, bool] = {"debug": False}

DatasetOpt = Annotated[
    str | None, typer.Option("--dataset", help="ml-100k, ml-1m, ml-latest-small, ml-25m, ml-32m [env RECSYS_DATASET]")
]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Mirror URL or local archive path [env RECSYS_SOURCE]")]
# A str, not a Path: typer turns '' into Path('.') and an empty --data-dir must be refused.
DataDirOpt = Annotated[
    str | None, typer.Option("--data-dir", help="Where caches, runs and tables live [env RECSYS_DATA_DIR]")
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name; see `recsys models` [env RECSYS_MODEL]")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed for splits and training")]
TopNOpt = Annotated[int | None, typer.Option("--top-n", help="Recommendations per user [env RECSYS_TOP_N]")]
ScaleOpt = Annotated[
    str | None,
    typer.Option("--scale", help="Scale profile: auto (from the data's shape), small or large [env RECSYS_SCALE]"),
]
RefitModeOpt = Annotated[
    str | None,
    typer.Option(
        "--refit-mode",
        help="How the model published is refit on all ratings: warm (default: from the candidate's weights, "
        "its choices fixed), fixed (its choices, from scratch) or search (search again) [env RECSYS_REFIT_MODE]",
    ),
]
SplitOpt = Annotated[
    str | None, typer.Option("--split", help="random, stratified, temporal, u1..u5, ua, ub [env RECSYS_SPLIT]")
]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Use the cached archive, no network")]
RejectThresholdOpt = Annotated[
    float | None, typer.Option("--reject-threshold", help="Largest share of rejected rows (default 0.01)")
]
ShardsOpt = Annotated[int | None, typer.Option("--shards", help="User shards scored in parallel [env RECSYS_SHARDS]")]
DaskAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address", help="Score on an existing Dask cluster, e.g. tcp://host:8786 [env RECSYS_DASK_ADDRESS]"
    ),
]
MemoryBudgetOpt = Annotated[
    int | None, typer.Option("--memory-budget", help="Scoring memory budget in MB per shard (default 2048)")
]
RetrainOpt = Annotated[
    bool, typer.Option("--retrain", help="Train even when the input equals a published night's (default: reuse)")
]
ExploreSlotsOpt = Annotated[
    int | None,
    typer.Option(
        "--explore-slots",
        help="At most this many positions at the end of each list may go to movies no list shows yet "
        "(default: all but the first; 0: lists exactly as the model ranks them) [env RECSYS_EXPLORE_SLOTS]",
    ),
]
ExploreDepthOpt = Annotated[
    int | None,
    typer.Option(
        "--explore-depth",
        help="How deep in each user's ranking explored movies may come from (default 20 x --top-n, at most "
        "max(200, 2 x --top-n)) [env RECSYS_EXPLORE_DEPTH]",
    ),
]
ExploreCoverageOpt = Annotated[
    float | None,
    typer.Option(
        "--explore-coverage",
        help="Explore only until the lists cover this share of the catalogue (default 0.15; 1: fill every "
        "explore slot) [env RECSYS_EXPLORE_COVERAGE]",
    ),
]
TrendOpt = Annotated[
    bool | None,
    typer.Option(
        "--trend/--no-trend",
        help="Lean each night's lists towards the movies rated most in the days before it, by a weight chosen "
        "on the week before the night (default on; it stays off when that week has no ratings) [env RECSYS_TREND]",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="The night, YYYY-MM-DD (UTC): use ratings before its 00:00 UTC (default: today)"),
]


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False) -> None:
    state["debug"] = debug


# Set before Prefect or TensorFlow is imported; a value already in the environment wins.
RUN_ENVIRONMENT = {
    # Library logs reach the Prefect UI only when named as extra loggers (STACK.md).
    "PREFECT_LOGGING_EXTRA_LOGGERS": "recsys_core",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The temporary server's default 20 s start-up wait fails on a busy 2-core machine (STACK.md).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # TensorFlow's C++ and oneDNN start-up banners are noise on a terminal.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def _prepare_environment() -> None:
    for key, value in RUN_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


# Third-party warnings that say nothing about the run, matched by their message's start.
# requests probes urllib3's optional SOCKS support (PySocks) when it is first imported, by
# Great Expectations or TensorFlow in the background preload. Whether the warning shows
# depends on which thread imports first, so a fresh clone's first `make run` could print it.
KNOWN_NOISE = (r"SOCKS support in urllib3 requires",)


def _quiet_known_warnings() -> None:
    for message in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message)


def _prepare_logging() -> None:
    _prepare_environment()
    _quiet_known_warnings()
    logging.getLogger("recsys_core").setLevel(logging.DEBUG if state["debug"] else logging.INFO)
    # Keras' tf.function retracing notices are advice for model authors, not for people running the flow.
    logging.getLogger("tensorflow").setLevel(logging.DEBUG if state["debug"] else logging.ERROR)


def _config(**flags: Any) -> Any:
    """The validated run configuration, or one paragraph on stderr and exit 2 (nothing started)."""
    from recsys_core.config import load_config
    from recsys_core.errors import ConfigError

    try:
        return load_config(**flags)
    except ConfigError as exc:
        if state["debug"]:
            raise
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def flow_parameters(cfg: Any) -> dict[str, Any]:
    """Every NightlyConfig field as the nightly flow's parameters (paths as absolute strings)."""
    params = cfg.model_dump(mode="json")
    params["n_shards"] = params.pop("shards")
    return params


def _data_dir(data_dir: str | None) -> Path:
    """Only the data dir (flag, else RECSYS_DATA_DIR, else ./data), validated and made absolute.

    The read commands ignore every other RECSYS_* setting, so an unrelated one cannot stop them.
    """
    from recsys_core.config import Settings, build_config
    from recsys_core.errors import ConfigError

    chosen = data_dir if data_dir is not None else Settings().data_dir
    try:
        return build_config({} if chosen is None else {"data_dir": chosen}, check_paths=False).data_dir
    except ConfigError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


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
        result = fn(*args, **kwargs)
    except RecsysError as exc:
        if _signal_recorded():  # the error came after (and likely from) the signal
            raise _interrupted(_Terminated("signal 15")) from None
        _fail(exc)
    except KeyboardInterrupt as exc:
        raise _interrupted(exc) from None
    except BaseException as exc:
        signal_exc = termination_in_chain(exc)
        if signal_exc is None and _signal_recorded():
            signal_exc = _Terminated("signal 15")  # library code turned the signal into another error
        if signal_exc is None:
            if isinstance(exc, Exception):
                return _unexpected(exc)
            raise
        raise _interrupted(signal_exc) from None
    if _signal_recorded():  # lost in a stage after the table was published: still a stopped run
        raise _interrupted(_Terminated("signal 15"))
    return result


def _signal_recorded() -> bool:
    """Whether a night in this process was sent SIGTERM (``tasks.termination``). Only a flow
    command imports that module, so the light commands never pay for importing Prefect here."""
    module = sys.modules.get("tasks.termination")
    return bool(module is not None and module.termination_received())


def termination_in_chain(exc: BaseException) -> BaseException | None:
    """The SIGTERM behind ``exc``, if any: Prefect's ``TerminationSignal`` or ours.

    A signal that lands inside library code can come back wrapped. One that lands while
    TensorFlow imports surfaces as a SystemError ("returned a result with an exception set"),
    and TensorFlow's ``tf.data`` re-raises that as a TypeError. The run was still stopped by the
    signal, so it ends with 143 and the interrupted message, not an unexplained error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _Terminated) or type(exc).__name__ == "TerminationSignal":
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _unexpected(exc: Exception) -> Any:
    if state["debug"]:
        raise exc
    typer.secho(f"Error: {type(exc).__name__}: {exc} (rerun with --debug for details)", fg=typer.colors.RED, err=True)
    raise typer.Exit(1) from None


def _interrupted(exc: BaseException) -> typer.Exit:
    """Ctrl-C or an ending signal (``ENDING_SIGNALS``): the flow run is already marked
    Crashed/Cancelled; stop the temporary server, say what is published, exit 128 + the signal."""
    stop_temporary_servers()
    typer.secho(
        "Stopped: the run was interrupted. A table is published only when the publish stage completes, "
        "so _latest.json still names the previous run unless this one had already published.",
        fg=typer.colors.RED,
        err=True,
    )
    if isinstance(exc, _Terminated):
        return typer.Exit(128 + exc.signum)
    return typer.Exit(143 if type(exc).__name__ == "TerminationSignal" else 130)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP, SIGQUIT), raised where Ctrl-C would be so the same cleanup runs;
    exit status 128 + the signal's number."""

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = int(signum)


# Signals that end a flow command like Ctrl-C. SIGHUP (the terminal or SSH session closed) and
# SIGQUIT (Ctrl-\) matter because the temporary server has a session of its own: it no longer
# dies with the command's process group, so the command must live long enough to stop it.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _terminate_on_sigterm() -> None:
    """SIGTERM, SIGHUP or SIGQUIT outside the flow's own handler ends the command like Ctrl-C
    (cleanup runs, the temporary server is stopped)."""

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated(f"signal {signum}", signum)

    for signum in ENDING_SIGNALS:
        signal.signal(signum, handler)


def _start_flow_command(model: str) -> None:
    """Before a flow runs in this process: logging, SIGTERM (SIGHUP, SIGQUIT) as Ctrl-C, Great
    Expectations (then TensorFlow if ``model`` uses it, then matplotlib) imported in the
    background while Prefect's temporary server starts (in a session of its own), Prefect's log
    handlers without tracebacks."""
    _prepare_logging()
    _terminate_on_sigterm()
    from prefect.logging.configuration import setup_logging

    from data_checks.runner import preload_in_background
    from recsys_core.models.keras_utils import import_tensorflow
    from recsys_core.models.registry import model_class
    from recsys_core.runs.report import import_plotting

    tensorflow = [import_tensorflow] if model_class(model).needs_tensorflow else []
    preload_in_background(then=[*tensorflow, import_plotting])
    isolate_temporary_server()
    setup_logging()
    _quiet_tracebacks()


@app.command()
def run(
    dataset: DatasetOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
    top_n: TopNOpt = None,
    split: SplitOpt = None,
    seed: SeedOpt = None,
    offline: OfflineOpt = False,
    reject_threshold: RejectThresholdOpt = None,
    quality_gate: Annotated[
        bool,
        typer.Option(
            "--quality-gate/--no-quality-gate",
            help="Refuse to publish a model worse than the baselines or the published champion",
        ),
    ] = True,
    shards: ShardsOpt = None,
    dask_address: DaskAddressOpt = None,
    retention: Annotated[
        int | None, typer.Option("--retention", help="Nights to keep (default 14) [env RECSYS_RETENTION]")
    ] = None,
    memory_budget_mb: MemoryBudgetOpt = None,
    scale: ScaleOpt = None,
    refit_mode: RefitModeOpt = None,
    as_of: AsOfOpt = None,
    retrain: RetrainOpt = False,
    explore_slots: ExploreSlotsOpt = None,
    explore_depth: ExploreDepthOpt = None,
    explore_coverage: ExploreCoverageOpt = None,
    trend: TrendOpt = None,
) -> None:
    """Run the nightly flow once, now, for one night (default today, UTC), and publish its table."""
    cfg = _config(
        as_of=as_of,
        retrain=retrain or None,
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
        quality_gate=quality_gate,
        scale=scale,
        refit_mode=refit_mode,
        explore_slots=explore_slots,
        explore_depth=explore_depth,
        explore_coverage=explore_coverage,
        trend=trend,
    )
    _start_flow_command(cfg.model)
    from flows.nightly import nightly_recommendations

    manifest = _guard(nightly_recommendations, **flow_parameters(cfg))
    typer.echo(
        f"\nPublished {manifest['rows']:,} rows for {manifest['users']:,} users, night {manifest['as_of']}"
        + ("" if manifest.get("latest", True) else " (an older night: _latest.json stays at the newest)")
    )
    typer.echo(f"  table:    {manifest['path']}")
    typer.echo(f"  manifest: {cfg.data_dir / 'recommendations' / '_latest.json'}")
    typer.echo(f"  model:    {manifest['model']}  (split {manifest['split']}, k={manifest['metrics']['k']})")
    if manifest.get("model_reused_from"):
        typer.echo(
            f"            reused from run {manifest['model_reused_from']}: same ratings, settings and code, so "
            "the model was not trained again (--retrain trains anyway)"
            + (
                "; the trend refitted its ranker on the ratings before last week"
                if (manifest.get("trend") or {}).get("fit_seconds")
                else ""
            )
        )
    typer.echo(
        "  metrics:  " + json.dumps({k: round(v, 4) for k, v in manifest["metrics"].items() if isinstance(v, float)})
    )
    online = manifest.get("online_metrics")
    if online and online.get("users"):
        pop = online["baselines"]["popularity"]
        typer.echo(
            f"  online:   night {online['previous_as_of']}'s lists vs {online['users']:,} users' ratings since: "
            f"NDCG@{online['k']} {online['ndcg_at_k']:.4f} (popularity {pop['ndcg_at_k']:.4f}), "
            f"hit rate {online['hit_rate_at_k']:.4f} (popularity {pop['hit_rate_at_k']:.4f})"
        )
    typer.echo(f"  report:   {Path(manifest['run_folder']) / 'report.html'}")


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="First night, YYYY-MM-DD (UTC)")],
    end: Annotated[str, typer.Option("--to", help="Last night, YYYY-MM-DD (UTC), included")],
    every: Annotated[str, typer.Option("--every", help="Step between nights: 1d, 7d, ...")] = "1d",
    dataset: DatasetOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
    top_n: TopNOpt = None,
    split: SplitOpt = None,
    seed: SeedOpt = None,
    offline: OfflineOpt = False,
    quality_gate: Annotated[
        bool,
        typer.Option("--quality-gate/--no-quality-gate", help="Refuse to publish a night whose model fails the gate"),
    ] = True,
    retention: Annotated[
        int | None,
        typer.Option("--retention", help="Nights to keep (default 14; raise it to keep a long backfill)"),
    ] = None,
    scale: ScaleOpt = None,
    refit_mode: RefitModeOpt = None,
    reject_threshold: RejectThresholdOpt = None,
    shards: ShardsOpt = None,
    dask_address: DaskAddressOpt = None,
    memory_budget_mb: MemoryBudgetOpt = None,
    retrain: RetrainOpt = False,
    explore_slots: ExploreSlotsOpt = None,
    explore_depth: ExploreDepthOpt = None,
    explore_coverage: ExploreCoverageOpt = None,
    trend: TrendOpt = None,
) -> None:
    """Run the nightly flow for each night from --from to --to, oldest first (resumable)."""
    from recsys_core.errors import ConfigError
    from recsys_core.nights.calendar import future_night_problem, nights_between, parse_as_of, parse_every

    try:
        first, last = parse_as_of(start, "--from"), parse_as_of(end, "--to")
        assert first is not None and last is not None
        nights = nights_between(first, last, parse_every(every))
        if future_night_problem(last):
            raise ConfigError(f"--to {future_night_problem(last)}.")
    except ConfigError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    cfg = _config(
        as_of=last,
        retrain=retrain or None,
        reject_threshold=reject_threshold,
        shards=shards,
        dask_address=dask_address,
        memory_budget_mb=memory_budget_mb,
        dataset=dataset,
        source=source,
        data_dir=data_dir,
        model=model,
        top_n=top_n,
        split=split,
        seed=seed,
        offline=offline or None,
        quality_gate=quality_gate,
        retention=retention,
        scale=scale,
        refit_mode=refit_mode,
        explore_slots=explore_slots,
        explore_depth=explore_depth,
        explore_coverage=explore_coverage,
        trend=trend,
    )
    _start_flow_command(cfg.model)
    from flows.backfill import backfill_recommendations

    params = flow_parameters(cfg)
    params.pop("as_of")
    typer.echo(f"Backfilling {len(nights)} nights, {nights[0]} to {nights[-1]} every {every}", err=True)
    rows = _guard(backfill_recommendations, start=first, end=last, every=every, parameters=params)
    counts = {status: sum(r["status"] == status for r in rows) for status in ("published", "skipped")}
    typer.echo(
        f"\nBackfill done: {counts['published']} nights published, {counts['skipped']} already published "
        f"(skipped). `recsys runs --data-dir {cfg.data_dir}` lists them."
    )


@app.command()
def evaluate(
    dataset: DatasetOpt = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="u1..u5, ua, ub, random, stratified, temporal (default: u1 where the release ships it)"
        ),
    ] = None,
    model: ModelOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    seed: SeedOpt = None,
    k: Annotated[int | None, typer.Option("--k", help="Ranking cut-off (default 10) [env RECSYS_K]")] = None,
    scale: ScaleOpt = None,
) -> None:
    """Train and evaluate without publishing; prints one JSON object of metrics."""
    cfg = _config(
        dataset=dataset, source=source, data_dir=data_dir, model=model, seed=seed, split=split, k=k, scale=scale
    )
    if split is None and "RECSYS_SPLIT" not in os.environ:
        from recsys_core.data.datasets import get_dataset

        if "u1" in get_dataset(cfg.dataset).folds:  # the release's own first fold, comparable to papers
            cfg = cfg.model_copy(update={"split": "u1"})
    _prepare_environment()
    logging.basicConfig(level=logging.DEBUG if state["debug"] else logging.WARNING, stream=sys.stderr)

    def work() -> dict[str, Any]:
        from data_checks.gate import check_raw_data
        from recsys_core.data.datasets import get_dataset, pinned_digests
        from recsys_core.data.download import fetch_archive
        from recsys_core.pipeline import run_experiment

        spec = get_dataset(cfg.dataset)
        src = cfg.source or spec.url
        md5, size = pinned_digests(spec, src)
        archive = fetch_archive(src, cfg.cache_dir, expected_md5=md5, expected_size=size, offline=cfg.offline)
        return run_experiment(
            archive.path,
            spec,
            check_raw_data,  # the nightly run's data gate, so both judge the same data
            split=cfg.split,
            model=cfg.model,
            seed=cfg.seed,
            k=cfg.k,
            reject_threshold=cfg.reject_threshold,
            scale=cfg.scale,
        )

    result = _guard(work)
    typer.echo(json.dumps(result, default=float))


def _latest_manifest(data_dir: Path) -> dict[str, Any]:
    """The manifest of the latest run whose table files exist, or a RecsysError saying what to do."""
    from recsys_core.errors import RecsysError
    from recsys_core.publishing.table import read_manifest, require_table_files

    manifest = read_manifest(data_dir)
    if manifest is None:
        raise RecsysError(
            f"No published run in {data_dir / 'recommendations'}. Run `recsys run` first, or pass --data-dir."
        )
    require_table_files(manifest, data_dir)
    return manifest


@app.command()
def recommend(
    user: Annotated[int, typer.Option("--user", help="MovieLens user id")],
    top_n: Annotated[int | None, typer.Option("--top-n", min=1, help="Show only the first N (default: all)")] = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table")] = False,
) -> None:
    """Show a user's list from the latest published table."""
    root = _data_dir(data_dir)

    def work() -> tuple[dict[str, Any], Any]:
        import pyarrow.parquet as pq

        from recsys_core.errors import RecsysError

        manifest = _latest_manifest(root)
        rows = pq.read_table(manifest["path"], filters=[("user_id", "=", user)]).to_pandas().sort_values("rank")
        if rows.empty:
            raise RecsysError(
                f"User {user} is not in the latest table (run {manifest['run_id']}, {manifest['users']:,} users)."
            )
        return manifest, rows.head(top_n) if top_n else rows

    manifest, rows = _guard(work)
    # predicted_rating is a nullable float: a ranking-only model (ease, mult_dae, ...) leaves it NA
    predicted = rows["predicted_rating"]
    rows = rows.assign(predicted_rating=predicted.astype(object).where(predicted.notna(), None))
    if as_json:
        for rec in rows[["rank", "movie_id", "title", "score", "predicted_rating"]].to_dict("records"):
            typer.echo(json.dumps(rec, default=str))
        return
    typer.echo(f"Top {len(rows)} for user {user} (run {manifest['run_id']}, model {manifest['model']}):")
    for r in rows.itertuples():
        pr = "" if r.predicted_rating is None else f"  predicted {r.predicted_rating:.2f}"
        typer.echo(f"{r.rank:>3}. {r.title} [{r.movie_id}]  score {r.score:.3f}{pr}")


@app.command()
def models() -> None:
    """List the models `--model` accepts (* marks the default)."""
    from recsys_core.model_names import DEFAULT_MODEL
    from recsys_core.models import MODELS

    for name, cls in sorted(MODELS.items()):
        mark = "*" if name == DEFAULT_MODEL else " "
        default = " (default)" if name == DEFAULT_MODEL else ""
        typer.echo(f"{mark} {name:<14} {cls.description}{default}")


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
    cfg = _config(dataset=dataset, source=source, data_dir=data_dir, model=model, top_n=top_n, split=split)
    _prepare_logging()
    url = _require_server()
    from prefect.schedules import Cron

    from flows.nightly import nightly_recommendations

    params = flow_parameters(cfg.model_copy(update={"quality_gate": quality_gate}))
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
    """List published nights (newest first): each night's current run, its metrics and how its
    previous night's lists did since (online NDCG@k, hit rate); * marks the night _latest.json names."""
    root = _data_dir(data_dir)
    from recsys_core.errors import RecsysError
    from recsys_core.publishing.retention import describe_published_runs

    problem: RecsysError | None = None
    try:  # an unreadable manifest or missing table must be said, but the run list still helps
        _latest_manifest(root)
    except RecsysError as exc:
        problem = exc if (root / "recommendations" / "_latest.json").exists() else None
    rows = _guard(describe_published_runs, root, ignore_manifest_errors=True)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
    elif not rows:
        typer.echo(f"No published runs under {root / 'recommendations'}.")
    else:
        typer.echo(format_runs_table(rows))
    if problem is not None:
        typer.secho(f"Error: {problem}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def format_runs_table(rows: list[dict[str, Any]]) -> str:
    """Columns sized to their widest value, numbers right-aligned.

    ``online`` columns: the previous night's lists scored on the ratings that arrived up to this
    night (``online_metrics`` in the manifest), so they describe the night before this row.
    """

    def num(values: dict[str, Any] | None, key: str) -> str:
        v = (values or {}).get(key)
        return f"{v:.4f}" if isinstance(v, float) else "-"

    header = ["", "night", "run_id", "rows", "model", "split", "rmse", "ndcg@k", "cover", "online ndcg", "online hit"]
    body = [
        [
            "*" if r["latest"] else "",
            r["dt"],
            r["run_id"],
            f"{r['rows']:,}",
            r["model"] or "-",
            r["split"] or "-",
            num(r["metrics"], "rmse"),
            num(r["metrics"], "ndcg_at_k"),
            num(r["metrics"], "coverage"),
            num(r.get("online_metrics"), "ndcg_at_k"),
            num(r.get("online_metrics"), "hit_rate_at_k"),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    right = {3, 6, 7, 8, 9, 10}
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [header, *body]
    )


@app.command()
def similar(
    movie: Annotated[int, typer.Option("--movie", help="MovieLens movie id")],
    top_n: Annotated[int, typer.Option("--top-n", min=1, help="How many movies")] = 10,
    data_dir: DataDirOpt = None,
) -> None:
    """Movies nearest to MOVIE by the published model's learned embedding (cosine)."""
    root = _data_dir(data_dir)
    _prepare_environment()

    def work() -> tuple[dict[str, Any], Any]:
        from recsys_core.publishing.table import read_table
        from recsys_core.serving.similarity import similar_from_run

        manifest = _latest_manifest(root)
        folder = Path(manifest.get("run_folder") or root / "runs" / manifest["run_id"])
        titles = read_table(Path(manifest["path"]))[["movie_id", "title"]].drop_duplicates("movie_id")
        return manifest, similar_from_run(folder, manifest["run_id"], movie, top_n, titles)

    manifest, rows = _guard(work)
    named = rows.attrs.get("query_title") or f"movie {movie}"
    typer.echo(f"Nearest to {named} [{movie}] by {manifest['model']} (run {manifest['run_id']}):")
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
        from recsys_core.data.synth import write_synthetic_release
        from recsys_core.errors import RecsysError

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


@app.command("export-log")
def export_log(
    out: Annotated[str, typer.Option("--out", help="Folder to create for the log (must not exist, or be empty)")],
    dataset: DatasetOpt = None,
    source: SourceOpt = None,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="Where a downloaded archive is cached [env RECSYS_DATA_DIR]")
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Use the cached archive, no network")] = False,
) -> None:
    """Write a MovieLens release as a ratings log folder (one Parquet file per UTC day), for --dataset log."""
    cfg = _config(dataset=dataset, source=source, data_dir=data_dir, offline=offline or None)
    from recsys_core.config import absolute
    from recsys_core.data.datasets import LOG_DATASET
    from recsys_core.data.ratings_log import check_export_target
    from recsys_core.errors import ConfigError

    target = absolute(Path(out), Path.cwd())
    try:
        if cfg.dataset == LOG_DATASET:
            raise ConfigError(
                "--dataset log is already a ratings log; export-log writes one from a MovieLens release. "
                "Pass the release with --dataset (e.g. ml-100k) and --source (its archive or a mirror URL)."
            )
        if not out.strip():
            raise ConfigError("--out is empty; pass the folder to create for the ratings log.")
        check_export_target(target)
    except ConfigError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=logging.DEBUG if state["debug"] else logging.WARNING, stream=sys.stderr)

    def work() -> dict[str, Any]:
        from recsys_core.data.datasets import get_dataset, pinned_digests
        from recsys_core.data.download import fetch_archive
        from recsys_core.data.ratings_log import export_log as write_log
        from recsys_core.data.readers import read_release

        spec = get_dataset(cfg.dataset)
        src = cfg.source or spec.url
        md5, size = pinned_digests(spec, src)
        archive = fetch_archive(src, cfg.cache_dir, expected_md5=md5, expected_size=size, offline=cfg.offline)
        return write_log(read_release(archive.path, spec.layout, with_folds=False), spec, target)

    summary = _guard(work)
    skipped = summary["malformed_not_written"]
    typer.echo(
        f"Wrote {summary['ratings']:,} ratings in {summary['days']:,} day partitions "
        f"({summary['first_day']} to {summary['last_day']}) and {summary['movies']:,} movies to {summary['path']}"
        + (f"; {skipped:,} malformed line(s) of the release were left out" if skipped else "")
        + f". Use it with `recsys run --dataset log --source {summary['path']}`."
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
    data = _data_dir(data_dir)
    _prepare_environment()
    logging.basicConfig(
        level=logging.DEBUG if state["debug"] else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )

    def work() -> None:
        import uvicorn

        from recsys_api.app import create_app

        typer.echo(f"Serving {data / 'recommendations'} on http://{host}:{port}/ (docs: /docs); Ctrl-C stops it")
        uvicorn.run(create_app(data, poll_interval=poll_interval), host=host, port=port, log_level="info")

    _guard(work)


if __name__ == "__main__":
    app()
