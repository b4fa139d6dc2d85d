"""The nightly default: one model ranks (order and score), another predicts the rating.

Rating-trained models rank poorly and implicit rankers predict no rating, so the published
table takes its order from ``ranker`` and its ``predicted_rating`` from ``rater``. Both are
saved in subfolders with their own model.json, so each loads exactly as it was trained.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.ensemble import Ensemble
from recsys_core.models.registry import load_model
from recsys_core.prep.interactions import Interactions

RANKER_DIR, RATER_DIR = "ranker", "rater"
# Chosen on the validation slices of ml-100k (benchmarks/results/quality.md has the test
# figures). The rating blend wins clearly. For ranking, rank_blend (EASE + Mult-DAE) scored
# only 0.005 validation NDCG@10 above EASE alone, within the slice's noise, at ten times the
# training time (and 4x on ml-latest-small); the nightly flow trains the default every run,
# so EASE ranks when nothing says otherwise. The nightly run's ranker and rater come from its
# scale profile (recsys_core/scale.py): session_ease (EASE plus same-sitting pairs, +0.003
# test NDCG@10 on ua, +0.014 on ml-latest-small, 3 seeds) and the blend for small releases,
# plain EASE and a streamed biased MF for large ones. This model never looks at data size.
DEFAULT_RANKER, DEFAULT_RATER = "ease", "blend"


class Combined(Ensemble):
    name = "combined"
    predicts_ratings = True
    ranks = True
    description = "Ranks with one model (params.ranker) and predicts ratings with another (params.rater)."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.params.setdefault("ranker", DEFAULT_RANKER)
        self.params.setdefault("rater", DEFAULT_RATER)
        self.ranker = self._create(self.params["ranker"], self.params.get("ranker_params", {}))
        self.rater = self._create(self.params["rater"], self.params.get("rater_params", {}))
        if not self.ranker.ranks:
            raise ModelError(f"combined: ranker {self.ranker.name!r} does not rank movies.")
        if not self.rater.predicts_ratings:
            raise ModelError(f"combined: rater {self.rater.name!r} does not predict ratings.")

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}({self.ranker.label}+{self.rater.label})"

    def parts(self) -> list[Recommender]:
        return [self.ranker, self.rater]

    def fixed_settings(self) -> dict[str, Any] | None:
        ranker, rater = self.ranker.fixed_settings(), self.rater.fixed_settings()
        if ranker is None or rater is None:
            return None
        return {**self.params, "ranker_params": ranker, "rater_params": rater}

    def _create(self, name: str, params: dict[str, Any]) -> Recommender:
        if name == self.name:
            raise ModelError("combined cannot contain another combined model.")
        return self.create_part(name, params)

    def fit(self, train: Interactions, validation: Interactions | None = None) -> Combined:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.ranker.fit(train, validation)
        self.rater.fit(train, validation)
        self.history = {}
        self.collect_history("ranker", self.ranker)
        self.collect_history("rater", self.rater)
        return self

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        return self.rater.predict(user_idx, movie_idx)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self.ranker.score_users(user_idx)

    def factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.ranker.factors()

    def covered_scorer(self) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]] | None:
        return self.ranker.covered_scorer()

    def tail_factors(self) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], np.ndarray] | None:
        return self.ranker.tail_factors()

    def _save_state(self, directory: Path) -> None:
        self.ranker.save(directory / RANKER_DIR)
        self.rater.save(directory / RATER_DIR)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.ranker = load_model(directory / RANKER_DIR)
        self.rater = load_model(directory / RATER_DIR)
