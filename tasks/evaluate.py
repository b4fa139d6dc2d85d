"""Stage 8: metrics on the test split, baselines the same way, and the quality gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core import pipeline
from recsys_core.atomic import write_json_atomic
from recsys_core.data.datasets import DatasetSpec
from recsys_core.data.sources import as_spec
from recsys_core.errors import QualityGateError
from recsys_core.evaluation.champion import compare_with_champions
from recsys_core.evaluation.evaluate import METRIC_KEYS
from recsys_core.evaluation.gate import decide_publish
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.prep.splitting import Split
from recsys_core.serving.explore import ExplorePolicy
from tasks.artifacts import fmt, logger, publish_markdown, publish_table
from tasks.stage import stage


@stage("evaluate")
def evaluate_run(
    trained: pipeline.Trained,
    split: Split,
    vocab: IdVocabulary,
    dataset: str | DatasetSpec,
    k: int,
    run_folder: Path,
    explore: ExplorePolicy | None = None,
    top_n: int | None = None,
) -> dict[str, Any]:
    """Evaluate the model (its lists explored as the night explores) and the baselines on one split;
    write metrics.json."""
    result = pipeline.evaluate(trained, split, vocab, as_spec(dataset), k=k, explore=explore, top_n=top_n)
    model, metrics, baselines = trained.model, result["metrics"], result["baselines"]
    if metrics.get("explore"):
        ex = metrics["explore"]
        logger().info(
            "exploration (%s of %s slots from the top %s): NDCG@%s %s -> %s, coverage %s -> %s",
            ex["slots"],
            top_n or k,
            ex["depth"],
            k,
            fmt(ex["ndcg_at_k_ranked"]),
            fmt(metrics.get("ndcg_at_k")),
            fmt(ex["coverage_ranked"]),
            fmt(metrics.get("coverage")),
        )
    write_json_atomic(run_folder / "metrics.json", result)
    rows = [{"model": model.label, **{m: fmt(metrics.get(m)) for m in METRIC_KEYS}}]
    rows += [{"model": f"baseline: {n}", **{m: fmt(b.get(m)) for m in METRIC_KEYS}} for n, b in baselines.items()]
    publish_table("metrics", rows, f"{split.name} split, k={k}: model vs baselines")
    logger().info("metrics %s", {m: fmt(metrics.get(m)) for m in METRIC_KEYS})
    return result


@stage("rescore-champion")
def rescore_champion(
    trained: pipeline.Trained,
    ratings: pd.DataFrame,
    split: Split,
    vocab: IdVocabulary,
    champions: list[dict[str, Any]],
    k: int,
    enabled: bool = True,
) -> dict[str, Any] | None:
    """The published champion re-scored next to the candidate on tonight's unseen test ratings.

    Skipped with ``--no-quality-gate`` (nothing would use it, and a broken old model must not cost
    time either)."""
    if not champions or not enabled:
        return None
    comparison = compare_with_champions(trained.model, ratings, split.test, vocab, champions, k=k)
    if comparison and comparison["comparable"]:
        labels = {"candidate": trained.model.label, "champion": "published model"}
        rows = [
            {"model": f"{who}: {labels[who]}", **{m: fmt(comparison[who].get(m)) for m in METRIC_KEYS}}
            for who in labels
        ]
        publish_table(
            "champion-rescored",
            rows,
            f"Candidate vs champion {comparison['champion_run_id']} (night {comparison['champion_as_of']}) on "
            f"{comparison['ratings']:,} test ratings of {comparison['users']:,} users that arrived after the "
            f"champion's cutoff, same seen mask and candidate movies for both, k={k}",
        )
    elif comparison:
        log = logger().warning if comparison.get("broken") else logger().info
        log("champion %s not comparable: %s", comparison["champion_run_id"], comparison["reason"])
    return comparison


@stage("quality-gate")
def check_quality_gate(
    evaluation: dict[str, Any], comparison: dict[str, Any] | None, margin: float, enabled: bool = True
) -> dict[str, Any]:
    """Raise (failing the run, keeping yesterday's table) when the model should not publish.

    Returns what the manifest records about the decision (``gate``)."""
    decision = decide_publish(evaluation["metrics"], evaluation["baselines"], comparison, margin=margin)
    verdict = "passed" if decision.passed else "FAILED"
    body = "\n".join(f"- {r}" for r in [*decision.reasons, *decision.notes]) or "- all checks passed"
    publish_markdown(
        "quality-gate",
        f"## Quality gate {verdict}{'' if enabled else ' (not enforced)'}\n\n{body}",
        "Champion/challenger decision",
    )
    if not decision.passed and enabled:
        raise QualityGateError(
            "The new model did not pass the quality gate: "
            + "; ".join(decision.reasons)
            + ". Nothing was published; the previous table stays. Use --no-quality-gate to publish anyway."
        )
    if not decision.passed:
        logger().warning("quality gate failed but is disabled: %s", decision.reasons)
    return {
        "passed": decision.passed,
        "enforced": enabled,
        "reasons": decision.reasons,
        "notes": decision.notes,
        "champion": comparison,
    }
