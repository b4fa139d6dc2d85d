"""Exploration: the ends of the lists go to movies no list shows yet, up to a coverage goal.

A ranker's all-user top-N repeats the same few hundred movies: on ml-latest-small the default's
lists cover ~5% of the catalogue, because every user's best scores sit on the same popular,
well-connected movies. Re-weighting the scores by popularity trades accuracy badly (15%
coverage costs ~0.06 NDCG@10, ``benchmarks/results/quality_candidates.md``, third round).
Re-ranking only the *tail* of each list costs far less: the first ``top_n - slots`` movies stay
as ranked, and the last ``slots`` positions may take movies from the user's own top ``depth``
that no list shows yet (aggregate-diversity re-ranking in the spirit of Adomavicius & Kwon,
2012). Every movie offered is still one the model ranks in that user's top ``depth``; only which
of them fill the last positions changes. With a ``coverage`` goal, handing out stops as soon as
the lists cover that share of the catalogue, and lists that already do are left as ranked.

Who gets a movie: candidates are handed out rank by rank. At the list's first explored rank,
every user whose slots are not full takes their own movie there if no list shows it yet; where
several users want the same one, a seeded random one of them gets it. Then the next rank, down
to ``depth``. So an unshown movie goes to a user who ranks it as high as anyone does, which
matters: a first version that visited users one by one in a random order, each taking their
best-ranked unshown movies, reached 15.0% coverage on ml-latest-small at NDCG@10 0.3669, where
this one reaches 15.3% at 0.3726 (2 slots, depth 200, seed 0; ``benchmarks/results/explore.md``).
No unshown movie is handed out twice. Slots left empty when a user's top ``depth`` has no unshown
movie keep the user's best-ranked remaining movies, as without exploration: those may be movies
other lists show, handed out or not. Each list's explored movies are put back in the model's
order, so scores never increase with rank (the published table's contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys_core.errors import ConfigError

if TYPE_CHECKING:  # the configuration imports the policy; scoring's imports stay out of its start-up
    from recsys_core.serving.topn import TopN


@dataclass(frozen=True)
class ExplorePolicy:
    """Up to ``slots`` of each ``top_n`` list explore ``depth`` candidates; slots 0 is no exploration.

    ``coverage`` (a share of the catalogue, or None) stops handing out unshown movies as soon as
    the lists cover that share: the goal is met by the shallowest ranks, and the rest of the
    lists stay as ranked."""

    slots: int = 0
    depth: int = 100
    seed: int = 0
    coverage: float | None = None

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
                f"--explore-slots {self.slots} (the option or RECSYS_EXPLORE_SLOTS) must be between 0 and --top-n - 1 "
                f"({top_n - 1}): at least the first movie of each list stays as the model ranks it. Use 0 to turn "
                "exploration off."
            )
        if self.coverage is not None and not 0 < self.coverage <= 1:
            raise ConfigError(
                f"--explore-coverage {self.coverage} (the option or RECSYS_EXPLORE_COVERAGE) must be a share of the "
                "catalogue in (0, 1], e.g. 0.15; 1 fills every explore slot."
            )
        if self.active and self.depth <= top_n:
            raise ConfigError(
                f"--explore-depth {self.depth} (the option or RECSYS_EXPLORE_DEPTH) must be above --top-n "
                f"{top_n}: explored movies come from the user's own ranking beyond the list, e.g. 20 x --top-n "
                "(the default, at most max(200, 2 x --top-n))."
            )

    def summary(self) -> dict[str, Any]:
        return {"slots": self.slots, "depth": self.depth, "seed": self.seed, "coverage_goal": self.coverage}

    def shape(self) -> dict[str, Any]:
        """What the published lists depend on: nothing but "off" when inactive (for fingerprints)."""
        return self.summary() if self.active else {"slots": 0}


def default_depth(top_n: int) -> int:
    """20 x top_n candidates per user, capped at max(200, 2 x top_n): scoring holds users x depth of
    them at once (~13 GB for ml-25m's users at depth 10,000), so a long list explores less deep."""
    return min(20 * top_n, max(200, 2 * top_n))


def goal_movies(coverage: float, n_movies: int) -> int:
    """How many distinct movies a coverage goal asks for; the tolerance keeps 0.07 x 100 at 7, not 8."""
    return int(np.ceil(coverage * n_movies - 1e-9))


def explore_top_n(candidates: TopN, top_n: int, policy: ExplorePolicy, n_movies: int | None = None) -> TopN:
    """Each user's ``top_n`` list from their ranked ``candidates``, the last ``policy.slots`` explored.

    ``candidates`` is a top-``depth`` (or longer) ranking per user, best first, -1 padded, as
    ``recommend_top_n`` returns it for every user whose lists are published together.
    ``n_movies`` is the catalogue's size, the denominator of a coverage goal (default: the
    largest movie index in ``candidates`` plus one).
    """
    from recsys_core.serving.topn import TopN

    policy.check(top_n)
    movies = np.asarray(candidates.movie_idx)[:, : max(top_n, policy.depth)]
    scores = np.asarray(candidates.scores)[:, : movies.shape[1]]
    if not policy.active or movies.shape[1] <= top_n:
        return TopN(candidates.user_idx, movies[:, :top_n].copy(), scores[:, :top_n].copy())
    n_movies = max(int(movies.max()) + 1 if movies.size else 0, n_movies or 0)
    plain = movies[:, :top_n]
    goal = n_movies if policy.coverage is None else goal_movies(policy.coverage, n_movies)
    if policy.coverage is not None and np.unique(plain[plain >= 0]).size >= goal:
        return TopN(candidates.user_idx, plain.copy(), scores[:, :top_n].copy())  # the goal needs nothing
    keep = top_n - policy.slots
    head = movies[:, :keep]
    pool = movies[:, keep:]
    shown = np.zeros(n_movies, bool)
    shown[head[head >= 0]] = True
    taken = np.zeros(pool.shape, bool)
    free = np.full(len(movies), policy.slots)
    rng = np.random.default_rng(policy.seed)
    # the goal counts movies in the head or handed out: the lists' final coverage is at least that
    for column in range(pool.shape[1]):  # rank by rank: a movie goes to a user who ranks it highest
        users = rng.permutation(np.flatnonzero(free > 0))
        needed = goal - int(shown.sum())
        if not len(users) or needed <= 0:
            break
        wanted = pool[users, column]
        fresh = (wanted >= 0) & ~shown[np.maximum(wanted, 0)]
        users, wanted = users[fresh], wanted[fresh]
        _, first = np.unique(wanted, return_index=True)  # several users at this rank: a random one
        first = np.sort(first)[:needed]  # in the random order, only as many as the goal still needs
        users, wanted = users[first], wanted[first]
        shown[wanted] = True
        taken[users, column] = True
        free[users] -= 1
    # slots nothing unshown filled keep the user's best-ranked remaining movies, as without exploring
    spare = (pool >= 0) & ~taken
    taken |= spare & (np.cumsum(spare, axis=1, dtype=np.int32) <= free[:, None])
    # each row's taken columns, left to right (the model's order); at most ``slots`` per row
    rows, columns = np.nonzero(taken)
    first = np.searchsorted(rows, np.arange(len(pool)))
    picked = np.full((len(pool), policy.slots), np.iinfo(np.int64).max, np.int64)
    picked[rows, np.arange(len(rows)) - first[rows]] = columns
    valid = picked < pool.shape[1]
    safe = np.where(valid, picked, 0)
    tail_movies = np.where(valid, np.take_along_axis(pool, safe, axis=1), -1)
    tail_scores = np.where(valid, np.take_along_axis(scores[:, keep:], safe, axis=1), -np.inf)
    return TopN(
        candidates.user_idx,
        np.concatenate([head, tail_movies], axis=1).astype(np.int32),
        np.concatenate([scores[:, :keep], tail_scores], axis=1).astype(np.float32),
    )
