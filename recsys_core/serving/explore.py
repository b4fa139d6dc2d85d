"""Exploration slots: the last positions of each list go to movies no other list shows.

A ranker's all-user top-N repeats the same few hundred movies: on ml-latest-small the default's
lists cover ~5% of the catalogue, because every user's best scores sit on the same popular,
well-connected movies. Re-weighting the scores by popularity trades accuracy badly (15%
coverage costs ~0.06 NDCG@10, ``benchmarks/results/quality_candidates.md``, third round).
Re-ranking only the *tail* of each list costs far less: the first ``top_n - slots`` movies stay
as ranked, and each of the last ``slots`` positions takes the user's best-ranked movie among
their own top ``depth`` that no list shows yet (aggregate-diversity re-ranking in the spirit of
Adomavicius & Kwon, 2012). Every movie offered is still one the model ranks in that user's top
``depth``; only which of them fill the last positions changes.

Users are visited in a seeded random order, slot by slot in blocks of ``BLOCK_USERS`` (numpy
over a block instead of a Python step per user): a block's users choose at once, and one who
wants an unshown movie an earlier user of the block also wants chooses again, so no unshown
movie is handed out twice. When a user's pool has no unshown movie left, the slot keeps the
best-ranked remaining one, as without exploration. Each list's explored movies are put back in
the model's order, so scores never increase with rank (the published table's contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recsys_core.errors import ConfigError

if TYPE_CHECKING:  # the configuration imports the policy; scoring's imports stay out of its start-up
    from recsys_core.serving.topn import TopN

BLOCK_USERS = 64


@dataclass(frozen=True)
class ExplorePolicy:
    """``slots`` of each ``top_n`` list explore ``depth`` candidates; slots 0 is no exploration."""

    slots: int = 0
    depth: int = 100
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.slots > 0

    def candidates(self, top_n: int) -> int:
        """How many movies per user the scorer must return for this policy."""
        return max(top_n, self.depth) if self.active else top_n

    def check(self, top_n: int) -> None:
        """Refuse settings that cannot work, naming the option."""
        if self.slots < 0 or self.slots >= top_n:
            raise ConfigError(
                f"--explore-slots {self.slots} must be between 0 and --top-n - 1 ({top_n - 1}): at least the "
                "first movie of each list stays as the model ranks it. Use 0 to turn exploration off."
            )
        if self.active and self.depth <= top_n:
            raise ConfigError(
                f"--explore-depth {self.depth} must be above --top-n {top_n}: explored movies come from the "
                "user's own ranking beyond the list, e.g. --explore-depth 100."
            )

    def summary(self) -> dict[str, int]:
        return {"slots": self.slots, "depth": self.depth, "seed": self.seed}


def explore_top_n(candidates: TopN, top_n: int, policy: ExplorePolicy) -> TopN:
    """Each user's ``top_n`` list from their ranked ``candidates``, the last ``policy.slots`` explored.

    ``candidates`` is a top-``depth`` (or longer) ranking per user, best first, -1 padded, as
    ``recommend_top_n`` returns it for every user whose lists are published together.
    """
    from recsys_core.serving.topn import TopN

    policy.check(top_n)
    movies = np.asarray(candidates.movie_idx)[:, : max(top_n, policy.depth)]
    scores = np.asarray(candidates.scores)[:, : movies.shape[1]]
    if not policy.active or movies.shape[1] <= top_n:
        return TopN(candidates.user_idx, movies[:, :top_n].copy(), scores[:, :top_n].copy())
    keep = top_n - policy.slots
    head = movies[:, :keep]
    n_movies = int(movies.max()) + 1 if movies.size else 0
    shown = np.bincount(head[head >= 0], minlength=n_movies)
    pool = movies[:, keep:]
    columns = np.arange(pool.shape[1])
    picked = np.full((len(movies), policy.slots), -1, np.int64)  # columns of ``pool``
    order = np.random.default_rng(policy.seed).permutation(len(movies))
    for start in range(0, len(order), BLOCK_USERS):
        rows = order[start : start + BLOCK_USERS]
        block, used = pool[rows], pool[rows] < 0
        for slot in range(policy.slots):
            pending = np.arange(len(rows))
            while len(pending):  # a user who loses an unshown movie to an earlier one picks again
                column, granted = _claim(block[pending], used[pending], shown, columns)
                won, taken = pending[granted], column[granted]
                picked[rows[won], slot] = taken
                won, taken = won[taken >= 0], taken[taken >= 0]
                used[won, taken] = True
                np.add.at(shown, block[won, taken], 1)
                pending = pending[~granted]
    picked = np.where(picked < 0, np.iinfo(np.int64).max, picked)  # nothing left: padding, last
    picked.sort(axis=1)  # back in the model's order
    valid = picked < pool.shape[1]
    safe = np.where(valid, picked, 0)
    tail_movies = np.where(valid, np.take_along_axis(pool, safe, axis=1), -1)
    tail_scores = np.where(valid, np.take_along_axis(scores[:, keep:], safe, axis=1), -np.inf)
    return TopN(
        candidates.user_idx,
        np.concatenate([head, tail_movies], axis=1).astype(np.int32),
        np.concatenate([scores[:, :keep], tail_scores], axis=1).astype(np.float32),
    )


def _claim(
    block: np.ndarray, used: np.ndarray, shown: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's choice: its best-ranked unused movie no list shows, else its best-ranked unused one.

    Returns (pool column, whether the row gets it). Rows whose pool is used up get column -1. An
    unshown movie wanted by several rows goes to the first of them; already shown movies (the
    fallback) go to every row that wants them.
    """
    exposed = shown[np.maximum(block, 0)] > 0
    key = np.where(used, np.iinfo(np.int64).max, exposed * block.shape[1] + columns)
    column = key.argmin(axis=1)
    at = np.arange(len(block))
    left = ~used[at, column]
    fresh = left & ~exposed[at, column]
    granted = ~fresh
    claims = np.flatnonzero(fresh)
    _, first = np.unique(block[claims, column[claims]], return_index=True)
    granted[claims[first]] = True
    return np.where(left, column, -1), granted
