"""EASE (Steck 2019): a linear item-to-item autoencoder with a closed-form solution.

Implicit signal only. B = argmin ||X - X B||^2 + lambda ||B||^2 with diag(B) = 0 has the
solution B = I - P / diag(P), P = (X^T X + lambda I)^-1: one inverse of a movies x movies
matrix per lambda. That costs O(m^3): about 0.3 s for ml-100k's 1,682 movies but ~20 s for
ml-latest-small's 9,724 on two cores, so B covers only the ``max_movies`` most-rated movies
(default 5,000; every ml-100k and ml-1m movie). Every other movie is scored by the ridge
regression of its column on the same head rows, ``P X_h^T X_t``, kept as rank-``tail_rank``
factors (default 64; ``tail_factors.py``): no rated movie is stuck at 0, and at ml-25m size
the tail costs ~6 s to fit. ``tail_rank=0`` is plain EASE, the others scoring 0.
lambda is chosen on the validation slice from a small grid (head only), then B and the tail
are refitted on train plus validation. A user's scores are their binary row times B plus their
tail vector times the tail's, dot products, so ``factors()`` is (rows | rows A, B^T | V).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recsys_core.errors import ModelError
from recsys_core.evaluation.metrics import ranking_metrics
from recsys_core.models.base import Recommender
from recsys_core.models.interaction_utils import (
    restrict_to_users,
    sample_validation_users,
    union_interactions,
    validation_ndcg,
)
from recsys_core.models.tail_factors import fit_tail_factors
from recsys_core.prep.interactions import Interactions
from recsys_core.serving.topn import recommend_top_n

DEFAULT_GRID = (100.0, 200.0, 400.0, 800.0, 1600.0)
SCORE_COLUMNS = 64  # columns of B per scoring pass: at ml-25m size 1.65x faster than all 5,000 at once
MAX_MOVIES = 5_000  # movies covered by B (most rated first); the inverse is O(MAX_MOVIES^3)
TAIL_RANK = 64  # rank of the factors that score every other movie (0: they score 0, plain EASE)
# Above these sizes (ml-25m scale) dense per-user matrices no longer fit: lambda is chosen on a
# seeded sample of validation users, and scoring multiplies the sparse rows by B per block
# instead of exposing dense user factors (162k x 5,000 floats, and a 5,000-wide matmul).


def invert_spd(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix via Cholesky (about twice as fast as LU)."""
    factor, info = lapack.dpotrf(matrix, lower=False, overwrite_a=True)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"EASE: the regularised Gram matrix is not positive definite (LAPACK info {info}).")
    return np.triu(inverse) + np.triu(inverse, 1).T


def gram_matrix(rows: sp.csr_matrix, *, blocked: bool = False, block_rows: int = 16_384) -> np.ndarray:
    """X^T X (float64, dense) of binary user rows; computed once per matrix, reused per lambda.

    Large matrices go through dense float32 blocks and BLAS (both cores): scipy's sparse
    product is single-threaded and slow when heavy users rate thousands of movies. The counts
    are integers below 2^24, so float32 accumulation is exact and both paths agree.
    """
    n_rows, n_cols = rows.shape
    if not blocked:
        return (rows.T @ rows).toarray().astype(np.float64)
    gram = np.zeros((n_cols, n_cols), np.float32)
    for start in range(0, n_rows, block_rows):
        block = rows[start : start + block_rows].toarray().astype(np.float32, copy=False)
        gram += block.T @ block
    return gram.astype(np.float64)


def add_rows_to_gram(
    gram: np.ndarray, rows: sp.csr_matrix, added: sp.csr_matrix, *, in_place: bool = False
) -> np.ndarray:
    """The Gram matrix of ``rows + added`` from ``gram`` (that of ``rows``), exactly.

    (X + D)^T (X + D) = X^T X + X^T D + D^T X + D^T D: with D the validation slice (5% of the
    ratings) the sparse cross products cost a small share of a new Gram over every row (16 s at
    ml-25m size). Counts stay integers, so the result equals the direct computation.
    ``in_place`` adds into ``gram`` (float64) instead of a copy: one 5,000 x 5,000 matrix less."""
    out = gram if in_place else np.array(gram, dtype=np.float64)
    cross = (rows.T @ added).toarray()
    out += cross
    out += cross.T
    del cross
    out += (added.T @ added).toarray()
    return out


def solve_ease(rows: sp.csr_matrix | np.ndarray, lam: float, *, blocked: bool = False) -> np.ndarray:
    """The EASE weight matrix (float32, zero diagonal) for binary user rows (or their Gram)."""
    return solve_ease_parts(rows, lam, blocked=blocked)[0]


def solve_ease_parts(
    rows: sp.csr_matrix | np.ndarray, lam: float, *, blocked: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(B, diag(P)): B as ``solve_ease``; with diag(P), ``P = (I - B) diag(P)`` is known too
    (the tail factors need it) without keeping a second head x head matrix."""
    gram = np.array(rows, dtype=np.float64) if isinstance(rows, np.ndarray) else gram_matrix(rows, blocked=blocked)
    gram[np.diag_indices_from(gram)] += lam
    p = invert_spd(gram)
    diag_p = np.diag(p).copy()
    b = -p / diag_p
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32), diag_p


def solve_penalised_parts(gram: np.ndarray, lam: float, penalty: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, diag(P), 1 / Lambda) of DLAE's penalty (Steck 2020): dropout with probability ``penalty``
    adds ``penalty / (1 - penalty) x diag(G)`` to lambda, so popular movies are held back harder.

    ``B = I - P Lambda`` with ``P = (G + Lambda)^-1``; its diagonal only scores movies a user has
    already rated, which are never recommended, so it is set to 0 as EASE's is. The third part is
    the column scale ``inverse_from_ease`` needs to rebuild P for the tail factors. ``penalty`` 0
    is ridge regression without EASE's zero-diagonal constraint, not EASE (``session_ease`` solves
    EASE then). ``gram`` is not changed."""
    if not 0.0 <= penalty < 1.0:
        raise ModelError(f"EASE: the dropout penalty must be in [0, 1); got {penalty!r}.")
    system = np.array(gram, dtype=np.float64)
    diagonal = lam + penalty / (1.0 - penalty) * np.diag(system)
    system[np.diag_indices_from(system)] += diagonal
    p = invert_spd(system)
    diag_p = np.diag(p).copy()
    b = -p * diagonal[None, :]
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32), diag_p, (1.0 / diagonal)


class EASE(Recommender):
    name = "ease"
    needs_tensorflow = False
    predicts_ratings = False
    description = "EASE closed-form linear item autoencoder on implicit rows (lambda from validation)."
    _start: EASE | None = None  # the candidate a warm refit starts from (``start_from``)
    _gram: np.ndarray | None = None  # Gram of the rows B was solved on (kept in memory, not saved)

    def fit(self, train: Interactions, validation: Interactions | None = None) -> EASE:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        seen = train.to_csr()
        grid = [float(v) for v in self.params.get("lambdas", DEFAULT_GRID)]
        self.history = {"lambda": grid, "val_ndcg": []}
        self.lam = grid[len(grid) // 2]
        self._b_train = None
        blocked = bool(self.params.get("blocked_gram", False))  # large profile: dense float32 blocks + BLAS
        self._rows = union_interactions(train, validation).to_csr()
        has_validation = validation is not None and len(validation) > 0
        start, self._start = self._start, None
        if start is not None and not has_validation and len(grid) == 1:
            # warm refit: the candidate's head movies and Gram (consumed), plus the ratings it never saw
            self._active = start._active
            before = start._rows[:, self._active]
            gram, start._gram = start._gram.astype(np.float64), None
            gram = add_rows_to_gram(gram, before, self._rows[:, self._active] - before, in_place=True)
        else:
            counts = np.bincount(train.movie_idx, minlength=train.n_movies)
            limit = int(self.params.get("max_movies", MAX_MOVIES))
            self._active = np.sort(np.argsort(-counts, kind="stable")[:limit]).astype(np.int32)
            if has_validation and len(grid) > 1:
                gram = self._search_lambda(seen, validation, grid, blocked)
            else:
                gram = gram_matrix(self._rows[:, self._active], blocked=blocked)
        self._gram = gram.astype(np.float32)  # integer counts < 2^24: exact; for a warm refit, not saved
        self._column_scale: np.ndarray | None = None  # a penalised solve's (``solve_penalised_parts``)
        self._b, diag_p = self._solve_final(gram, train, validation)
        self._fit_tail(diag_p)
        if self._b_train is None:  # no grid search ran: the training rows' weights, once
            self._b_train = solve_ease(seen[:, self._active], self.lam, blocked=blocked) if has_validation else self._b
        return self

    def _solve_final(
        self, gram: np.ndarray, train: Interactions, validation: Interactions | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, diag(P)) from the head's Gram of train plus validation and the chosen lambda; a
        variant that adds a term to the Gram (``session_ease``) overrides this."""
        return solve_ease_parts(gram, self.lam)

    def _fit_tail(self, diag_p: np.ndarray) -> None:
        """Rank-``tail_rank`` factors for every movie outside the head (``tail_factors``), so no
        rated movie is left at 0; ``tail_rank`` 0 keeps plain EASE (the rest score 0)."""
        rank = int(self.params.get("tail_rank", TAIL_RANK))
        self._tail = np.setdiff1d(np.arange(self.n_movies, dtype=np.int32), self._active)
        if rank <= 0 or not len(self._tail):
            self._set_no_tail()
            return
        rows = self._rows.tocsc()
        x_head, x_tail = rows[:, self._active].tocsr(), rows[:, self._tail].tocsr()
        del rows
        self._tail_a, self._tail_v = fit_tail_factors(
            x_head, x_tail, self._b, diag_p, rank, self.seed, column_scale=self._column_scale
        )
        self._column_scale = None  # needed for the tail only

    def _set_no_tail(self) -> None:
        """Plain EASE: every movie outside the head scores 0 (``tail_rank`` 0, or a model saved
        before the tail existed)."""
        self._tail = np.zeros(0, np.int32)
        self._tail_a = np.zeros((len(self._active), 0), np.float32)
        self._tail_v = np.zeros((0, 0), np.float32)

    def _search_lambda(
        self, seen: sp.csr_matrix, validation: Interactions, grid: list[float], blocked: bool
    ) -> np.ndarray:
        """Choose lambda on the validation slice; returns the Gram of train plus validation rows."""
        k = int(self.params.get("k", 10))
        head = seen[:, self._active]
        gram = gram_matrix(head, blocked=blocked)
        for lam in grid:
            b = solve_ease(gram, lam)
            ndcg = self._validation_ndcg(seen, b, validation, k)
            if not self.history["val_ndcg"] or ndcg > max(self.history["val_ndcg"]):
                self.lam, self._b_train = lam, b
            self.history["val_ndcg"].append(ndcg)
        return add_rows_to_gram(gram, head, self._rows[:, self._active] - head, in_place=True)

    def start_from(self, other: Recommender, epoch_scale: float) -> bool:
        """A warm refit starts from the candidate's Gram matrix over its head movies and adds the
        ratings the candidate did not train on (a sparse update, not a new pass over every
        row); the head stays the candidate's. Only a model fitted in this process has the Gram,
        and the refit takes it (the candidate keeps its B, not its Gram)."""
        if type(other) is not type(self) or getattr(other, "_gram", None) is None:
            return False
        self._start = other
        return True

    def fixed_settings(self) -> dict[str, Any]:
        """The lambda the grid chose: a refit solves once, for that lambda only."""
        return {**self.params, "lambdas": [self.lam]}

    def _validation_ndcg(self, seen: sp.csr_matrix, b: np.ndarray, validation: Interactions, k: int) -> float:
        """Validation NDCG@k; over a seeded sample of ``validation_users`` users when the scale profile sets it."""
        sample = sample_validation_users(validation, self.params.get("validation_users"), self.seed)
        if sample is None:
            return validation_ndcg(self._scatter(seen, b), seen, validation, k)
        rows = seen[sample]
        restricted = restrict_to_users(validation, sample, self.n_users)
        if self.params.get("dense_factors", True):
            return validation_ndcg(self._scatter(rows, b), rows, restricted, k)
        # large profile: rank the head movies only (recommend_top_n's covered path, exact)
        top = recommend_top_n(HeadWeights(rows, b, self._active, self.n_movies), rows, k)
        return ranking_metrics(top.movie_idx, top.user_idx, restricted.to_csr(), k)["ndcg_at_k"]

    def _scatter(self, rows: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
        """Full-catalogue scores: covered movies from B, the others 0."""
        return scatter_head(rows, b, self._active, self.n_movies)

    def _scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """The fitted model's full-catalogue scores: the head from B, the tail from its factors."""
        out = self._scatter(rows, self._b)
        if len(self._tail):
            out[:, self._tail] = np.asarray(rows[:, self._active] @ self._tail_a, np.float32) @ self._tail_v.T
        return out

    def validation_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Scores for the training rows from the weights fitted before the validation refit.

        The refitted weights have seen the validation slice; a blend that tunes on that slice
        needs these instead. Available right after ``fit`` only (not saved). The head only: the
        tail factors are fitted once, on the refitted weights, so tail movies score 0 here
        (their scores are small; ``rank_blend`` tunes its weights on the head's scores)."""
        return self._scatter(rows, self._b_train)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scores(self._rows[np.asarray(user_idx)])

    def covered_scorer(self) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]] | None:
        """The head movies and ``rows @ B`` on them (large profile; dense factors otherwise)."""
        if self.params.get("dense_factors", True):
            return None
        return HeadWeights(self._rows, self._b, self._active, self.n_movies).covered_scorer()

    def tail_factors(self) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], np.ndarray] | None:
        """(tail movies, users -> their tail vectors, the tail movies' vectors), or None without
        a tail: ``recommend_top_n`` ranks them as a factor model beside the head's covered list."""
        if not len(self._tail):
            return None
        head_rows = self._rows[:, self._active].tocsr()

        def user_vectors(user_idx: np.ndarray) -> np.ndarray:
            return np.asarray(head_rows[np.asarray(user_idx)] @ self._tail_a, np.float32)

        return self._tail, user_vectors, self._tail_v

    def factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Dense factors over the head (the user's binary row, B) and the tail's rank-r vectors."""
        if not self.params.get("dense_factors", True):
            return None  # large profile: score_users multiplies sparse rows by B per block instead
        head_rows = self._rows[:, self._active]
        h, r = len(self._active), self._tail_a.shape[1]
        movies = np.zeros((self.n_movies, h + r), np.float32)
        movies[self._active, :h] = self._b.T
        users = np.empty((self.n_users, h + r), np.float32)
        users[:, :h] = head_rows.toarray()
        if r:
            movies[self._tail, h:] = self._tail_v
            users[:, h:] = head_rows @ self._tail_a
        return users, movies

    def _json_state(self) -> dict[str, Any]:
        return {"lambda": self.lam, "tail_movies": len(self._tail), "tail_rank": int(self._tail_a.shape[1])}

    def _save_state(self, directory: Path) -> None:
        np.savez(
            directory / "weights.npz",
            b=self._b,
            active=self._active,
            tail=self._tail,
            tail_a=self._tail_a,
            tail_v=self._tail_v,
        )
        sp.save_npz(directory / "rows.npz", self._rows.tocsr())

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.lam = float(state["lambda"])
        with np.load(directory / "weights.npz", allow_pickle=False) as data:
            self._b, self._active = data["b"], data["active"]
            if "tail" in data:
                self._tail, self._tail_a, self._tail_v = data["tail"], data["tail_a"], data["tail_v"]
            else:
                self._set_no_tail()
        self._rows = sp.load_npz(directory / "rows.npz").tocsr()


class HeadWeights:
    """Binary rows times B on the head movies, 0 on the others: EASE's scores as
    ``recommend_top_n`` reads them (it ranks the head columns and looks at whole rows only
    for users it cannot decide there)."""

    def __init__(self, rows: sp.csr_matrix, b: np.ndarray, active: np.ndarray, n_movies: int) -> None:
        self.rows, self.b, self.active, self.n_movies = rows, b, active, n_movies

    def factors(self) -> None:
        return None

    def covered_scorer(self) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]] | None:
        if len(self.active) == self.n_movies:
            return None
        head, width = self.rows[:, self.active].tocsr(), len(self.active)
        # B in column blocks of 2 MB or less, so the rows of B each sparse row reads stay in cache
        starts = range(0, width, SCORE_COLUMNS)
        blocks = [np.ascontiguousarray(self.b[:, j : j + SCORE_COLUMNS]) for j in starts]

        def score(user_idx: np.ndarray) -> np.ndarray:
            rows = head[np.asarray(user_idx)]
            out = np.empty((rows.shape[0], width), np.float32)
            for j, block in zip(starts, blocks, strict=True):
                out[:, j : j + block.shape[1]] = rows @ block
            return out

        return self.active, score

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return scatter_head(self.rows[np.asarray(user_idx)], self.b, self.active, self.n_movies)


def scatter_head(rows: sp.csr_matrix, b: np.ndarray, active: np.ndarray, n_movies: int) -> np.ndarray:
    """Full-catalogue scores of binary ``rows``: head movies from B, every other movie 0."""
    out = np.zeros((rows.shape[0], n_movies), np.float32)
    out[:, active] = rows[:, active] @ b
    return out
