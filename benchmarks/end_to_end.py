"""Benchmark: the whole nightly flow on a synthetic ml-25m-shaped release.

    python -m benchmarks.end_to_end --ratings 25000000 [--users N --movies N] [--model NAME]
        [--shards 2] [--reference-ratings 1000000] [--work-dir DIR] [--results FILE]

Writes a synthetic archive in the ml-25m CSV layout (``recsys_core.data.synth``), runs
``nightly-recommendations`` on it in this process (Prefect's temporary local server), and
reports wall seconds per stage (task runs, read back from the Prefect API as the UI shows
them), total wall time and peak RSS, overall and per stage: a background thread samples this
process's resident memory every 0.1 s, and a stage's peak is the highest sample taken while
its task run was running (stages overlap only where Prefect ran them concurrently). A smaller
reference run (``--reference-ratings``) goes first in the same process, so each stage's growth
is reported as a ratio, not only as seconds on a machine that may be busy. Prints one JSON
line and writes benchmarks/results/end_to_end.md (or ``--results``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "end_to_end.md"
MACHINE = "2-core x86_64 VM, 24 GB RAM, no GPU (the project's CI/dev machine size)"
ML25M_USERS, ML25M_MOVIES = 162_541, 59_047


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class RssSampler:
    """Samples this process's RSS in a daemon thread: (unix time, bytes) every ``interval`` s."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), current_rss_bytes()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), current_rss_bytes()))

    def peak_mb(self, start: float, end: float) -> float | None:
        """Highest sample in [start, end] (MB); the last sample before ``start`` counts too, so a
        stage shorter than the interval still gets the memory it started with."""
        before = [rss for t, rss in self.samples if t < start]
        inside = [rss for t, rss in self.samples if start <= t <= end]
        values = inside + before[-1:]
        return round(max(values) / 1024**2, 0) if values else None


def stage_windows(flow_run_id: Any) -> list[dict[str, Any]]:
    """Task runs of the flow run (the same ones ``read_stage_timings`` reports) with their start and
    end as unix times, in start order."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    runs = sorted((r for r in runs if r.start_time and r.end_time), key=lambda r: r.start_time)
    return [
        {
            "stage": r.name,
            "seconds": r.total_run_time.total_seconds(),
            "start": r.start_time.timestamp(),
            "end": r.end_time.timestamp(),
        }
        for r in runs
    ]


def stage_peaks(windows: list[dict[str, Any]], sampler: RssSampler) -> dict[str, float | None]:
    """Peak RSS (MB) per stage from the samples taken while it ran."""
    return {w["stage"]: sampler.peak_mb(w["start"], w["end"]) for w in windows}


def shape_for(n_ratings: int) -> tuple[int, int]:
    """Users and movies scaled like ml-25m (users and movies grow sub-linearly with ratings)."""
    scale = n_ratings / 25_000_000
    users = max(200, int(ML25M_USERS * scale))
    movies = max(300, int(ML25M_MOVIES * scale**0.6))
    return users, movies


def run_once(
    n_ratings: int,
    work: Path,
    *,
    model: str | None,
    shards: int,
    seed: int,
    flow_params: dict[str, Any] | None = None,
    shape: tuple[int | None, int | None] = (None, None),
) -> dict[str, Any]:
    """Synthesise, run the flow, collect stage timings and memory; returns a result record.

    ``shape`` gives users and movies (None: scaled like ml-25m from ``n_ratings``)."""
    from flows.nightly import nightly_recommendations
    from recsys_core.data.synth import write_synthetic_release

    scaled = shape_for(n_ratings)
    users, movies = shape[0] or scaled[0], shape[1] or scaled[1]
    archive = work / f"synth-{n_ratings}-{users}x{movies}.zip"
    start = time.perf_counter()
    write_synthetic_release(archive, users, movies, n_ratings, seed=seed)
    synth_s = time.perf_counter() - start
    params: dict[str, Any] = {
        "dataset": "ml-25m",
        "source": str(archive),
        "data_dir": str(work / f"data-{n_ratings}"),
        "top_n": 10,
        "seed": seed,
        "n_shards": shards,
        "quality_gate": False,  # measure the pipeline, not whether the synthetic data is learnable
    }
    if model:
        params["model"] = model
    params.update(flow_params or {})
    load_before = os.getloadavg()
    rss_before = current_rss_bytes() / 1024**2
    start = time.perf_counter()
    with RssSampler() as sampler:
        state = nightly_recommendations(**params, return_state=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    manifest = state.result() if state.is_completed() else None
    stages = stage_windows(state.state_details.flow_run_id)
    return {
        "ratings": n_ratings,
        "users": users,
        "movies": movies,
        "synth_s": round(synth_s, 1),
        "flow_s": round(wall, 1),
        "state": state.name,
        "stages": {s["stage"]: round(s["seconds"], 1) for s in stages},
        "peak_rss_mb": round(peak_rss_mb(), 0),
        "rss_before_flow_mb": round(rss_before, 0),
        "stage_peak_rss_mb": stage_peaks(stages, sampler),
        # Other people share this machine: 1/5/15-minute load averages when the flow started and ended.
        "load_avg_start": [round(v, 2) for v in load_before],
        "load_avg_end": [round(v, 2) for v in load_after],
        "rows": manifest["rows"] if manifest else None,
        "model": manifest["model"] if manifest else model,
        "flow_params": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in (flow_params or {}).items()},
        "metrics": manifest["metrics"] if manifest else None,
        "trend": {k: v for k, v in (manifest.get("trend") or {}).items() if k != "trials"} if manifest else None,
    }


def stage_key(name: str) -> str:
    """Task run names carry a suffix (train-3f2); strip it to line stages up across runs."""
    head, _, tail = name.rpartition("-")
    return head if head and len(tail) == 3 else name


def read_result(path: Path) -> dict[str, Any]:
    """The run record (the ```json block) of an earlier results file, for before/after columns."""
    text = Path(path).read_text()
    block = text.split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)


def _trend(trend: dict[str, Any]) -> str:
    """The night's trend choice in a few words (from the manifest)."""
    if trend.get("reason"):
        return f"off ({trend['reason']})"
    return (
        f"weight {trend['beta']:g} on {trend['days']} days, newness {trend.get('newness') or 0:g}, chosen on "
        f"{trend['users']:,} returning users "
        f"(week-before NDCG@10 {trend['ndcg_ranked']:.4f} -> {trend['ndcg_trend']:.4f}, ranker refit "
        f"{trend['fit_seconds']:.1f} s)"
    )


def _mb(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "-"


def render_markdown(
    reference: dict[str, Any] | None,
    big: dict[str, Any],
    command: str,
    before: dict[str, Any] | None = None,
    notes: str = "",
) -> str:
    """The results page; ``before`` (an earlier run record) adds before-columns per stage."""
    ref_stages = {stage_key(k): v for k, v in (reference or {}).get("stages", {}).items()}
    before_s = {stage_key(k): v for k, v in (before or {}).get("stages", {}).items()}
    before_rss = {stage_key(k): v for k, v in (before or {}).get("stage_peak_rss_mb", {}).items()}
    peaks = big.get("stage_peak_rss_mb", {})
    lines = [
        "# End-to-end benchmark: the nightly flow on a synthetic MovieLens-shaped release",
        "",
        f"Machine: {MACHINE}; Python {platform.python_version()}. Command: `{command}`.",
        "",
        f"Run: {big['ratings']:,} ratings, {big['users']:,} users, {big['movies']:,} movies; model "
        f"`{big['model']}`; flow state {big['state']}; {big['rows'] or 0:,} rows published"
        + (f"; night {big['flow_params']['as_of']}" if big.get("flow_params", {}).get("as_of") else "")
        + (f"; trend {_trend(big['trend'])}" if big.get("trend") else "")
        + ".",
        f"Wall time of the flow: **{big['flow_s'] / 60:.1f} min** (synthesising the archive took "
        f"{big['synth_s']:.0f} s more); peak RSS of the process: **{big['peak_rss_mb'] / 1024:.1f} GB** "
        f"(RSS when the flow started: {_mb(big.get('rss_before_flow_mb'))} MB).",
        f"Load average (1/5/15 min) at the start of the flow {big.get('load_avg_start')}, at the end "
        f"{big.get('load_avg_end')}: this 2-core machine is shared, so other work may have slowed stages.",
        "",
        "`peak MB` is the highest resident memory of the process sampled (every 0.1 s) while the stage ran.",
        "",
    ]
    if reference:
        lines += [
            f"Reference run in the same process first: {reference['ratings']:,} ratings, flow "
            f"{reference['flow_s']:.0f} s. `x ref` is the big run's stage time over the reference's.",
            "",
        ]
    if before:
        lines += [
            f"`before`: {before['ratings']:,} ratings, flow {before['flow_s'] / 60:.1f} min, peak RSS "
            f"{before['peak_rss_mb'] / 1024:.1f} GB (stage names changed where the flow did).",
            "",
        ]
    header = ["stage", "seconds", "share", "peak MB"]
    header += ["x ref"] if reference else []
    header += ["before s", "before peak MB"] if before else []
    lines += ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    total = sum(big["stages"].values()) or 1.0
    for name, secs in sorted(big["stages"].items(), key=lambda kv: -kv[1]):
        cells = [name, f"{secs:.1f}", f"{secs / total:.0%}", _mb(peaks.get(name))]
        if reference:
            ref = ref_stages.get(stage_key(name))
            cells.append(f"{secs / ref:.1f}" if ref else "-")
        if before:
            old = before_s.get(stage_key(name))
            cells += [f"{old:.1f}" if old is not None else "-", _mb(before_rss.get(stage_key(name)))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "```json", json.dumps(big), "```", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: scaled like ml-25m from --ratings")
    parser.add_argument("--movies", type=int, default=None, help="default: scaled like ml-25m from --ratings")
    parser.add_argument("--reference-ratings", type=int, default=1_000_000, help="0 to skip the reference run")
    parser.add_argument("--model", default=None, help="default: the flow's default model")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None, help="kept if given; a temp dir otherwise")
    parser.add_argument(
        "--refit-max-ratings",
        type=int,
        default=None,
        help="the flow's refit_max_ratings (default: the flow's); -1 always refits",
    )
    parser.add_argument(
        "--as-of",
        default=None,
        help="the night, YYYY-MM-DD (default: today, after the synthetic ratings end on 2019-11-21; "
        "2019-11-22 is a live night, whose week before it has ratings, so the trend is chosen)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results file (default: %(default)s)")
    parser.add_argument("--before", type=Path, default=None, help="an earlier results file: adds before-columns")
    parser.add_argument("--notes", type=Path, default=None, help="markdown appended to the results file")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    flow_params: dict[str, Any] = {}
    if args.refit_max_ratings is not None:
        flow_params["refit_max_ratings"] = None if args.refit_max_ratings < 0 else args.refit_max_ratings
    if args.as_of:
        flow_params["as_of"] = date.fromisoformat(args.as_of)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="recsys-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = functools.partial(run_once, model=args.model, shards=args.shards, seed=args.seed, flow_params=flow_params)
        reference = run(args.reference_ratings, work) if args.reference_ratings else None
        big = run(args.ratings, work, shape=(args.users, args.movies))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {"reference": reference, "run": big}
    print(json.dumps(result))
    if not args.no_write:
        command = "python -m benchmarks.end_to_end " + " ".join(argv if argv is not None else sys.argv[1:])
        before = read_result(args.before) if args.before else None
        notes = args.notes.read_text() if args.notes else ""
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(render_markdown(reference, big, command.strip(), before, notes))


if __name__ == "__main__":
    main()
