"""Training histories read by people: readable names, each metric's direction, the chosen point.

A model's ``history`` is a flat dict of per-epoch (or per-candidate) values with machine keys
such as ``rater_m0_autorec_val_loss`` or ``ranker_lambda``. The run report turns it into panels:
one per metric and model part, train and validation together, plotted against epochs or, for
a hyper-parameter search (EASE's L2 strength), against the values tried, with the point the
model kept marked. "Best" follows the metric: lowest loss/RMSE, highest NDCG/recall.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PARTS = {"ranker": "ranking model", "rater": "rating model"}
HIGHER_IS_BETTER = ("ndcg", "recall", "precision", "accuracy", "hit", "auc", "map")
SEARCHED = ("lambda",)  # keys that hold the candidate values of a search, not a curve
MEMBER = re.compile(r"^m(\d+)_(.+)$")
METRIC = re.compile(r"^(?P<owner>.*?)(?:^|_)(?P<val>val_)?(?P<metric>loss|rmse|mae|ndcg|recall|precision|accuracy)$")


@dataclass
class Panel:
    """One plotted metric of one model part."""

    title: str
    metric: str
    x_label: str = "epoch"
    x: list[float] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)  # "train" / "validation" -> values

    @property
    def higher_is_better(self) -> bool:
        return metric_direction(self.metric) > 0

    @property
    def chosen(self) -> tuple[float, float] | None:
        """(x, value) of the best validation point (else train): what early stopping / the search kept."""
        values = self.curves.get("validation") or self.curves.get("train") or []
        if not values:
            return None
        pick = max if self.higher_is_better else min
        i = pick(range(len(values)), key=values.__getitem__)
        xs = self.x or list(range(1, len(values) + 1))
        return float(xs[i]), float(values[i])


def metric_direction(metric: str) -> int:
    """+1 when higher is better (NDCG, recall...), -1 for losses and errors."""
    return 1 if any(word in metric.lower() for word in HIGHER_IS_BETTER) else -1


def readable_owner(owner: str) -> str:
    """'rater_m0_autorec' -> 'rating model, member 1 (autorec)'; '' -> 'model'."""
    words: list[str] = []
    rest = owner.strip("_")
    head, _, tail = rest.partition("_")
    if head in PARTS:
        words.append(PARTS[head])
        rest = tail
    match = MEMBER.match(rest)
    if match:
        words.append(f"member {int(match.group(1)) + 1} ({match.group(2)})")
    elif rest:
        words.append(rest.replace("_", " "))
    return ", ".join(words) or "model"


def split_key(key: str) -> tuple[str, str, bool] | None:
    """(owner, metric, is_validation) of a history key, or None for keys that are not curves."""
    match = METRIC.match(key)
    if match is None:
        return None
    return match.group("owner"), match.group("metric"), bool(match.group("val"))


def build_panels(history: dict[str, list[float]]) -> list[Panel]:
    """Group a flat history into panels, in first-seen order."""
    panels: dict[tuple[str, str], Panel] = {}
    for key, values in history.items():
        if not values or key.rsplit("_", 1)[-1] in SEARCHED:
            continue
        parts = split_key(key)
        owner, metric, is_val = parts if parts else (key, key, False)
        panel = panels.setdefault((owner, metric), Panel(title=f"{readable_owner(owner)}: {metric}", metric=metric))
        panel.curves["validation" if is_val else "train"] = [float(v) for v in values]
        searched = _searched_values(history, owner, len(values))
        if searched is not None:
            panel.x, panel.x_label = searched, "lambda (L2 strength, log scale)"
    return list(panels.values())


def _searched_values(history: dict[str, list[float]], owner: str, n: int) -> list[float] | None:
    """The candidate values a search tried for ``owner`` (e.g. ``ranker_lambda``), when they line up."""
    for name in SEARCHED:
        key = f"{owner}_{name}" if owner else name
        values = history.get(key)
        if values and len(values) == n:
            return [float(v) for v in values]
    return None


def summarise_history(history: dict[str, list[float]]) -> list[tuple[str, int, float, float, float]]:
    """Rows of (readable name, points, first, best, last); best follows the metric's direction."""
    rows = []
    for panel in build_panels(history):
        for label, values in panel.curves.items():
            best = max(values) if panel.higher_is_better else min(values)
            rows.append((f"{panel.title} ({label})", len(values), values[0], best, values[-1]))
    return rows
