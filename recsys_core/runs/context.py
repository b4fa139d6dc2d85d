"""Run identity and the per-run folder (model, vocabulary, metrics, rejects, reports)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path


@dataclass(frozen=True)
class RunContext:
    run_id: str
    started_at: datetime
    data_dir: Path
    as_of: date | None = None  # the night; None for runs outside the nightly calendar

    @property
    def night(self) -> date:
        """The night the table is published under (the start date when no night was given)."""
        return self.as_of or self.started_at.date()

    @property
    def folder(self) -> Path:
        return self.data_dir / "runs" / self.run_id

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time plus random hex (two runs in one second still differ)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def start_run(data_dir: Path, run_id: str | None = None, as_of: date | None = None) -> RunContext:
    now = datetime.now(UTC)
    ctx = RunContext(run_id or new_run_id(now), now, Path(data_dir), as_of)
    ctx.folder.mkdir(parents=True, exist_ok=True)
    return ctx
