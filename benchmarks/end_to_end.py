"""Benchmark: the whole nightly flow on a synthetic ml-25m-shaped release.

    python -m benchmarks.end_to_end --ratings 25000000 [--model NAME] [--shards 2]
        [--reference-ratings 1000000] [--work-dir DIR]

Writes a synthetic archive in the ml-25m CSV layout (``recsys_core.data.synth``), runs
``nightly-recommendations`` on it in this process (Prefect's temporary local server), and
reports wall seconds per stage (task runs, read back from the Prefect API as the UI shows
them), total wall time and peak RSS. A smaller reference run (``--reference-ratings``) goes
first in the same process, so each stage's growth is reported as a ratio, not only as
seconds on a machine that may be busy. Prints one JSON line and writes
benchmarks/results/end_to_end.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "end_to_end.md"
MACHINE = "2-core x86_64 VM, 24 GB RAM, no GPU (the project's CI/dev machine size)"
ML25M_USERS, ML25M_MOVIES = 162_541, 59_047


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shape_for(n_ratings: int) -> tuple[int, int]:
    """Users and movies scaled like ml-25m (users and movies grow sub-linearly with ratings)."""
    scale = n_ratings / 25_000_000
    users = max(200, int(ML25M_USERS * scale))
    movies = max(300, int(ML25M_MOVIES * scale**0.6))
    return users, movies


def run_once(
    n_ratings: int, work: Path, *, model: str | None, shards: int, seed: int, flow_params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Synthesise, run the flow, collect stage timings; returns a result record."""
    from flows.nightly import nightly_recommendations
    from recsys_core.data.synth import write_synthetic_release
    from tasks.report import read_stage_timings

    users, movies = shape_for(n_ratings)
    archive = work / f"synth-{n_ratings}.zip"
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
    start = time.perf_counter()
    state = nightly_recommendations(**params, return_state=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    manifest = state.result() if state.is_completed() else None
    stages = read_stage_timings(state.state_details.flow_run_id)
    return {
        "ratings": n_ratings,
        "users": users,
        "movies": movies,
        "synth_s": round(synth_s, 1),
        "flow_s": round(wall, 1),
        "state": state.name,
        "stages": {s["stage"]: round(s["seconds"], 1) for s in stages},
        "peak_rss_mb": round(peak_rss_mb(), 0),
        # Other people share this machine: 1/5/15-minute load averages when the flow started and ended.
        "load_avg_start": [round(v, 2) for v in load_before],
        "load_avg_end": [round(v, 2) for v in load_after],
        "rows": manifest["rows"] if manifest else None,
        "model": manifest["model"] if manifest else model,
        "flow_params": flow_params or {},
        "metrics": manifest["metrics"] if manifest else None,
    }


def stage_key(name: str) -> str:
    """Task run names carry a suffix (train-3f2); strip it to line stages up across runs."""
    head, _, tail = name.rpartition("-")
    return head if head and len(tail) == 3 else name


def render_markdown(reference: dict[str, Any] | None, big: dict[str, Any], command: str) -> str:
    ref_stages = {stage_key(k): v for k, v in (reference or {}).get("stages", {}).items()}
    lines = [
        "# End-to-end benchmark: the nightly flow on a synthetic ml-25m-shaped release",
        "",
        f"Machine: {MACHINE}; Python {platform.python_version()}. Command: `{command}`.",
        "",
        f"Run: {big['ratings']:,} ratings, {big['users']:,} users, {big['movies']:,} movies; model "
        f"`{big['model']}`; flow state {big['state']}; {big['rows'] or 0:,} rows published.",
        f"Wall time of the flow: **{big['flow_s'] / 60:.1f} min** (synthesising the archive took "
        f"{big['synth_s']:.0f} s more); peak RSS of the process: **{big['peak_rss_mb'] / 1024:.1f} GB**.",
        f"Load average (1/5/15 min) at the start of the flow {big.get('load_avg_start')}, at the end "
        f"{big.get('load_avg_end')}: this 2-core machine is shared, so other work may have slowed stages.",
        "",
    ]
    if reference:
        lines += [
            f"Reference run in the same process first: {reference['ratings']:,} ratings, flow "
            f"{reference['flow_s']:.0f} s. `x ref` is the big run's stage time over the reference's.",
            "",
        ]
    lines += ["| stage | seconds | share | x ref |", "| --- | ---: | ---: | ---: |"]
    total = sum(big["stages"].values()) or 1.0
    for name, secs in sorted(big["stages"].items(), key=lambda kv: -kv[1]):
        ref = ref_stages.get(stage_key(name))
        ratio = f"{secs / ref:.1f}" if ref else "-"
        lines.append(f"| {name} | {secs:.1f} | {secs / total:.0%} | {ratio} |")
    lines += ["", "```json", json.dumps(big), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=25_000_000)
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
    parser.add_argument("--no-write", action="store_true", help="do not rewrite benchmarks/results/end_to_end.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    flow_params: dict[str, Any] = {}
    if args.refit_max_ratings is not None:
        flow_params["refit_max_ratings"] = None if args.refit_max_ratings < 0 else args.refit_max_ratings
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="recsys-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        reference = None
        if args.reference_ratings:
            reference = run_once(
                args.reference_ratings,
                work,
                model=args.model,
                shards=args.shards,
                seed=args.seed,
                flow_params=flow_params,
            )
        big = run_once(
            args.ratings, work, model=args.model, shards=args.shards, seed=args.seed, flow_params=flow_params
        )
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {"reference": reference, "run": big}
    print(json.dumps(result))
    if not args.no_write:
        command = "python -m benchmarks.end_to_end " + " ".join(argv if argv is not None else sys.argv[1:])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(render_markdown(reference, big, command.strip()))


if __name__ == "__main__":
    main()
