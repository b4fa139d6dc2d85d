"""A blend of rating models whose weights are fitted on the validation slice.

Different model families err differently (AutoRec reconstructs per movie, MF per pair), so a
linear blend of their predictions beats each one. Every member early-stops on the validation
slice; the blend then fits ridge weights (with an intercept) of the members' validation
predictions against the validation ratings. The test fold is never seen. Members that would
read the validation ratings as input at inference (AutoRec) are told not to, so their
validation predictions are honest.

Ranking is the same linear blend of the members' rating scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ModelError
from recsys_core.interactions import Interactions
from recsys_core.models.base import Recommender
from recsys_core.models.members import load_members, save_members

DEFAULT_MEMBERS: list[dict[str, Any]] = [
    {"name": "autorec"},
    {"name": "dot_bias"},
    {"name": "hybrid_mf"},
]


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weights and intercept minimising ||y - x w - c||^2 + alpha ||w||^2 (c unpenalised)."""
    x_mean, y_mean = x.mean(axis=0), float(y.mean())
    xc, yc = x - x_mean, y - y_mean
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return w, y_mean - float(x_mean @ w)


class Blend(Recommender):
    name = "blend"
    uses_item_features = True  # forwarded to the members that use them
    description = "Ridge blend of rating models (default: AutoRec, dot_bias, hybrid MF), weights from validation."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.params.setdefault("members", DEFAULT_MEMBERS)
        self.members = [self._create(spec) for spec in self.params["members"]]
        self.weights = np.full(len(self.members), 1.0 / len(self.members))
        self.intercept = 0.0

    def _create(self, spec: dict[str, Any]) -> Recommender:
        from recsys_core.models import create_model

        # the scale profile's settings per member family (recsys_core/scale.py), then the spec's own
        params = {**self.params.get("member_params", {}).get(spec["name"], {}), **spec.get("params", {})}
        if spec["name"] == "autorec":
            params["input_with_validation"] = False
        model = create_model(
            spec["name"],
            rating_min=self.rating_min,
            rating_max=self.rating_max,
            seed=self.seed + int(spec.get("seed_offset", 0)),
            **params,
        )
        if not model.predicts_ratings:
            raise ModelError(f"blend: member {spec['name']!r} does not predict ratings.")
        return model

    def set_item_features(self, features: np.ndarray) -> None:
        super().set_item_features(features)
        for member in self.members:
            if member.uses_item_features:
                member.set_item_features(features)

    def set_work_dir(self, directory: Path | None) -> None:
        super().set_work_dir(directory)
        for member in self.members:
            member.set_work_dir(directory)

    def fit(self, train: Interactions, validation: Interactions | None = None) -> Blend:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        for j, member in enumerate(self.members):
            member.fit(train, validation)
            self.history.update({f"m{j}_{member.name}_{k}": v for k, v in member.history.items()})
        if validation is not None and len(validation) >= 10 * len(self.members):
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
