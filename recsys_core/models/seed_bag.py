"""A bag of one deep ranker trained several times, each on its own hold-out, scores averaged.

Why. A single Mult-DAE run lands anywhere in a ~0.01 NDCG@10 band on ml-100k ``ua`` depending
on its seed (initial weights, dropout masks, batch order) and on the 5% it holds out to stop:
0.2964-0.3069 over ten runs. Part of each run's error is that noise, and averaging runs removes
some of it. Three members that differ by seed only scored 0.3056 ± 0.0018 over 3 seeds; three
that also hold out different slices (member 0 the pipeline's, member j floor(5%) of each user's
train + validation ratings, seeded by seed + j) scored 0.3099 ± 0.0004, against 0.3003 for one
Mult-DAE and 0.3177 for EASE (benchmarks/results/quality.md, quality_candidates.md). Test data
is never used: each member stops early on its own hold-out, and all of them together see every
rating. Every member encodes a user from all of the user's ratings (``set_scoring_rows``), not
only those it trained on.

A refit (no validation slice, each member's chosen epochs) trains member j > 0 on the same
share of the ratings and again scores from all of them, so the published bag is built like the
evaluated one. Members do not warm-start (Mult-DAE cannot): a warm refit trains them from their
initialisation, and the log says so.

Scores are the members' mean logits. For softmax models that ranks exactly like the mean
log-probability (each member's log-partition is a per-user constant), and it stays a dot
product: ``factors()`` concatenates the members' user vectors (scaled by 1/n) and movie
vectors, so scoring and serving keep the fast path.

No ``validation_scores``: members j > 0 train on most of the pipeline's validation slice, so
their scores cannot be judged on it, and ``rank_blend`` refuses the bag as a member.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender
from recsys_core.models.ensemble import Ensemble, load_members, save_members
from recsys_core.models.interaction_utils import cut_per_user, union_interactions
from recsys_core.models.output_scores import RowScoredRanker
from recsys_core.prep.interactions import Interactions

log = logging.getLogger(__name__)

DEFAULT_MEMBER = "mult_dae"
DEFAULT_SIZE = 3  # on ua two members gained most of it and five no more than three (quality_candidates.md)
HOLDOUT = 0.05  # the share each member j > 0 holds out for itself (as the pipeline's default slice)


class SeedBag(Ensemble):
    name = "mult_dae_bag"
    predicts_ratings = False
    uses_item_features = False
    description = (
        "Mean logits of params.size Mult-DAEs (params.member), seeds seed, seed+1, ..., each stopping "
        "early on its own hold-out."
    )

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
            raise ModelError(
                f"{self.name}: params.member_settings has {len(own)} entries for params.size {size}; "
                "give one per member, or leave member_settings out (it is written by a refit)."
            )
        holdout = float(self.params.get("holdout", HOLDOUT))
        if not 0.0 < holdout < 1.0:
            raise ModelError(f"{self.name}: params.holdout must be between 0 and 1 (a share), got {holdout}.")
        self.members = [
            self.create_part(self.params["member"], {**shared, **own[j]}, seed_offset=j) for j in range(size)
        ]
        if not isinstance(self.members[0], RowScoredRanker):
            raise ModelError(
                f"{self.name}: params.member {self.params['member']!r} does not encode users from their rated "
                "movies; use mult_dae (the default), wide_dae or recvae."
            )

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
        everything = union_interactions(train, validation)
        for j, member in enumerate(self.members):
            member.fit(*self.split_member_data(j, train, validation))
            member.set_scoring_rows(everything)
            self.collect_history(f"m{j}", member)
        return self

    def split_member_data(
        self, j: int, train: Interactions, validation: Interactions | None
    ) -> tuple[Interactions, Interactions | None]:
        """Member 0 gets the pipeline's train and validation. Member j > 0 holds out floor(holdout
        x count) of each user's train + validation ratings (seeded by seed + j) and stops early on
        them; a refit (no validation) leaves the same share out and trains its fixed epochs.

        If that holds out nothing (every user has fewer than 1 / holdout ratings) while a
        validation slice exists, the member takes the pipeline's slices too: it then differs from
        member 0 by its seed only, and the log says so."""
        if j == 0:
            return train, validation
        kept, held = cut_per_user(
            union_interactions(train, validation), float(self.params.get("holdout", HOLDOUT)), self.seed + j
        )
        if validation is None:
            return kept, None
        if not len(held):
            log.warning(
                "%s: member %d holds out no rating (users have fewer than 1 / params.holdout ratings); it stops "
                "on the pipeline's validation slice like member 0",
                self.name,
                j,
            )
            return train, validation
        return kept, held

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
