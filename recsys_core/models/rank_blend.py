"""A blend of implicit ranking models: per-user standardised scores, weights from validation.

EASE (linear, item-item) and Mult-DAE (non-linear, user-level) make different mistakes, and
their scores live on different scales, so each member's scores are standardised per user
(z-score over the catalogue) before a weighted sum. The weights are picked on the
validation slice from a simplex grid, using each member's ``validation_scores`` (scores of the
training rows from a state that never saw the validation slice). Test data is never seen.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.ensemble import Ensemble, fixed_member_specs, fixed_weights, load_members, save_members
from recsys_core.models.interaction_utils import validation_ndcg
from recsys_core.prep.interactions import Interactions

DEFAULT_MEMBERS: list[dict[str, Any]] = [{"name": "ease"}, {"name": "mult_dae"}]


def standardise_rows(scores: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per row, so members on different scales can be summed."""
    scores = np.asarray(scores, np.float64)
    centred = scores - scores.mean(axis=1, keepdims=True)
    return centred / (centred.std(axis=1, keepdims=True) + 1e-9)


def simplex_grid(n: int, step: float) -> list[np.ndarray]:
    """All weight vectors of n non-negative multiples of ``step`` that sum to 1."""
    ticks = int(round(1 / step))
    return [np.asarray(c, np.float64) / ticks for c in itertools.product(range(ticks + 1), repeat=n) if sum(c) == ticks]


class RankBlend(Ensemble):
    name = "rank_blend"
    predicts_ratings = False
    description = "Weighted blend of per-user standardised implicit rankers (default EASE + Mult-DAE)."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.params.setdefault("members", DEFAULT_MEMBERS)
        self.members = [self._create(spec) for spec in self.params["members"]]
        self.weights = np.full(len(self.members), 1.0 / len(self.members))
        fixed = fixed_weights(self.params, len(self.members), self.name)
        if fixed is not None:  # a refit repeating a fitted blend: no grid on validation
            self.weights = fixed

    def parts(self) -> list[Recommender]:
        return self.members

    def fixed_settings(self) -> dict[str, Any] | None:
        members = fixed_member_specs(self.members, self.params["members"])
        if members is None:
            return None
        return {**self.params, "members": members, "weights": [float(w) for w in self.weights]}

    def _create(self, spec: dict[str, Any]) -> Recommender:
        model = self.create_part(spec["name"], spec.get("params", {}), int(spec.get("seed_offset", 0)))
        if not hasattr(model, "validation_scores"):
            raise ModelError(f"rank_blend: member {spec['name']!r} has no validation_scores(rows).")
        return model

    def fit(self, train: Interactions, validation: Interactions | None = None) -> RankBlend:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        for j, member in enumerate(self.members):
            member.fit(train, validation)
            self.collect_history(f"m{j}_{member.name}", member)
        if "weights" not in self.params and validation is not None and len(validation) and len(self.members) > 1:
            seen = train.to_csr()
            parts = [standardise_rows(m.validation_scores(seen)) for m in self.members]
            grid = simplex_grid(len(self.members), float(self.params.get("step", 0.1)))
            ndcg = [
                validation_ndcg(sum(w * p for w, p in zip(ws, parts, strict=True)), seen, validation) for ws in grid
            ]
            self.weights = grid[int(np.argmax(ndcg))]
            self.history["val_ndcg"] = [max(ndcg)]
        return self

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        total = sum(
            w * standardise_rows(m.score_users(user_idx))
            for w, m in zip(self.weights, self.members, strict=True)
            if w > 0
        )
        return np.asarray(total, np.float32)

    def _json_state(self) -> dict[str, Any]:
        return {"weights": [float(w) for w in self.weights]}

    def _save_state(self, directory: Path) -> None:
        save_members(self.members, directory)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.members = load_members(directory, len(self.params["members"]))
        self.weights = np.asarray(state["weights"], np.float64)
