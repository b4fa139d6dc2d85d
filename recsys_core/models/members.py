"""Persistence of ensemble members (blend, rank_blend): one saved model folder per member."""

from __future__ import annotations

from pathlib import Path

from recsys_core.models.base import Recommender


def save_members(members: list[Recommender], directory: Path) -> None:
    for j, member in enumerate(members):
        member.save(Path(directory) / f"member_{j}")


def load_members(directory: Path, count: int) -> list[Recommender]:
    from recsys_core.models import load_model  # the registry imports this module's users

    return [load_model(Path(directory) / f"member_{j}") for j in range(count)]
