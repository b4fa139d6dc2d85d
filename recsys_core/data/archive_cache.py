"""The verified-archive cache: what a fetch returns, digests and their checks, cache metadata, the lock.

``download`` fills the cache; everything here is about judging what is already on disk (a
local ``--source`` or a cached copy) without touching the network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from recsys_core.data.hashing import hash_file
from recsys_core.errors import DownloadError

log = logging.getLogger(__name__)

# FetchedArchive.status values: what happened, for logs and the Prefect artifact.
DOWNLOADED, RESUMED, NOT_MODIFIED, UNCHANGED = "downloaded", "resumed", "not-modified", "unchanged"
CACHED, OFFLINE, CACHE_FALLBACK, LOCAL = "cached", "offline", "cache-fallback", "local"


@dataclass(frozen=True)
class FetchedArchive:
    """Where the verified archive is, its digests, and how it was obtained (``status``)."""

    path: Path
    source: str
    md5: str
    sha256: str
    size: int
    from_cache: bool
    status: str = DOWNLOADED

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def verify_local(
    path: Path, *, md5: str | None = None, size: int | None = None, sha256: str | None = None
) -> FetchedArchive:
    """A local ``--source`` archive, hashed and checked; it is used where it lies."""
    if not path.is_file():
        raise DownloadError(
            f"The archive {path} does not exist or is not a file. Pass --source (or "
            "RECSYS_SOURCE) with the path to a MovieLens zip, or a URL."
        )
    got_md5, got_sha = hash_file(path)
    got_size = path.stat().st_size
    problem = check_digests(got_md5, got_sha, got_size, md5=md5, size=size, sha256=sha256)
    if problem:
        raise DownloadError(
            f"The archive {path} failed verification: {problem}. Pass --source (or "
            "RECSYS_SOURCE) with an intact copy of the release."
        )
    return FetchedArchive(path, str(path), got_md5, got_sha, got_size, True, LOCAL)


def check_digests(
    got_md5: str,
    got_sha: str,
    got_size: int,
    *,
    md5: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
) -> str | None:
    """What does not match, in words; None when everything pinned matches."""
    if size is not None and got_size != size:
        return f"size {got_size:,} bytes, expected {size:,}"
    if md5 is not None and got_md5 != md5.lower():
        return f"MD5 {got_md5}, expected {md5.lower()}"
    if sha256 is not None and got_sha != sha256.lower():
        return f"SHA-256 {got_sha}, expected {sha256.lower()}"
    return None


def read_meta(path: Path) -> dict[str, Any]:
    """A JSON sidecar, or {} when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cache_is_valid(target: Path, meta: dict, pins: dict) -> bool:
    """The cached file exists, matches its recorded SHA-256, and any pinned digests."""
    if not target.is_file() or not meta.get("sha256"):
        return False
    md5, sha = hash_file(target)
    if sha != meta["sha256"]:
        log.warning("Cached archive %s does not match its recorded SHA-256; ignoring it", target)
        return False
    return check_digests(md5, sha, target.stat().st_size, **pins) is None


def cached_result(target: Path, source: str, meta: dict, status: str) -> FetchedArchive:
    return FetchedArchive(target, source, meta["md5"], meta["sha256"], int(meta["size"]), True, status)


@contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """One fetch per cache folder at a time, so two runs never write the same ``.part``.

    A ``filelock`` lock file beside the cache folder (an OS lock: released if the holder dies),
    so the cache itself holds only archives and their metadata.
    """
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"Cannot create or open the cache folder {cache_dir} ({exc}). Pass --data-dir with "
            "a writable folder, or --source with a local path to the archive."
        ) from exc
    lock = FileLock(cache_dir.parent / f".{cache_dir.name}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("Another run is fetching into %s; waiting for it to finish", cache_dir)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
