"""What a failed run leaves and says: storage errors in words, partial outputs cleaned, a failure note.

A run can fail anywhere (bad data, a full disk, SIGTERM). The published table and manifest are
never touched by a failure (see ``publishing``); what this module handles is the rest: a bare
``OSError`` becomes a :class:`StorageError` naming the path and the space, a failed run's bulky
partial outputs are removed so a full disk does not stay full, and one ``failure.json`` explains
what happened for whoever opens the run folder.
"""

from __future__ import annotations

import errno
import functools
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from recsys_core.errors import RecsysError, StorageError

F = TypeVar("F", bound=Callable[..., Any])

STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}
FAILURE_FILE = "failure.json"
RUN_MARKER = ".flow_run_id"
# A failed run keeps only these (small, explanatory) files; models and tables are removed.
KEPT_ON_FAILURE = {FAILURE_FILE, RUN_MARKER, "validation.html", "rejects.parquet", "data_docs"}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"


def folder_size(folder: Path) -> int:
    """Bytes under ``folder`` (0 when it is gone)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def existing_parent(path: Path) -> Path:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def find_data_dir(path: Path) -> Path | None:
    """The data dir above ``path`` (the folder holding ``runs/`` or ``recommendations/``)."""
    for parent in [Path(path), *Path(path).parents]:
        if parent.name in ("runs", "recommendations", "cache"):
            return parent.parent
    return None


def estimate_run_bytes(data_dir: Path | None) -> int | None:
    """What one run wrote last time: the largest of the newest three run folders."""
    if data_dir is None:
        return None
    folders = sorted((p for p in (data_dir / "runs").glob("*") if p.is_dir()), reverse=True)[:3]
    sizes = [folder_size(p) for p in folders]
    return max(sizes) if sizes and max(sizes) > 0 else None


def explain_storage_error(exc: OSError, path: Path | None = None) -> StorageError:
    """One paragraph: which path, what the disk says, how much is free, how much a run needs."""
    where = Path(exc.filename or path or ".")
    anchor = existing_parent(where)
    try:
        free = human_bytes(shutil.disk_usage(anchor).free)
    except OSError:
        free = "unknown"
    needed = estimate_run_bytes(find_data_dir(where))
    need = f"; a run here wrote about {human_bytes(needed)} last time" if needed else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"The disk is full while writing {where} ({free} free{need})"
        todo = "Free space there (older runs: `--retention`), or pass another --data-dir, and run again."
    elif exc.errno == errno.EROFS:
        what = f"{where} is on a read-only file system"
        todo = "Pass a writable --data-dir (or RECSYS_DATA_DIR) and run again."
    else:
        what = f"Permission denied writing {where}"
        todo = "Fix the folder's permissions or pass another --data-dir, and run again."
    return StorageError(f"{what}: {exc.strerror or exc}. {todo} Nothing published was changed.")


def converts_storage_errors(fn: F) -> F:
    """Decorator for stages that write: a disk-full / read-only ``OSError`` becomes a StorageError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS:
                raise explain_storage_error(exc) from exc
            raise

    return wrapper  # type: ignore[return-value]


def mark_run_folder(folder: Path, flow_run_id: str | None) -> None:
    """Tie a run folder to its Prefect flow run, so failure hooks can find it."""
    if flow_run_id:
        (Path(folder) / RUN_MARKER).write_text(str(flow_run_id))


def find_run_folder(data_dir: Path, flow_run_id: str) -> Path | None:
    """The run folder a flow run created (matched by the marker ``mark_run_folder`` wrote)."""
    for marker in sorted((Path(data_dir) / "runs").glob(f"*/{RUN_MARKER}"), reverse=True):
        try:
            if marker.read_text().strip() == str(flow_run_id):
                return marker.parent
        except OSError:
            continue
    return None


def what_to_do(exc: BaseException | None) -> str:
    """Our errors already end with what to do; anything else gets the generic advice."""
    if isinstance(exc, RecsysError):
        return "The message above says what to do."
    return "Rerun with `recsys --debug run ...` (or read the flow run's logs) for the full traceback."


def discard_partial_outputs(folder: Path, *, stage: str | None, message: str, state: str) -> dict[str, Any]:
    """Remove a failed run's models and tables (a full disk must not stay full); write failure.json.

    Keeps the validation results (Data Docs, the validation page, rejects), which explain many
    failures. Safe to call twice.
    """
    folder = Path(folder)
    freed = 0
    if folder.is_dir():
        for child in folder.iterdir():
            if child.name in KEPT_ON_FAILURE:
                continue
            freed += folder_size(child) if child.is_dir() else child.stat().st_size
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
    note = {
        "state": state,
        "stage": stage,
        "message": message,
        "failed_at": datetime.now(UTC).isoformat(),
        "freed_bytes": freed,
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FAILURE_FILE).write_text(json.dumps(note, indent=2) + "\n")
    except OSError:
        pass  # a full or read-only disk: the note is a courtesy, the cleanup above is what matters
    return note


def render_failure_markdown(
    *, stage: str | None, message: str, state: str, run_folder: Path | None, published: bool = False
) -> str:
    """The `failure` artifact: readable at a glance in the Prefect UI."""
    lines = [f"## Run {state.lower()}" + (f" at stage `{stage}`" if stage else ""), "", message, ""]
    if published:
        lines.append(
            "**The table was already published** (`_latest.json` names this run); a step after "
            "publishing failed, so the run folder was kept for serving."
        )
    else:
        lines.append("**Published table and `_latest.json`: unchanged** (a failed run never touches them).")
        if run_folder is not None:
            lines.append(f"\nPartial outputs were removed; `{run_folder / FAILURE_FILE}` records this failure.")
    return "\n".join(lines)
