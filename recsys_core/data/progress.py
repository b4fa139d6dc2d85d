"""A download progress bar for people at a terminal (rich, on stderr); nothing in logs or CI."""

from __future__ import annotations

import sys
from typing import Any


class TerminalProgress:
    """A rich progress bar on stderr, fed by ``fetch_archive``'s (done, total) callback."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(self._description, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def close(self) -> None:
        """Stop drawing; fetch_archive calls it when the download ends, well or not."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def make_terminal_progress(description: str = "Downloading", *, force: bool = False) -> TerminalProgress | None:
    """A progress callback for humans: only when stderr is a terminal (not in logs or CI)."""
    if not force and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    return TerminalProgress(description)
