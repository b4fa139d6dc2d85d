"""What the default costs to train: the default ``combined`` against the one the quality issue began with.

The quality issue caps the default model's training on ml-100k at 1.5x what it was before.
Train seconds in ``quality.md`` come from separate processes on a shared machine, so this
benchmark trains the default ``combined`` (the scale profile's ranker, ``session_ease`` on
ml-100k, and the default blend) and a reference ``combined`` (``--reference-ranker``, default
``ease``, and ``--reference`` blend members, default those before ``bayes_fm``: autorec,
dot_bias, hybrid_mf) alternately in one process, on the ``u1`` fold (RMSE) and the ``ua`` fold,
with the pipeline's ``train`` (5% validation slice, seed 0), and reports median seconds and
their ratio.

    python -m benchmarks.rater_cost [--repeats 3] [--output benchmarks/results/rater_cost.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.quality import DEFAULT_DATASETS, load_slice, run_model

REFERENCE_MEMBERS = "autorec,dot_bias,hybrid_mf"
REFERENCE_RANKER = "ease"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "rater_cost.md"


def train_once(fold: Any, reference: tuple[str, list[str]] | None, seed: int) -> tuple[float, float | None]:
    """Train ``combined`` (``reference``'s ranker and blend members, or the default's) and return
    (seconds, RMSE)."""
    params = None
    if reference is not None:
        ranker, members = reference
        params = {"ranker": ranker, "rater_params": {"members": [{"name": name} for name in members]}}
    metrics, seconds = run_model("combined", fold, seed, params)
    return seconds, metrics.get("rmse")


def measure(datasets: Path, reference: tuple[str, list[str]], repeats: int, seed: int) -> dict[str, Any]:
    """Interleaved repeats per fold: default then reference, ``repeats`` times."""
    cache: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for fold_name in ("u1", "ua"):
        fold = load_slice(datasets, fold_name, seed, cache)
        runs: dict[str, list[tuple[float, float | None]]] = {"default": [], "reference": []}
        for _ in range(repeats):
            runs["default"].append(train_once(fold, None, seed))
            runs["reference"].append(train_once(fold, reference, seed))
        medians = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
        out[fold_name] = {
            "seconds": {k: [round(s, 2) for s, _ in v] for k, v in runs.items()},
            "median": medians,
            "ratio": medians["default"] / medians["reference"],
            "rmse": {k: v[0][1] for k, v in runs.items()},
        }
    return out


def _spelled(params: dict[str, Any]) -> str:
    """A member's own settings as written in the table, e.g. "(n_iter=100)"."""
    return "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else ""


def render(result: dict[str, Any], reference: tuple[str, list[str]], repeats: int, seed: int) -> str:
    from recsys_core.models.blend import DEFAULT_MEMBERS
    from recsys_core.scale import choose_scale

    ranker, members = reference
    default = ",".join(m["name"] + _spelled(m.get("params", {})) for m in DEFAULT_MEMBERS)
    default_ranker = choose_scale(100_000, 943, 1_682).ranker  # ml-100k's profile
    lines = [
        "# The default's training cost: the default `combined` against the issue's starting point",
        "",
        f"Machine: {os.cpu_count()}-core {platform.machine()}, no GPU; Python {platform.python_version()}; "
        f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m benchmarks.rater_cost`.",
        "",
        f"`combined` trained with the pipeline's `train` (5% validation slice, seed {seed}) on each "
        f"fold's training part: default ranker `{default_ranker}` and blend members `{default}`; reference "
        f"ranker `{ranker}` and blend members `{','.join(members)}`; alternately in one process, "
        f"{repeats} times each. Seconds are wall time of `fit` (ranker included); RMSE is on the fold's "
        "test part (`u1` only scores ratings in `quality.md`; `ua`'s is shown for completeness).",
        "",
        "| fold | default s (median) | reference s (median) | ratio | default RMSE | reference RMSE "
        "| all seconds (default / reference) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for fold, r in result.items():
        lines.append(
            f"| {fold} | {r['median']['default']:.1f} | {r['median']['reference']:.1f} | {r['ratio']:.2f} | "
            f"{r['rmse']['default']:.4f} | {r['rmse']['reference']:.4f} | "
            f"{r['seconds']['default']} / {r['seconds']['reference']} |"
        )
    return "\n".join(lines) + "\n"


def check_reference(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """Every reference member must be a registered rating model: a usage error before any training."""
    from recsys_core.model_names import MODEL_NAMES
    from recsys_core.models.registry import model_class

    for name in names:
        if name not in MODEL_NAMES or name in ("combined", "blend"):
            parser.error(f"--reference: {name!r} is not a blend member; give rating models from `recsys models`")
        if not model_class(name).predicts_ratings:
            parser.error(f"--reference: {name!r} predicts no ratings, so a rating blend cannot use it")


def check_ranker(parser: argparse.ArgumentParser, name: str) -> None:
    """The reference ranker must be a registered ranking model: a usage error before any training."""
    from recsys_core.model_names import MODEL_NAMES
    from recsys_core.models.registry import model_class

    if name not in MODEL_NAMES or name == "combined" or not model_class(name).ranks:
        parser.error(f"--reference-ranker: {name!r} is not a ranking model; give one from `recsys models` (e.g. ease)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--reference", default=REFERENCE_MEMBERS, help="comma-separated blend members")
    parser.add_argument("--reference-ranker", default=REFERENCE_RANKER, help="the reference's ranking model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    members = args.reference.split(",")
    check_reference(parser, members)
    check_ranker(parser, args.reference_ranker)
    reference = (args.reference_ranker, members)
    result = measure(args.datasets, reference, args.repeats, args.seed)
    text = render(result, reference, args.repeats, args.seed)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
