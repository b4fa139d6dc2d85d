"""The backfill's steps: which nights to run, whether a night can be skipped, and its progress."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.config import NightlyConfig
from recsys_core.publishing.nights import read_night
from tasks.artifacts import fmt, logger, publish_markdown


def already_published(data_dir: Path, night: date, cfg: NightlyConfig, input_fingerprint: str) -> dict[str, Any] | None:
    """The night's manifest when it was published with the same configuration and input, else None."""
    manifest = read_night(Path(data_dir), night)
    if (
        manifest
        and manifest.get("config_fingerprint") == cfg.table_fingerprint()
        and manifest.get("input_fingerprint") == input_fingerprint
    ):
        return manifest
    return None


@dataclass
class BackfillProgress:
    """Per-night outcomes, shown as a Prefect progress artifact and, on a terminal, a bar line."""

    nights: list[date]
    started: float = field(default_factory=time.perf_counter)
    rows: list[dict[str, Any]] = field(default_factory=list)
    artifact_id: UUID | None = None

    def start(self) -> None:
        self.artifact_id = create_progress_artifact(
            progress=0.0, key="backfill-progress", description=f"{len(self.nights)} nights"
        )

    def record(self, night: date, status: str, manifest: dict[str, Any] | None, seconds: float) -> None:
        online = (manifest or {}).get("online_metrics") or {}
        self.rows.append(
            {
                "night": night.isoformat(),
                "status": status,
                "run_id": (manifest or {}).get("run_id", ""),
                "online_ndcg": fmt(online.get("ndcg_at_k")),
                "online_hit_rate": fmt(online.get("hit_rate_at_k")),
                "seconds": f"{seconds:.1f}",
            }
        )
        done = len(self.rows)
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, progress=100.0 * done / len(self.nights))
        line = self.bar_line(night, status, seconds)
        logger().info(line)
        if hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
            from rich.console import Console

            Console(stderr=True).print(f"[bold]{line}[/bold]")

    def bar_line(self, night: date, status: str, seconds: float, width: int = 30) -> str:
        done, total = len(self.rows), len(self.nights)
        filled = round(width * done / total)
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        return (
            f"backfill [{'#' * filled}{'-' * (width - filled)}] {done}/{total} nights; "
            f"{night} {status} in {seconds:.0f} s; about {eta / 60:.0f} min left"
        )

    def summary_markdown(self, failure: str | None = None) -> str:
        columns = ("night", "status", "run_id", "online_ndcg", "online_hit_rate", "seconds")
        head = "| " + " | ".join(columns) + " |\n" + "| --- " * len(columns) + "|"
        body = "\n".join("| " + " | ".join(str(r[c]) for c in columns) + " |" for r in self.rows)
        note = f"\n\n**Stopped:** {failure}" if failure else ""
        return f"## Backfill of {len(self.nights)} nights\n\n{head}\n{body}{note}"


@task(name="backfill-summary", cache_policy=NO_CACHE)
def publish_backfill_summary(progress: BackfillProgress, failure: str | None = None) -> None:
    publish_markdown("backfill-summary", progress.summary_markdown(failure), "Nights published, skipped or failed")
