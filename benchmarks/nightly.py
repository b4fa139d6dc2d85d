"""Benchmark: `recsys run` on ml-100k as a user runs it, per stage, trained and reused.

    python -m benchmarks.nightly [--archive ../shared/datasets/ml-100k.zip] [--repeats 3] [--model NAME]

Each repeat runs the `recsys` command three times in a fresh data dir, as separate processes (so
the wall time includes start-up: imports and Prefect's temporary server):
  1. first: the first night of a data dir: the model is trained (candidate + refit), no champion;
  2. retrained: the same night with `--retrain`: trained again, and the published champion is
     re-scored for the gate (the full nightly path);
  3. reused: the same night again; its input is unchanged, so the published model is reused
     (runs/reuse.py) and only the data stages, scoring and publishing run.
The venv and the archive cache are warm (the archive is local). Per-stage seconds come from the
run folder's timings.json (task runs as the Prefect UI shows them). Reports medians over the
repeats and ratios between the modes of the same repeats (run back to back on the same
machine), and writes benchmarks/results/nightly.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "nightly.md"
MACHINE = "2-core x86_64 VM, 24 GB RAM, no GPU (the project's CI/dev machine size)"
MODES = ("first", "retrained", "reused")


def run_cli(archive: Path, data_dir: Path, model: str | None, *, retrain: bool = False) -> dict[str, Any]:
    """One `recsys run` in a subprocess; wall seconds and the run's stage timings."""
    command = [str(Path(sys.executable).parent / "recsys"), "run", "--source", str(archive)]
    command += (
        ["--data-dir", str(data_dir)] + (["--model", model] if model else []) + (["--retrain"] if retrain else [])
    )
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"recsys run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    manifest = json.loads((data_dir / "recommendations" / "_latest.json").read_text())
    timings_file = Path(manifest["run_folder"]) / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else []  # the API may not have answered
    stages: dict[str, float] = {}
    for row in timings:
        stages[row["stage"]] = stages.get(row["stage"], 0.0) + float(row["seconds"])
    return {
        "wall_s": wall,
        "stages": stages,
        "reused_from": manifest.get("model_reused_from"),
        "ndcg_at_k": manifest["metrics"].get("ndcg_at_k"),
    }


def stage_name(task_run_name: str) -> str:
    """`train-1a2` -> `train` (Prefect appends a short id to each task run's name)."""
    head, _, tail = task_run_name.rpartition("-")
    return head if head and len(tail) == 3 else task_run_name


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of wall time and of each stage's seconds over the repeats."""
    per_stage: dict[str, list[float]] = {}
    for run in runs:
        merged: dict[str, float] = {}
        for name, seconds in run["stages"].items():
            merged[stage_name(name)] = merged.get(stage_name(name), 0.0) + seconds
        for name, seconds in merged.items():
            per_stage.setdefault(name, []).append(seconds)
    return {
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "walls": [round(r["wall_s"], 1) for r in runs],
        "stages": {name: statistics.median(values) for name, values in per_stage.items()},
        "stages_total_s": statistics.median(sum(r["stages"].values()) for r in runs),
    }


def render_markdown(summary: dict[str, dict[str, Any]], command: str, repeats: int) -> str:
    modes = list(summary)
    base = summary["retrained"] if "retrained" in summary else summary[modes[0]]
    names = sorted({n for m in modes for n in summary[m]["stages"]}, key=lambda n: -base["stages"].get(n, 0.0))

    def row(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        "# Nightly run on ml-100k, per stage",
        "",
        f"Machine: {MACHINE}. Command: `{command}`. Medians of {repeats} repeats; each repeat is "
        f"{len(modes)} `recsys run` processes in a fresh data dir (venv and archive warm): `first` is the data "
        "dir's first night (trains, no champion), `retrained` the same night with `--retrain` (trains and "
        "re-scores the champion: the full nightly path), `reused` the same night again (same input: the "
        "published model is reused).",
        "",
        row("", modes),
        "| --- |" + " ---: |" * len(modes),
        row("wall s (process, incl. start-up)", [f"{summary[m]['wall_s']:.1f}" for m in modes]),
        row("wall s per repeat", [str(summary[m]["walls"]) for m in modes]),
        row("sum of stages s", [f"{summary[m]['stages_total_s']:.1f}" for m in modes]),
        row(
            "start-up and orchestration s (wall - stages)",
            [f"{summary[m]['wall_s'] - summary[m]['stages_total_s']:.1f}" for m in modes],
        ),
        row("wall / retrained", [f"{summary[m]['wall_s'] / base['wall_s']:.2f}x" for m in modes]),
        "",
        row("stage", [f"{m} s" for m in modes]),
        "| --- |" + " ---: |" * len(modes),
    ]
    for name in names:
        cells = [summary[m]["stages"].get(name) for m in modes]
        lines.append(row(name, ["-" if c is None else f"{c:.1f}" for c in cells]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=ROOT.parent / "shared" / "datasets" / "ml-100k.zip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.archive.is_file():
        raise SystemExit(f"{args.archive} not found: pass --archive PATH of ml-100k.zip.")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="recsys-nightly-bench-") as tmp:
            data_dir = Path(tmp) / "data"
            for mode in MODES:
                result = run_cli(args.archive, data_dir, args.model, retrain=mode == "retrained")
                if (mode == "reused") != bool(result["reused_from"]):
                    raise SystemExit(f"repeat {i}: expected the {mode} path, got reused_from={result['reused_from']}")
                runs[mode].append(result)
                print(f"repeat {i + 1}/{args.repeats} {mode}: {result['wall_s']:.1f} s", flush=True)
    summary = {mode: summarise(runs[mode]) for mode in MODES}
    command = "python -m benchmarks.nightly " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.write_text(render_markdown(summary, command.strip(), args.repeats))
    print(json.dumps({m: {"wall_s": round(s["wall_s"], 1)} for m, s in summary.items()}))


if __name__ == "__main__":
    main()
