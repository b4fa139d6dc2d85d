"""A bag of one deep ranker trained several times, each on its own hold-out, scores averaged.

Why. A single Mult-DAE run lands anywhere in a ~0.01 NDCG@10 band on ml-100k ``ua`` depending
on its seed (initial weights, dropout masks, batch order) and on the 5% it holds out to stop:
0.2964-0.3069 over ten runs. Part of each run's error is that noise, and averaging runs removes
some of it. Three members that differ by seed only scored 0.3056 ± 0.0018 over 3 seeds; three
that also hold out different slices (member 0 the pipeline's, member j a per-user 5% of
train + validation seeded by seed + j) scored 0.3099 ± 0.0004, against 0.3003 for one Mult-DAE
and 0.3177 for EASE (benchmarks/results/quality.md, quality_candidates.md). Test data is never
used: each member stops early on its own hold-out, and all of them together see every rating.

Scores are the members' mean logits. For softmax models that ranks exactly like the mean
log-probability (each member's log-partition is a per-user constant), and it stays a dot
product: ``factors()`` concatenates the members' user vectors (scaled by 1/n) and movie
vectors, so scoring and serving keep the fast path.

No ``validation_scores``: members j > 0 train on most of the pipeline's validation slice, so
their scores cannot be judged on it, and ``rank_blend`` refuses the bag as a member.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.ensemble import Ensemble, load_members, save_members
from recsys_core.models.interaction_utils import cut_per_user, union_interactions
from recsys_core.prep.interactions import Interactions

DEFAULT_MEMBER = "mult_dae"
DEFAULT_SIZE = 3  # on ua two members gained most of it and five no more than three (quality_candidates.md)
HOLDOUT = 0.05  # the share each member j > 0 holds out for itself: the pipeline's validation share


class SeedBag(Ensemble):
    name = "mult_dae_bag"
    predicts_ratings = False
    description = "Mean logits of params.size Mult-DAEs (params.member) trained with seeds seed, seed+1, ..."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.params.setdefault("member", DEFAULT_MEMBER)
        self.params.setdefault("size", DEFAULT_SIZE)
        size = int(self.params["size"])
        if size < 1:
            raise ModelError(f"{self.name}: params.size must be at least 1, got {size}.")
        shared = dict(self.params.get("shared", {}))  # every member's parameters
        own = self.params.get("member_settings") or [{}] * size  # a refit's per-member choices
        if len(own) != size:
            raise ModelError(f"{self.name}: params.member_settings has {len(own)} entries for size {size}.")
        self.members = [
            self.create_part(self.params["member"], {**shared, **own[j]}, seed_offset=j) for j in range(size)
        ]
        if self.members[0].predicts_ratings or not self.members[0].ranks:
            raise ModelError(f"{self.name}: member {self.params['member']!r} is not an implicit ranker.")

    def parts(self) -> list[Recommender]:
        return self.members

    def fixed_settings(self) -> dict[str, Any] | None:
        """Each member's own fixed settings (their early-stopped epochs differ)."""
        fixed = [member.fixed_settings() for member in self.members]
        if any(settings is None for settings in fixed):
            return None
        return {**self.params, "member_settings": fixed}

    def fit(self, train: Interactions, validation: Interactions | None = None) -> SeedBag:
        self.n_users, self.n_movies = train.n_users, train.n_movies
        self.history = {}
        for j, member in enumerate(self.members):
            member.fit(*self.member_data(j, train, validation))
            self.collect_history(f"m{j}", member)
        return self

    def member_data(
        self, j: int, train: Interactions, validation: Interactions | None
    ) -> tuple[Interactions, Interactions | None]:
        """Member 0 gets the pipeline's train and validation; member j > 0 holds out its own
        per-user ``holdout`` share of train + validation (seeded by seed + j) and stops early on it.

        Without a validation slice (a refit with fixed epochs) member j > 0 still leaves out the
        same share, so the published bag is built like the evaluated one."""
        if j == 0:
            return train, validation
        kept, held = cut_per_user(
            union_interactions(train, validation), float(self.params.get("holdout", HOLDOUT)), self.seed + j
        )
        return kept, (held if validation is not None and len(held) else None)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        total = sum(member.score_users(user_idx).astype(np.float64) for member in self.members)
        return (total / len(self.members)).astype(np.float32)

    def factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        pairs = [member.factors() for member in self.members]
        if any(pair is None for pair in pairs):
            return None
        users = np.hstack([u for u, _ in pairs]) / np.float32(len(pairs))
        return users.astype(np.float32), np.hstack([v for _, v in pairs]).astype(np.float32)

    def _save_state(self, directory: Path) -> None:
        save_members(self.members, directory)

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.members = load_members(directory, int(self.params["size"]))
