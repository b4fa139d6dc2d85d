"""Fold-in: a list for a visitor who is not in the model, computed from the published weights.

Nothing is retrained. Each model family folds a handful of (movie, rating) pairs in the way
its own scores are built:

- EASE (``ease``, ``session_ease``, ``ease_tail``, and ``combined`` whose ranker is one of them, as the
  default's is): a user's scores are their binary
  row times B, so the visitor's scores are the sum of B's rows of the rated movies that B
  covers (which movies were rated counts, not the stars, as in training). A ``session_ease`` that
  chose a row weight c sums them weighted by 1 + c x (stars - the visitor's mean stars), as its
  users' rows are. EASE's tail movies score through its tail factors, ``(sum of A's rows) V^T``,
  as for known users; movies neither covers are not candidates. It can say which rated movies
  contributed most to each item.
- Factor models whose dot product is the rating (``biased_mf``, ``hybrid_mf``, ``mf``,
  ``autorec``) and ``dot_bias`` (dot product = logit of the scaled rating): a ridge solve of
  the visitor's vector against the rated movies' factor rows, shrunk towards the average user
  vector, u = u0 + (V_R'V_R + lambda I)^-1 V_R'(t - V_R u0); scores are V u and predicted
  ratings follow from them.
- Every other model (Mult-DAE and its bag, wide_dae, rank_blend, item kNN, classifier, ncf, blend,
  baselines) has no cheap fold-in: the API answers the popularity list and says so in ``note``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys_core.models.base import Recommender
from recsys_core.models.interaction_utils import centred_weights

RATING_SCALE_FACTOR_MODELS = frozenset({"biased_mf", "hybrid_mf", "mf", "autorec"})
WEIGHTED_NOTE = (
    "EASE fold-in: the visitor's rated movies, weighted by their stars around the visitor's mean, times B "
    "(and the tail factors)."
)
RIDGE_STRENGTH = 1.0  # lambda in units of the mean squared norm of a movie vector


@dataclass(frozen=True)
class FoldInScores:
    """Scores over the whole vocabulary (-inf: not a candidate) and predicted ratings if any."""

    scores: np.ndarray
    predicted: np.ndarray | None


class NoExplanations:
    """For fold-ins that cannot say which rated movies pushed an item up: rows of ones, no
    contributors, no kept user rows."""

    def row_values(self, ratings: np.ndarray) -> np.ndarray:
        return np.ones(len(ratings), np.float32)

    def contributors(
        self, rated_idx: np.ndarray, target_idx: int, limit: int = 3, values: np.ndarray | None = None
    ) -> np.ndarray:
        return np.empty(0, np.int64)

    def user_row(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]:
        return np.empty(0, np.int64), np.empty(0, np.float32)


@dataclass(frozen=True)
class NoFoldIn(NoExplanations):
    """Models without a cheap fold-in: the caller answers the popularity list."""

    note: str
    family: str = "popularity"

    def fold_in(self, movie_idx: np.ndarray, ratings: np.ndarray) -> FoldInScores | None:
        return None


@dataclass(frozen=True)
class EaseFoldIn:
    """Visitor row times B over the movies B covers, and times the tail factors for the rest."""

    b: np.ndarray  # (inputs, covered) float32
    active: np.ndarray  # vocabulary index of each covered movie (columns of b)
    n_movies: int
    rows: sp.csr_matrix | None = None  # users' rated movies, for "because you rated"
    note: str = "EASE fold-in: the visitor's rated movies (not the stars) times B (and the tail factors)."
    family: str = "ease"
    inputs: np.ndarray | None = None  # vocabulary index of each row of b (default: active)
    tail: np.ndarray | None = None  # EASE's tail movies (vocabulary idx), scored by tail_a @ tail_v.T
    tail_a: np.ndarray | None = None  # (inputs, r)
    tail_v: np.ndarray | None = None  # (tail, r)
    rating_weight: float = 0.0  # c of session_ease's weighted rows (0: binary rows)
    position: np.ndarray = field(init=False, repr=False)
    column: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        inputs = self.active if self.inputs is None else self.inputs
        position = np.full(self.n_movies, -1, np.int64)
        position[inputs] = np.arange(len(inputs))
        column = np.full(self.n_movies, -1, np.int64)
        column[self.active] = np.arange(len(self.active))
        if self.tail is not None:  # tail columns after B's: column - len(active) indexes tail_v
            column[self.tail] = len(self.active) + np.arange(len(self.tail))
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "column", column)

    def fold_in(self, movie_idx: np.ndarray, ratings: np.ndarray) -> FoldInScores | None:
        """None when no rated movie is covered by B (nothing to fold in)."""
        every = self.position[np.asarray(movie_idx, np.int64)]
        keep = every >= 0
        pos = every[keep]
        if not len(pos):
            return None
        scores = np.full(self.n_movies, -np.inf, np.float32)
        has_tail = self.tail is not None and self.tail_a is not None and self.tail_v is not None
        if not self.rating_weight:  # binary rows: sums of rows
            scores[self.active] = self.b[pos].sum(axis=0)
            if has_tail:
                scores[self.tail] = self.tail_v @ self.tail_a[pos].sum(axis=0)
            return FoldInScores(scores, None)
        weights = self.row_values(ratings)[keep]
        scores[self.active] = weights @ self.b[pos]
        if has_tail:
            scores[self.tail] = self.tail_v @ (weights @ self.tail_a[pos])
        return FoldInScores(scores, None)

    def row_values(self, ratings: np.ndarray) -> np.ndarray:
        """A visitor's row values (float32), as a known user's row holds them: 1 per rated movie, or
        with a rating weight ``1 + c (stars - the visitor's mean stars)``, floored."""
        stars = np.asarray(ratings, np.float64)
        if not self.rating_weight:
            return np.ones(len(stars), np.float32)
        return centred_weights(stars, np.full(len(stars), stars.mean()), self.rating_weight).astype(np.float32)

    def contributors(
        self, rated_idx: np.ndarray, target_idx: int, limit: int = 3, values: np.ndarray | None = None
    ) -> np.ndarray:
        """Rated movies (vocabulary idx) with the largest positive share of the target's score.

        A rated movie's share is its value in the row (``values``, aligned with ``rated_idx``; 1 each
        when None) times its weight towards the target, the term it adds to the score: with
        weighted rows a movie rated far below the user's mean adds little, whatever its weight."""
        target = self.column[target_idx]
        rated = np.asarray(rated_idx, np.int64)
        pos = self.position[rated]
        keep = pos >= 0
        if target < 0 or not keep.any():
            return np.empty(0, np.int64)
        if target < len(self.active):
            weights = self.b[pos[keep], target]
        else:  # a tail movie: each rated movie's weight is its row of A times the movie's V row
            weights = self.tail_a[pos[keep]] @ self.tail_v[target - len(self.active)]
        if values is not None:
            weights = weights * np.asarray(values, np.float32)[keep]
        rated = rated[keep]
        order = np.argsort(-weights, kind="stable")[:limit]
        return rated[order][weights[order] > 0]

    def user_row(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """The movies a user of the model rated and their values in the user's row (1, or the
        rating weight's), empty when the rows were not kept."""
        if self.rows is None or not 0 <= user_idx < self.rows.shape[0]:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        span = slice(self.rows.indptr[user_idx], self.rows.indptr[user_idx + 1])
        return self.rows.indices[span].astype(np.int64), self.rows.data[span].astype(np.float32)


@dataclass(frozen=True)
class FactorFoldIn(NoExplanations):
    """Ridge solve of the visitor's vector against the movie factors, towards the mean user."""

    movies: np.ndarray  # (n_movies, d) float32, score = u . movies[i]
    prior: np.ndarray  # (d,) the average user vector
    lam: float
    to_target: Callable[[np.ndarray], np.ndarray]  # ratings -> the score scale
    to_rating: Callable[[np.ndarray], np.ndarray]  # scores -> ratings on the dataset's scale
    note: str = "Factor fold-in: ridge solve of the visitor's vector against the movie factors."
    family: str = "factors"

    def fold_in(self, movie_idx: np.ndarray, ratings: np.ndarray) -> FoldInScores | None:
        if not len(movie_idx):
            return None
        v = self.movies[np.asarray(movie_idx, np.int64)].astype(np.float64)
        residual = self.to_target(np.asarray(ratings, np.float64)) - v @ self.prior
        gram = v.T @ v + self.lam * np.eye(v.shape[1])
        user = self.prior + np.linalg.solve(gram, v.T @ residual)
        scores = (self.movies @ user.astype(np.float32)).astype(np.float32)
        return FoldInScores(scores, self.to_rating(scores))


FoldIn = NoFoldIn | EaseFoldIn | FactorFoldIn


def build_foldin(model: Recommender) -> FoldIn:
    """The fold-in of a loaded model's family (see the module docstring)."""
    from recsys_core.models.combined import Combined
    from recsys_core.models.ease import EASE
    from recsys_core.models.ease_tail import EASETail

    if isinstance(model, Combined):  # ranks with its ranker
        return build_foldin(model.ranker)
    if isinstance(model, EASE):
        has_tail = len(model._tail) > 0
        return EaseFoldIn(
            np.asarray(model._b),
            np.asarray(model._active, np.int64),
            model.n_movies,
            model._rows,
            tail=np.asarray(model._tail, np.int64) if has_tail else None,
            tail_a=model._tail_a if has_tail else None,
            tail_v=model._tail_v if has_tail else None,
            rating_weight=float(getattr(model, "rating_weight", 0.0)),
            note=EaseFoldIn.note if not getattr(model, "rating_weight", 0.0) else WEIGHTED_NOTE,
        )
    if isinstance(model, EASETail):  # rows: the head movies; columns: the whole catalogue
        every = np.arange(model.n_movies, dtype=np.int64)
        head = np.asarray(model._head, np.int64)
        return EaseFoldIn(np.asarray(model._w), every, model.n_movies, model._rows, inputs=head)
    if model.name in RATING_SCALE_FACTOR_MODELS or model.name == "dot_bias":
        return factor_foldin(model)
    return NoFoldIn(f"{model.name} has no fold-in for visitors; this is the night's popularity list.")


def factor_foldin(model: Recommender) -> FactorFoldIn | NoFoldIn:
    """Ridge fold-in for a factor model; dot_bias maps ratings to logits and back."""
    f = model.factors()
    if f is None:
        return NoFoldIn(f"{model.name} exposes no factors; this is the night's popularity list.")
    users, movies = (np.asarray(a, np.float32) for a in f)
    prior = users.mean(axis=0).astype(np.float64)
    lam = RIDGE_STRENGTH * float(np.mean(np.sum(movies.astype(np.float64) ** 2, axis=1))) + 1e-6
    low, high = model.rating_min, model.rating_max

    def clip(r: np.ndarray) -> np.ndarray:
        return np.clip(r, low, high).astype(np.float32)

    if model.name == "dot_bias":
        offset = float(getattr(model, "_offset", 0.0))
        span = high - low

        def to_logit(r: np.ndarray) -> np.ndarray:
            y = np.clip((r - low) / span, 0.02, 0.98)
            return np.log(y / (1 - y)) - offset

        def from_logit(s: np.ndarray) -> np.ndarray:
            return clip(low + span / (1 + np.exp(-(s.astype(np.float64) + offset))))

        return FactorFoldIn(movies, prior, lam, to_logit, from_logit, note=f"{model.name}: " + FactorFoldIn.note)
    return FactorFoldIn(movies, prior, lam, lambda r: r, clip, note=f"{model.name}: " + FactorFoldIn.note)


def load_foldin(model_dir: Path) -> tuple[Recommender, FoldIn]:
    """Load what fold-in and neighbours need from a saved model, once per published run.

    ``combined`` ranks with its ranker, so only the ranker is loaded: the rating part (Keras,
    seconds to load and hundreds of MB) is not needed to rank a visitor's list.
    """
    from recsys_core.models import load_model
    from recsys_core.models.base import read_model_meta
    from recsys_core.models.combined import RANKER_DIR

    if read_model_meta(model_dir).get("name") != "combined":
        model = load_model(model_dir)
        return model, build_foldin(model)
    ranker = load_model(Path(model_dir) / RANKER_DIR)
    foldin = build_foldin(ranker)
    if isinstance(foldin, EaseFoldIn):
        rows = "rated movies, weighted by their stars," if foldin.rating_weight else "rated movies"
        foldin = replace(foldin, note=f"combined: ranked by its EASE part ({rows} times B); no predicted rating.")
    elif isinstance(foldin, NoFoldIn):
        foldin = NoFoldIn(f"combined ranks with {ranker.name}, which has no fold-in; this is the popularity list.")
    return ranker, foldin
