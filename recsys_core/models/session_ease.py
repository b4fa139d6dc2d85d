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
validation can always keep it.

The local Gram needs timestamps. Without them (``Interactions.timestamp`` is None) ``fit``
raises and says so. The per-pair pass costs O(ratings x width) for each width in the grid, so
this model is for the small scale profile (the ml-100k and ml-latest-small sizes). A warm refit
starts from scratch, because the candidate's Gram lacks the local term of the validation ratings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.ease import EASE, gram_matrix, solve_ease, solve_ease_parts
from recsys_core.models.interaction_utils import union_interactions
from recsys_core.prep.interactions import Interactions

log = logging.getLogger(__name__)

# (width, scale, alpha); alpha 0 is plain EASE. The non-zero settings are those of the experiment.
DEFAULT_LOCAL_GRID: tuple[tuple[int, float, float], ...] = (
    (0, 1.0, 0.0),
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
        keep = (users[:-gap] == users[gap:]) & (a >= 0) & (b >= 0) & (a != b)
        if not keep.any():
            break
        weight = np.exp(-(gap - 1) / scale)
        out += np.bincount(a[keep] * n_head + b[keep], minlength=n_head * n_head) * weight
    matrix = out.reshape(n_head, n_head)
    return matrix + matrix.T


class SessionEASE(EASE):
    name = "session_ease"
    description = "EASE plus a time-local co-occurrence term (movies rated close together), chosen on validation."

    def start_from(self, other: Recommender, epoch_scale: float) -> bool:
        return False  # the candidate's Gram has no local term for the ratings it did not see

    def fixed_settings(self) -> dict[str, Any]:
        """The chosen lambda and local setting: a refit solves once."""
        return {**super().fixed_settings(), "local_grid": [list(self.local)]}

    def fit(self, train: Interactions, validation: Interactions | None = None) -> SessionEASE:
        grid = [tuple(entry) for entry in self.params.get("local_grid", DEFAULT_LOCAL_GRID)]
        if any(len(entry) != 3 or int(entry[0]) < 0 or float(entry[1]) <= 0 or float(entry[2]) < 0 for entry in grid):
            raise ModelError(
                f"session_ease: params.local_grid must list [width >= 0, scale > 0, alpha >= 0] entries; got {grid}."
            )
        if self.params.get("blocked_gram", False):
            raise ModelError(
                "session_ease: the large scale profile is not supported (its local pass is O(ratings x width)); "
                "use --model ease at this size."
            )
        super().fit(train, validation)  # head, lambda on validation, B on train + validation (plain)
        union = union_interactions(train, validation)
        has_validation = validation is not None and len(validation) > 0
        seen = train.to_csr()
        self.local = (int(grid[0][0]), float(grid[0][1]), float(grid[0][2]))
        self.history["local_val_ndcg"] = []
        if has_validation:  # also gives the train-only weights (validation_scores) for a fixed setting
            self.local = self._search_local(train, seen, validation, grid)
        width, scale, alpha = self.local
        gram = gram_matrix(self._rows[:, self._active])
        if alpha:
            gram += alpha * local_gram(union, self._active, self.n_movies, width, scale)
        self._b, diag_p = solve_ease_parts(gram, self.lam * (1 + alpha / 4))
        if not has_validation:
            self._b_train = self._b
        self._gram = None  # no warm refit from it (see start_from)
        self._fit_tail(diag_p)
        return self

    def _search_local(
        self, train: Interactions, seen: sp.csr_matrix, validation: Interactions, grid: list[tuple]
    ) -> tuple[int, float, float]:
        """The (width, scale, alpha) whose weights, fitted on ``train``, rank validation best."""
        k = int(self.params.get("k", 10))
        plain = gram_matrix(seen[:, self._active])
        best: tuple[float, tuple[int, float, float]] | None = None
        for width, scale, alpha in grid:
            setting = (int(width), float(scale), float(alpha))
            gram = plain + alpha * local_gram(train, self._active, self.n_movies, *setting[:2]) if alpha else plain
            try:
                b = solve_ease(gram, self.lam * (1 + alpha / 4))
            except ModelError:  # the local term is not a Gram matrix: a large alpha can make it indefinite
                log.info("session_ease: %s makes the regularised matrix indefinite; skipped", setting)
                self.history["local_val_ndcg"].append(float("nan"))
                continue
            ndcg = self._validation_ndcg(seen, b, validation, k)
            self.history["local_val_ndcg"].append(ndcg)
            if best is None or ndcg > best[0]:
                best, self._b_train = (ndcg, setting), b
        if best is None:
            raise ModelError(
                f"session_ease: every setting of params.local_grid {grid} makes the regularised matrix indefinite "
                "at this lambda; include [0, 1.0, 0.0] (plain EASE) or raise params.lambdas."
            )
        return best[1]

    def _json_state(self) -> dict[str, Any]:
        return {**super()._json_state(), "local": list(self.local)}

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        super()._load_state(directory, state)
        self.local = tuple(state.get("local", (0, 1.0, 0.0)))
