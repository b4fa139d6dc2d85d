"""What every ensemble shares: creating its parts, forwarding features and scratch space, persistence.

``blend`` (ridge over rating models), ``rank_blend`` (weighted implicit rankers) and ``combined``
(one ranker + one rater) differ only in how they fit and combine their parts. Parts are created
with the ensemble's rating range and seed, plus the scale profile's settings for their family
(``params["member_params"]``, see ``recsys_core/scale.py``) under the part's own parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.models.base import Recommender
from recsys_core.models.registry import create_model, load_model


class Ensemble(Recommender):
    """A model made of registry models ("parts")."""

    uses_item_features = True  # forwarded to the parts that use them

    def parts(self) -> list[Recommender]:
        """The sub-models, in a fixed order."""
        raise NotImplementedError

    def create_part(self, name: str, params: dict[str, Any] | None = None, seed_offset: int = 0) -> Recommender:
        """A registry model configured like this ensemble (rating range, seed, scale settings)."""
        merged = {**self.params.get("member_params", {}).get(name, {}), **(params or {})}
        return create_model(
            name, rating_min=self.rating_min, rating_max=self.rating_max, seed=self.seed + seed_offset, **merged
        )

    def set_item_features(self, features: np.ndarray) -> None:
        super().set_item_features(features)
        for part in self.parts():
            if part.uses_item_features:
                part.set_item_features(features)

    def set_work_dir(self, directory: Path | None) -> None:
        super().set_work_dir(directory)
        for part in self.parts():
            part.set_work_dir(directory)

    def start_from(self, other: Recommender, epoch_scale: float) -> bool:
        """Each part starts from the matching part of ``other`` (an ensemble of the same shape);
        a part that cannot trains all its epochs from its initialisation. True if any part did."""
        if type(other) is not type(self) or not isinstance(other, Ensemble):
            return False
        theirs = other.parts()
        if len(theirs) != len(self.parts()):
            return False
        started = [mine.start_from(their, epoch_scale) for mine, their in zip(self.parts(), theirs, strict=True)]
        return any(started)

    def collect_history(self, prefix: str, part: Recommender) -> None:
        """A part's training curves under ``<prefix>_<key>`` (the report names them readably)."""
        self.history.update({f"{prefix}_{k}": v for k, v in part.history.items()})


def fixed_member_specs(members: list[Recommender], specs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The member specs with each member's fixed settings as its params, or None if one cannot."""
    fixed = [member.fixed_settings() for member in members]
    if any(settings is None for settings in fixed):
        return None
    return [{**spec, "params": settings} for spec, settings in zip(specs, fixed, strict=True)]


def fixed_weights(params: dict[str, Any], n_members: int, name: str) -> np.ndarray | None:
    """Blend weights carried in the params (a refit repeating a fitted blend), checked against
    the member count now rather than failing at scoring time; None when the fit chooses them."""
    if "weights" not in params:
        return None
    weights = np.asarray(params["weights"], np.float64)
    if weights.shape != (n_members,):
        from recsys_core.errors import ModelError

        raise ModelError(f"{name}: params.weights has {weights.size} values for {n_members} members.")
    return weights


def save_members(members: list[Recommender], directory: Path) -> None:
    """One saved model folder per member: ``member_<j>``."""
    for j, member in enumerate(members):
        member.save(Path(directory) / f"member_{j}")


def load_members(directory: Path, count: int) -> list[Recommender]:
    return [load_model(Path(directory) / f"member_{j}") for j in range(count)]
