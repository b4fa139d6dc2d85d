"""The quality gate: may this run's model replace the published one?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def decide_publish(
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    comparison: dict[str, Any] | None,
    *,
    margin: float = 0.05,
    require_beat_popularity: bool = True,
) -> GateDecision:
    """Publish only if the model beats popularity on NDCG@k (when required) and, against the
    champion re-scored on tonight's unseen test ratings (``evaluation.champion``), its NDCG@k is
    not more than ``margin`` (relative) below the champion's, nor its RMSE more than ``margin``
    above. A champion that is not comparable tonight is noted and the baselines decide."""
    reasons: list[str] = []
    notes: list[str] = []
    # the model's own ranking against popularity's: exploration (metrics["explore"]) re-ranks only the
    # model's lists, so comparing its explored lists with popularity's ranking would be unequal
    ndcg = (metrics.get("explore") or {}).get("ndcg_at_k_ranked", metrics.get("ndcg_at_k"))
    pop = (baselines.get("popularity") or {}).get("ndcg_at_k")
    if require_beat_popularity and ndcg is not None and pop is not None and ndcg <= pop:
        reasons.append(
            f"NDCG@{metrics.get('k')} {ndcg:.4f} of the model's ranking does not beat the popularity "
            f"baseline's {pop:.4f}"
        )
    if comparison is None:
        notes.append("no published champion for this dataset and split: compared with the baselines only")
    elif not comparison.get("comparable"):
        notes.append(
            f"champion {comparison.get('champion_run_id')} (night {comparison.get('champion_as_of')}) not "
            f"comparable tonight: {comparison.get('reason')}; compared with the baselines only"
        )
    else:
        ours, theirs = comparison["candidate"], comparison["champion"]
        where = f"on {comparison['users']} test users who rated after the champion's night"
        c_ndcg, p_ndcg = ours.get("ndcg_at_k"), theirs.get("ndcg_at_k")
        c_rmse, p_rmse = ours.get("rmse"), theirs.get("rmse")
        if c_ndcg is not None and p_ndcg and c_ndcg < p_ndcg * (1 - margin):
            reasons.append(f"NDCG@k {c_ndcg:.4f} is more than {margin:.0%} below the champion's {p_ndcg:.4f} {where}")
        if c_rmse is not None and p_rmse and c_rmse > p_rmse * (1 + margin):
            reasons.append(f"RMSE {c_rmse:.4f} is more than {margin:.0%} above the champion's {p_rmse:.4f} {where}")
        if not reasons:
            notes.append(
                f"against champion {comparison.get('champion_run_id')} {where}: NDCG@k {_f(c_ndcg)} vs "
                f"{_f(p_ndcg)}, RMSE {_f(c_rmse)} vs {_f(p_rmse)}"
            )
    return GateDecision(not reasons, reasons, notes)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
