"""A blend of rating models whose weights are fitted on the validation slice.

Different model families err differently (AutoRec reconstructs per movie, MF per pair), so a
linear blend of their predictions beats each one. Every member early-stops on the validation
slice (or, like the Bayesian FM, does not read it at all); the blend then fits ridge weights
(with an intercept) of the members' validation predictions against the validation ratings. The
test fold is never seen. Members that would read the validation ratings as input at inference
(AutoRec) are told not to, so their validation predictions are honest.

Ranking is the same linear blend of the members' rating scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.ensemble import Ensemble, fixed_member_specs, fixed_weights, load_members, save_members
from recsys_core.prep.interactions import Interactions

# bayes_fm samples 100 Gibbs iterations here, not its own 600: the night trains the blend twice
# (candidate and refit), and 600 would take ml-100k's night from ~40 s to ~75 s (estimated) for 0.0017 of
# u1 RMSE (0.8904 -> 0.8887; benchmarks/results/quality_candidates.md, seventh round).
DEFAULT_MEMBERS: list[dict[str, Any]] = [
    {"name": "autorec"},
    {"name": "dot_bias"},
    {"name": "bayes_fm", "params": {"n_iter": 100}},
]


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weights and intercept minimising ||y - x w - c||^2 + alpha ||w||^2 (c unpenalised)."""
    x_mean, y_mean = x.mean(axis=0), float(y.mean())
    xc, yc = x - x_mean, y - y_mean
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return w, y_mean - float(x_mean @ w)


class Blend(Ensemble):
    name = "blend"
    description = "Ridge blend of rating models (default: AutoRec, dot_bias, Bayesian FM), weights from validation."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.params.setdefault("members", DEFAULT_MEMBERS)
        self.members = [self._create(spec) for spec in self.params["members"]]
        self.weights = np.full(len(self.members), 1.0 / len(self.members))
        self.intercept = 0.0
        fixed = fixed_weights(self.params, len(self.members), self.name)
        if fixed is not None:  # a refit repeating a fitted blend: no ridge on validation
            self.weights, self.intercept = fixed, float(self.params.get("intercept", 0.0))

    def parts(self) -> list[Recommender]:
        return self.members

    def fixed_settings(self) -> dict[str, Any] | None:
        members = fixed_member_specs(self.members, self.params["members"])
        if members is None:
            return None
        weights = [float(w) for w in self.weights]
        return {**self.params, "members": members, "weights": weights, "intercept": float(self.intercept)}

    def _create(self, spec: dict[str, Any]) -> Recommender:
        params = dict(spec.get("params", {}))
        if spec["name"] == "autorec":
            params["input_with_validation"] = False
        model = self.create_part(spec["name"], params, int(spec.get("seed_offset", 0)))
        if not model.predicts_ratings:
            raise ModelError(f"blend: member {spec['name']!r} does not predict ratings.")
        return model

    def fit(self, train: Interactions, validation: Interactions | None = None) -> Blend:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        for j, member in enumerate(self.members):
            member.fit(train, validation)
            self.collect_history(f"m{j}_{member.name}", member)
        fixed = "weights" in self.params
        if not fixed and validation is not None and len(validation) >= 10 * len(self.members):
            x = self._member_predictions(validation.user_idx, validation.movie_idx)
            y = validation.rating.astype(np.float64)
            self.weights, self.intercept = fit_ridge(x, y, float(self.params.get("alpha", 1.0)))
            blended = self.clip(x @ self.weights + self.intercept)
            self.history["val_rmse"] = [float(np.sqrt(np.mean((y - blended) ** 2)))]
        return self

    def _member_predictions(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(user_idx, movie_idx) for m in self.members], axis=1).astype(np.float64)

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        return self.clip(self._member_predictions(user_idx, movie_idx) @ self.weights + self.intercept)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        scores = sum(w * m.score_users(user_idx) for w, m in zip(self.weights, self.members, strict=True))
        return (scores + self.intercept).astype(np.float32)

    def _json_state(self) -> dict[str, Any]:
        return {"weights": [float(w) for w in self.weights], "intercept": self.intercept}

    def _save_state(self, directory: Path) -> None:
        save_members(self.members, directory)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.members = load_members(directory, len(self.params["members"]))
        self.weights = np.asarray(state["weights"], np.float64)
        self.intercept = float(state["intercept"])
