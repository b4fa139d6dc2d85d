"""EASE whose Gram matrix also counts movies rated close together in a user's time order.

Plain EASE learns from which movies a user has rated, whatever the order. On MovieLens, people
rate in sittings, and the site shows movies to rate page by page. So two movies rated a few
positions apart in someone's time-ordered history share more than co-occurrence alone shows.
This model adds ``alpha x G_local`` to EASE's Gram matrix ``X^T X``. ``G_local[i, j]`` sums,
over users, ``exp(-(gap - 1) / scale)`` for every pair of movies ``gap <= width`` positions
apart in that user's ratings, sorted by (timestamp, movie).

lambda is chosen first, as ``ease`` chooses it (the validation slice, plain Gram). Then
(width, scale, alpha) is chosen from ``local_grid`` on the same slice, with lambda scaled by
(1 + alpha / 4), the scaling the experiment that found the gain used
(``benchmarks/results/quality_candidates.md``, eighth round). B and the tail factors are then
solved on train plus validation, as ``ease`` does. A grid entry with alpha 0 is plain EASE, so
validation can always keep it. The local term is not a Gram matrix: a setting that is positive
definite on the training part can turn indefinite on all the ratings (or a refit's); the
next-best setting is then solved, down to plain EASE, with a warning.

Two optional stages follow, each kept only if it beats the best validation NDCG so far. Both are
off by default: on ml-100k's ``ua`` they gain +0.004 NDCG@10 (``quality_candidates.md``, fifteenth
round), and the night would pay 12 more solves on every release for it:
- ``penalty_grid``, pairs [p, factor]: DLAE's dropout penalty (Steck 2020) adds p / (1 - p) x
  diag(G) to lambda, which is scaled by ``factor`` (a penalty shifts the best lambda down).
- ``rating_weights``, values c: each user's row holds 1 + c x (rating - the user's mean) instead of
  1, in training and in scoring (``weighted_rows``; the API's fold-in weights a visitor's stars the
  same way). A refit takes the chosen ``penalty`` and ``rating_weight`` as fixed values.
  ``validation_scores`` scores the rows it is given: ``rank_blend`` passes binary ones.

The local Gram needs timestamps. Without them (``Interactions.timestamp`` is None) ``fit``
raises before any work and says so. Each (width, scale) costs ``width`` passes over the
ratings, each accumulating a dense head x head matrix (~0.3 s at 5,000 movies), so this model is
for the small scale profile (the ml-100k and ml-latest-small sizes: ~3 s and ~48 s a fit against
EASE's ~1 s and ~19 s). A warm refit starts, as EASE's does, from the candidate's plain Gram
plus the ratings it did not see (not after a row weight, whose rows are not binary); the local
term is then rebuilt on all of them. model.json
records the chosen setting and the lambda actually solved with (``local_lambda``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.ease import EASE, gram_matrix, solve_ease, solve_ease_parts, solve_penalised_parts
from recsys_core.models.interaction_utils import union_interactions, weighted_rows
from recsys_core.prep.interactions import Interactions

log = logging.getLogger(__name__)

# (width, scale, alpha); alpha 0 is plain EASE. The non-zero settings are those of the experiment.
PLAIN: tuple[int, float, float] = (0, 1.0, 0.0)  # no local term: plain EASE, always definite
DEFAULT_LOCAL_GRID: tuple[tuple[int, float, float], ...] = (
    PLAIN,
    *((w, s, a) for w, s in ((5, 2.0), (20, 5.0), (50, 20.0)) for a in (0.25, 0.5, 1.0)),
)


def local_gram(data: Interactions, head: np.ndarray, n_movies: int, width: int, scale: float) -> np.ndarray:
    """Sum over users of exp(-(gap - 1) / scale) for head-movie pairs <= ``width`` apart in time order.

    Positions count every rating (tail movies included), so a gap means the same whatever the
    head is. Returns a dense, symmetric head x head matrix with a zero diagonal.
    """
    n_head = len(head)
    out = np.zeros(n_head * n_head, np.float64)
    if width <= 0 or not len(data):
        return out.reshape(n_head, n_head)
    if data.timestamp is None:
        raise ModelError("session_ease: the ratings have no timestamps; the local Gram needs each user's time order.")
    order = np.lexsort((data.movie_idx, data.timestamp, data.user_idx))
    users = data.user_idx[order]
    position = np.full(n_movies, -1, np.int64)
    position[head] = np.arange(n_head)
    movies = position[data.movie_idx[order]]
    for gap in range(1, width + 1):
        a, b = movies[:-gap], movies[gap:]
        same_user = users[:-gap] == users[gap:]
        if not same_user.any():  # no user has this many ratings: no longer gap can pair either
            break
        keep = same_user & (a >= 0) & (b >= 0) & (a != b)
        weight = np.exp(-(gap - 1) / scale)
        out += np.bincount(a[keep] * n_head + b[keep], minlength=n_head * n_head) * weight
    matrix = out.reshape(n_head, n_head)
    return matrix + matrix.T


def solve_parts(system: np.ndarray, lam: float, penalty: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(B, diag(P), the tail's column scale) of ``system``: EASE's solve, or DLAE's with a penalty
    (``solve_penalised_parts``; EASE needs no column scale, so None)."""
    if not penalty:
        return (*solve_ease_parts(system, lam), None)
    return solve_penalised_parts(system, lam, penalty)


class SessionEASE(EASE):
    name = "session_ease"
    description = "EASE plus a time-local co-occurrence term (movies rated close together), chosen on validation."

    def fixed_settings(self) -> dict[str, Any]:
        """The chosen lambda, local setting, penalty and row weight: a refit solves once."""
        return {
            **super().fixed_settings(),
            "local_grid": [list(self.local)],
            "penalty_grid": [],
            "rating_weights": [],
            "penalty": [self.penalty, self.penalty_factor],
            "rating_weight": self.rating_weight,
        }

    def fit(self, train: Interactions, validation: Interactions | None = None) -> SessionEASE:
        self._grid = self._checked_grid(train)
        self._extras = self._checked_extras()
        super().fit(train, validation)  # head and lambda as EASE chooses them; B through _solve_final
        return self

    def start_from(self, other: Recommender, epoch_scale: float) -> bool:
        """As EASE's, except after a candidate with weighted rows: the warm path adds the new
        ratings to the candidate's rows, which are weighted while its kept Gram is binary, so the
        refit builds its own Gram (one sparse product at this profile's sizes)."""
        if getattr(other, "rating_weight", 0.0):
            return False
        return super().start_from(other, epoch_scale)

    def _solve_final(
        self, gram: np.ndarray, train: Interactions, validation: Interactions | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Choose the local setting on validation (train-only weights), then solve B with its term
        added to the Gram of train plus validation, lambda scaled by (1 + alpha / 4).

        The local term is not a Gram matrix, so more ratings can make a setting that was
        positive definite on the training part indefinite on all of them (or on a refit's). The
        next-best setting is then solved, down to plain EASE (always definite), with a warning;
        ``local`` records the one used. A night never fails for it. The optional penalty and row
        weight are chosen after the local setting (``_search_extras``) and every setting tried
        here is solved with them."""
        has_validation = validation is not None and len(validation) > 0
        self.history["local_val_ndcg"] = []
        self.history["extra_val_ndcg"] = []
        ranked = list(self._grid)
        penalty, factor, weight = self._extras["fixed"]
        searched = has_validation and bool(self._extras["penalties"] or self._extras["weights"])
        if has_validation:
            # the training part's binary rows, plain Gram and local terms, shared by both searches
            seen, train_local = train.to_csr(), {}
            plain = gram_matrix(seen[:, self._active])
            ranked = self._search_local(train, validation, self._grid, seen, plain, train_local)
            if searched:
                penalty, factor, weight = self._search_extras(train, validation, ranked[0], seen, plain, train_local)
            del seen, plain, train_local
        self.penalty, self.penalty_factor, self.rating_weight = penalty, factor, weight
        if has_validation and not searched and (penalty or weight):  # fixed extras: train-only weights with them
            self._b_train = self._train_weights(train, ranked[0])
        if all(alpha and width for width, _, alpha in ranked):  # the list must end in a definite setting
            ranked.append(PLAIN)
        everything = union_interactions(train, validation)
        if weight:  # the rows scored from now on, and their Gram
            self._rows = weighted_rows(everything, weight)
            gram = self._head_gram(self._rows)
        local: dict[tuple[int, float], np.ndarray] = {}  # the last (width, scale)'s matrix, for its other alphas
        failed: dict[tuple[int, float], float] = {}  # the smallest alpha found indefinite per (width, scale)
        for rank, setting in enumerate(ranked):
            width, scale, alpha = setting
            if alpha >= failed.get((width, scale), np.inf):
                # lambda_min(G + lam I + alpha (L + lam/4 I)) is concave in alpha and > 0 at 0: a larger
                # alpha than one found indefinite is indefinite too
                continue
            if (width, scale) not in local:
                local.clear()  # one dense head x head matrix at a time
            system, lam = self._local_system(gram, everything, setting, local)
            lam *= factor
            try:
                b, diag_p, self._column_scale = solve_parts(system, lam, penalty)
            except ModelError as exc:
                if not (alpha and width):  # plain EASE: lambda itself is unusable
                    raise ModelError(
                        f"session_ease: the regularised Gram matrix is not positive definite even without the "
                        f"local term at lambda {self.lam}; give params.lambdas positive values ({exc})."
                    ) from None
                failed[(width, scale)] = min(alpha, failed.get((width, scale), np.inf))
                log.warning(
                    "session_ease: setting %s makes the regularised matrix of all %s ratings indefinite; "
                    "solving the next-best setting instead",
                    setting,
                    f"{len(everything):,}",
                )
                continue
            self.local, self.local_lambda = setting, lam
            if rank and has_validation:  # the train-only weights must be this setting's too
                self._b_train = self._train_weights(train, setting)
            return b, diag_p
        raise AssertionError("unreachable: plain EASE ends the list")  # pragma: no cover

    def _search_extras(
        self,
        train: Interactions,
        validation: Interactions,
        setting: tuple[int, float, float],
        seen: sp.csr_matrix,
        plain: np.ndarray,
        local: dict[tuple[int, float], np.ndarray],
    ) -> tuple[float, float, float]:
        """(penalty, lambda factor, row weight) on validation, for the best local ``setting``:
        first each [p, factor] of ``penalty_grid``, then each c of ``rating_weights`` with the
        penalty kept; a stage is kept only if it beats the best validation NDCG so far (the
        local search's best at the start). Weights fitted on ``train`` only; ``seen``, ``plain``
        and ``local`` are the local search's binary rows, Gram and local terms of it (the local
        term does not depend on row weights)."""
        k = int(self.params.get("k", 10))
        scores = [v for v in self.history["local_val_ndcg"] if np.isfinite(v)]
        best = max(scores) if scores else -np.inf
        penalty, factor, weight = 0.0, 1.0, 0.0

        def score(rows: sp.csr_matrix, gram: np.ndarray, p: float, f: float) -> tuple[float, np.ndarray | None]:
            system, lam = self._local_system(gram, train, setting, local)
            try:
                b = solve_parts(system, lam * f, p)[0]
            except ModelError:  # indefinite: not a candidate
                self.history["extra_val_ndcg"].append(float("nan"))
                return -np.inf, None
            ndcg = self._validation_ndcg(rows, b, validation, k)
            self.history["extra_val_ndcg"].append(ndcg)
            return ndcg, b

        for p, f in self._extras["penalties"]:
            ndcg, b = score(seen, plain, p, f)
            if ndcg > best:
                best, penalty, factor, self._b_train = ndcg, p, f, b
        for c in self._extras["weights"]:
            rows = weighted_rows(train, c)
            ndcg, b = score(rows, self._head_gram(rows), penalty, factor)
            if ndcg > best:
                best, weight, self._b_train = ndcg, c, b
        log.info(
            "session_ease: penalty %s (lambda x %s), row weight %s; validation NDCG@%d %.4f",
            penalty,
            factor,
            weight,
            k,
            best,
        )
        return penalty, factor, weight

    def _local_system(
        self,
        gram: np.ndarray,
        data: Interactions,
        setting: tuple[int, float, float],
        cache: dict[tuple[int, float], np.ndarray],
    ) -> tuple[np.ndarray, float]:
        """``setting``'s matrix and lambda: ``gram`` + alpha x the local Gram of ``data`` (kept in
        ``cache`` per (width, scale), so the alphas of one share it), lambda x (1 + alpha / 4)."""
        width, scale, alpha = setting
        lam = self.lam * (1 + alpha / 4)
        if not (alpha and width):
            return gram, lam
        if (width, scale) not in cache:
            cache[(width, scale)] = local_gram(data, self._active, self.n_movies, width, scale)
        return gram + alpha * cache[(width, scale)], lam

    def _head_gram(self, rows: sp.csr_matrix) -> np.ndarray:
        """The Gram matrix of (weighted) rows over the head, formed in float64: weighted values are
        not the small integers float32 sums exactly."""
        return gram_matrix(rows[:, self._active].astype(np.float64))

    def _train_weights(self, train: Interactions, setting: tuple[int, float, float]) -> np.ndarray:
        """B of ``setting`` (with the chosen penalty and row weight) fitted on the training part
        only (a fallback's ``validation_scores``)."""
        rows = weighted_rows(train, self.rating_weight) if self.rating_weight else train.to_csr()
        system, lam = self._local_system(self._head_gram(rows), train, setting, {})
        return solve_parts(system, lam * self.penalty_factor, self.penalty)[0]

    def _checked_grid(self, train: Interactions) -> list[tuple[int, float, float]]:
        """``params.local_grid`` as (width, scale, alpha) tuples; every refusal before any work."""
        raw = self.params.get("local_grid", DEFAULT_LOCAL_GRID)
        problem = (
            "session_ease: params.local_grid must be a non-empty list of [width, scale, alpha] entries "
            f"(an integer width >= 0, scale > 0, alpha >= 0); got {raw!r}."
        )
        try:
            grid = [(int(w), float(sc), float(a)) for w, sc, a in raw]
        except (TypeError, ValueError):
            raise ModelError(problem) from None
        if not grid or any(not (w >= 0 and sc > 0 and a >= 0) for w, sc, a in grid):  # NaN fails too
            raise ModelError(problem)
        if self.params.get("blocked_gram", False):
            raise ModelError(
                "session_ease: the large scale profile is not supported (each width is that many passes over "
                "the ratings into a dense head x head matrix); use --model ease at this size."
            )
        if train.timestamp is None and any(w > 0 and a > 0 for w, _, a in grid):
            raise ModelError(
                "session_ease: the ratings have no timestamps; the local term needs each user's time order. "
                "Use --model ease, or give the ratings a timestamp column."
            )
        return grid

    def _checked_extras(self) -> dict[str, Any]:
        """``penalty_grid``, ``rating_weights`` and the fixed ``penalty`` / ``rating_weight`` a refit
        passes; every refusal before any work."""
        raw_grid = self.params.get("penalty_grid", [])
        raw_weights = self.params.get("rating_weights", [])
        raw_fixed = self.params.get("penalty", [0.0, 1.0])
        raw_weight = self.params.get("rating_weight", 0.0)
        problem = (
            "session_ease: params.penalty_grid must be a list of [p, factor] pairs (0 <= p < 1, factor > 0), "
            "params.penalty one such pair, params.rating_weights a list of numbers in [0, 1] and "
            f"params.rating_weight one; got {raw_grid!r}, {raw_fixed!r}, {raw_weights!r}, {raw_weight!r}."
        )
        try:
            penalties = [(float(p), float(f)) for p, f in raw_grid]
            weights = [float(c) for c in raw_weights]
            fixed_p, fixed_f = (float(v) for v in raw_fixed)
            fixed_c = float(raw_weight)
        except (TypeError, ValueError):
            raise ModelError(problem) from None
        if (penalties and (fixed_p, fixed_f) != (0.0, 1.0)) or (weights and fixed_c):
            raise ModelError(
                "session_ease: give either params.penalty_grid or a fixed params.penalty, and either "
                "params.rating_weights or a fixed params.rating_weight, not both (a refit passes the fixed values "
                f"with empty grids); got {raw_grid!r} with {raw_fixed!r}, {raw_weights!r} with {raw_weight!r}."
            )
        pairs = [*penalties, (fixed_p, fixed_f)]
        if any(not (0.0 <= p < 1.0 and f > 0.0) for p, f in pairs) or any(
            not 0.0 <= c <= 1.0 for c in [*weights, fixed_c]
        ):  # NaN fails too
            raise ModelError(problem)
        return {"penalties": penalties, "weights": weights, "fixed": (fixed_p, fixed_f, fixed_c)}

    def _search_local(
        self,
        train: Interactions,
        validation: Interactions,
        grid: list[tuple[int, float, float]],
        seen: sp.csr_matrix,
        plain: np.ndarray,
        local: dict[tuple[int, float], np.ndarray],
    ) -> list[tuple[int, float, float]]:
        """The definite settings, best validation NDCG first; their weights fitted on ``train`` only
        (the best one's kept as ``_b_train``). ``seen`` and ``plain`` are the training part's binary
        rows and Gram; ``local`` collects its local matrices, one per (width, scale) whatever the alpha."""
        k = int(self.params.get("k", 10))
        scored: list[tuple[float, int, tuple[int, float, float]]] = []
        for setting in grid:
            try:
                b = solve_ease(*self._local_system(plain, train, setting, local))
            except ModelError:  # the local term is not a Gram matrix: a large alpha can make it indefinite
                log.info("session_ease: %s makes the regularised matrix indefinite; skipped", setting)
                self.history["local_val_ndcg"].append(float("nan"))
                continue
            ndcg = self._validation_ndcg(seen, b, validation, k)
            self.history["local_val_ndcg"].append(ndcg)
            if not scored or -ndcg < min(scored)[0]:  # strictly better: ties keep the earlier setting
                self._b_train = b
            scored.append((-ndcg, len(scored), setting))
        if not scored:
            raise ModelError(
                f"session_ease: every setting of params.local_grid {grid} makes the regularised matrix indefinite "
                "at this lambda; include [0, 1.0, 0.0] (plain EASE) or raise params.lambdas."
            )
        return [setting for _, _, setting in sorted(scored)]

    def _json_state(self) -> dict[str, Any]:
        return {
            **super()._json_state(),
            "local": list(self.local),
            "local_lambda": self.local_lambda,
            "penalty": self.penalty,
            "penalty_lambda_factor": self.penalty_factor,
            "rating_weight": self.rating_weight,
        }

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        super()._load_state(directory, state)
        self.local = tuple(state.get("local", PLAIN))
        self.local_lambda = float(state.get("local_lambda", self.lam))
        self.penalty = float(state.get("penalty", 0.0))  # a model saved before the penalty: none
        self.penalty_factor = float(state.get("penalty_lambda_factor", 1.0))
        self.rating_weight = float(state.get("rating_weight", 0.0))
