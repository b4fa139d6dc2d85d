"""The quality gate: may this run's model replace the published one?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)


def decide_publish(
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    previous: dict[str, Any] | None,
    *,
    margin: float = 0.05,
    require_beat_popularity: bool = True,
) -> GateDecision:
    """Publish only if the model beats popularity on NDCG@k (when required) and does not fall
    more than ``margin`` (relative) below the previous run's NDCG@k, nor rise more than
    ``margin`` above its RMSE. Comparisons with the previous run need the same dataset/k."""
    reasons: list[str] = []
    ndcg = metrics.get("ndcg_at_k")
    pop = (baselines.get("popularity") or {}).get("ndcg_at_k")
    if require_beat_popularity and ndcg is not None and pop is not None and ndcg <= pop:
        reasons.append(f"NDCG@{metrics.get('k')} {ndcg:.4f} does not beat the popularity baseline's {pop:.4f}")
    prev = (previous or {}).get("metrics") or {}
    if prev.get("k") == metrics.get("k"):
        p_ndcg, p_rmse, rmse = prev.get("ndcg_at_k"), prev.get("rmse"), metrics.get("rmse")
        if ndcg is not None and p_ndcg and ndcg < p_ndcg * (1 - margin):
            reasons.append(f"NDCG@k {ndcg:.4f} fell more than {margin:.0%} below the published run's {p_ndcg:.4f}")
        if rmse is not None and p_rmse and rmse > p_rmse * (1 + margin):
            reasons.append(f"RMSE {rmse:.4f} rose more than {margin:.0%} above the published run's {p_rmse:.4f}")
    return GateDecision(not reasons, reasons)
