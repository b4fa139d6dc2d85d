"""The contract every recommender follows, so training, evaluation and scoring are uniform.

A model ranks with ``score_users`` (one row of scores per user over the whole catalogue)
and, if it is a rating model, predicts ratings with ``predict``. Models whose score is a
dot product expose ``factors()`` so the scorer can use one matrix product per user block.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recsys_core.atomic import write_json_atomic
from recsys_core.errors import ModelError
from recsys_core.prep.interactions import Interactions

MODEL_FILE = "model.json"
ITEM_FEATURES_FILE = "item_features.npy"


class Recommender(ABC):
    """Base class. Subclasses set ``name``, implement ``fit`` and one scoring path."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = True
    description: ClassVar[str] = ""
    uses_item_features: ClassVar[bool] = False
    # Whether fitting or loading imports TensorFlow (~4 s); the CLI imports it in the background
    # while Prefect's server starts when the run's model does. Ensembles assume their parts do.
    needs_tensorflow: ClassVar[bool] = True

    def __init__(self, *, rating_min: float = 1.0, rating_max: float = 5.0, seed: int = 0, **params: Any):
        self.rating_min = float(rating_min)
        self.rating_max = float(rating_max)
        self.seed = int(seed)
        self.params: dict[str, Any] = params
        self.n_users = 0
        self.n_movies = 0
        self.history: dict[str, list[float]] = {}
        self.item_features: np.ndarray | None = None
        self.work_dir: Path | None = None

    def set_work_dir(self, directory: Path | None) -> None:
        """Where fit may write scratch files (the run folder): large pair models stream their
        training pairs from a Parquet file there. Not saved with the model."""
        self.work_dir = Path(directory) if directory is not None else None

    def set_item_features(self, features: np.ndarray) -> None:
        """Give a hybrid model its movie side features (rows aligned with movie_idx) before fit.

        Models with ``uses_item_features`` read ``self.item_features``; the features are saved
        with the model so a loaded model scores exactly as the trained one.
        """
        self.item_features = np.asarray(features, dtype=np.float32)

    @property
    def label(self) -> str:
        """Name and version as written into the published table's ``model`` column."""
        return f"{self.name}@v{self.version}"

    @abstractmethod
    def fit(self, train: Interactions, validation: Interactions | None = None) -> Recommender:
        """Learn from ``train``; ``validation`` (cut from training data) drives early stopping."""

    def fixed_settings(self) -> dict[str, Any] | None:
        """Parameters under which a new fit repeats this fit's choices without a validation slice.

        The refit on all ratings takes them so the night trains once: the epochs early
        stopping picked, the lambda the grid picked, the blend weights, with no search and no
        holdout. None (the default) means the model cannot, and the refit searches again.
        """
        return None

    def start_from(self, other: Recommender, epoch_scale: float) -> bool:
        """Begin the next ``fit`` from ``other``'s learned weights (same vocabulary sizes) and
        train ``epoch_scale`` of its epochs: a warm-started refit needs only a few.

        Returns False when this model cannot: it then trains all its epochs from its seeded
        initialisation. Models without epochs (closed forms, counts) return False."""
        return False

    def predict(self, user_idx: np.ndarray, movie_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings on the dataset's scale for each (user, movie) pair."""
        raise ModelError(f"The model {self.name!r} ranks movies but does not predict ratings.")

    def factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(user vectors, movie vectors) with score = U @ V.T, or None if not a dot model."""
        return None

    def covered_scorer(self) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]] | None:
        """(covered movies, scorer) when only some movies can score other than exactly 0.0.

        ``scorer(user_idx)`` returns the scores of the covered movies (sorted indices) only.
        Unless ``tail_factors`` scores them, ``score_users`` gives every other movie 0.0: top-N
        then ranks the covered columns and reads whole rows only for users whose n-th best
        covered score is not above 0 (EASE's 5,000 head movies of 59k: a twelfth of the
        scores). None: no covered columns."""
        return None

    def tail_factors(self) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], np.ndarray] | None:
        """(tail movies, users -> user vectors, movie vectors) when every movie outside
        ``covered_scorer``'s columns scores as a dot product (EASE's tail factors). Top-N then
        ranks the two parts apart and merges the lists; None: the others score exactly 0.0."""
        return None

    def shared_ranking(self) -> np.ndarray | None:
        """Per-movie scores when every user ranks movies in the same order (popularity, biases):
        evaluation then ranks from one order instead of a users x movies pass. None otherwise."""
        return None

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Ranking scores, shape (len(user_idx), n_movies), float32; higher is better."""
        f = self.factors()
        if f is None:
            raise NotImplementedError(f"{type(self).__name__} must implement score_users or factors")
        users, movies = f
        return users[np.asarray(user_idx)] @ movies.T

    def clip(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.rating_min, self.rating_max).astype(np.float32)

    # Persistence: model.json (name, params, scalars) plus whatever the subclass adds.
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.item_features is not None:
            np.save(directory / ITEM_FEATURES_FILE, self.item_features)
        self._save_state(directory)
        write_json_atomic(
            directory / MODEL_FILE,
            {
                "name": self.name,
                "version": self.version,
                "rating_min": self.rating_min,
                "rating_max": self.rating_max,
                "seed": self.seed,
                "params": self.params,
                "n_users": self.n_users,
                "n_movies": self.n_movies,
                "history": self.history,
                "state": self._json_state(),
            },
        )

    @classmethod
    def load(cls, directory: Path) -> Recommender:
        meta = read_model_meta(directory)
        model = cls(rating_min=meta["rating_min"], rating_max=meta["rating_max"], seed=meta["seed"], **meta["params"])
        model.n_users, model.n_movies = meta["n_users"], meta["n_movies"]
        model.history = meta.get("history", {})
        features = Path(directory) / ITEM_FEATURES_FILE
        if features.is_file():
            model.item_features = np.load(features, allow_pickle=False)
        model._load_state(Path(directory), meta.get("state", {}))
        return model

    def _json_state(self) -> dict[str, Any]:
        return {}

    def _save_state(self, directory: Path) -> None:  # noqa: B027 - optional hook
        """Write arrays or Keras files next to model.json."""

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``_save_state`` and ``_json_state`` wrote."""


def read_model_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MODEL_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read {path}: {exc}. Retrain, or point at a saved model folder.") from exc
