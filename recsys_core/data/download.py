"""Fetch a release archive into a local cache: stream, resume, verify, rename into place.

A cached archive whose digest still matches is reused without touching the network when the
release has a pinned checksum; otherwise the ``.md5`` sidecar (checksum unchanged) or a
conditional request (ETag / Last-Modified -> 304) avoids new bytes. Bytes stream into
``<name>.part``; an interrupted transfer resumes with ``Range`` + ``If-Range`` (a server that
ignores Range, or a changed file, restarts it cleanly). Only a verified file is renamed into
place. Timeouts, connection errors, 5xx and 429 are retried with exponential backoff; other
4xx answers are final. On a handled failure nothing partial is left; a process killed
mid-transfer leaves ``<name>.part`` (+ ``.part.json``) for the next run to resume.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from recsys_core.atomic import write_json_atomic
from recsys_core.data.archive_cache import (
    CACHE_FALLBACK,
    CACHED,
    DOWNLOADED,
    NOT_MODIFIED,
    OFFLINE,
    RESUMED,
    UNCHANGED,
    FetchedArchive,
    cache_is_valid,
    cache_lock,
    cached_result,
    check_digests,
    read_meta,
    verify_local,
)
from recsys_core.data.hashing import hash_file
from recsys_core.errors import DownloadError

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]
SIDECAR_MAX_BYTES = 4096
_MD5_TOKEN = re.compile(r"\b[0-9a-fA-F]{32}\b")


@dataclass(frozen=True)
class _CachePaths:
    """The files one cached archive owns in the cache folder."""

    target: Path

    @property
    def meta(self) -> Path:
        return self.target.with_name(self.target.name + ".meta.json")

    @property
    def part(self) -> Path:
        return self.target.with_name(self.target.name + ".part")

    @property
    def part_meta(self) -> Path:
        return self.target.with_name(self.target.name + ".part.json")

    def drop_partial(self) -> None:
        self.part.unlink(missing_ok=True)
        self.part_meta.unlink(missing_ok=True)


class _TransientError(Exception):
    """A 5xx/429 answer, a short body or a stale resume: worth another try."""


class _NotModified(Exception):
    """The server answered 304 to a conditional request."""


def is_url(source: str) -> bool:
    """True for http(s) sources, False for local paths."""
    return urlparse(source).scheme in ("http", "https")


def fetch_archive(
    source: str,
    cache_dir: Path,
    *,
    expected_md5: str | None = None,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    timeout: float = 30.0,
    attempts: int = 4,
    backoff_seconds: float = 1.0,
    offline: bool = False,
    use_sidecar: bool = True,
    progress: ProgressFn | None = None,
) -> FetchedArchive:
    """Return a verified local copy of the archive at ``source`` (URL or path)."""
    pins = {"md5": expected_md5, "size": expected_size, "sha256": expected_sha256}
    try:
        if not is_url(source):
            return verify_local(_local_path(source), **pins)
        cache_dir = Path(cache_dir)
        with cache_lock(cache_dir):
            return _fetch_url(
                source,
                cache_dir,
                pins,
                timeout=timeout,
                attempts=max(1, attempts),
                backoff=backoff_seconds,
                offline=offline,
                use_sidecar=use_sidecar,
                progress=progress,
            )
    finally:
        close = getattr(progress, "close", None)
        if callable(close):
            close()


def _fetch_url(
    url: str,
    cache_dir: Path,
    pins: dict,
    *,
    timeout: float,
    attempts: int,
    backoff: float,
    offline: bool,
    use_sidecar: bool,
    progress: ProgressFn | None,
) -> FetchedArchive:
    paths = _CachePaths(cache_dir / _archive_name(url))
    meta = read_meta(paths.meta)
    cached_ok = cache_is_valid(paths.target, meta, pins)
    if offline:
        if not cached_ok:
            raise DownloadError(
                f"Offline mode, but there is no verified cached copy of {url} at {paths.target}. "
                "Run once with network access, or pass --source (or RECSYS_SOURCE) with a local "
                "path to the archive."
            )
        log.warning("Offline mode: using the cached archive %s (not checked against %s)", paths.target, url)
        return cached_result(paths.target, url, meta, OFFLINE)
    if cached_ok and (pins["md5"] or pins["sha256"]):
        log.info("Cached archive %s matches the pinned checksum; no download needed", paths.target)
        return cached_result(paths.target, url, meta, CACHED)
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        if pins["md5"] is None and use_sidecar:
            pins = {**pins, "md5": fetch_sidecar_md5(client, url, timeout)}
        if cached_ok and pins["md5"] and meta.get("md5") == pins["md5"]:
            log.info("The published checksum of %s is unchanged; using the cached copy", url)
            return cached_result(paths.target, url, meta, UNCHANGED)
        cached_ok = cached_ok and pins["md5"] is None  # a new checksum: the cache is outdated
        validators = meta if cached_ok and meta.get("source") == url else {}
        try:
            resumed = _download(client, url, paths, validators, attempts, backoff, progress)
        except _NotModified:
            log.info("Server reports %s unchanged (304); using the cached copy", url)
            return cached_result(paths.target, url, meta, NOT_MODIFIED)
        except (_TransientError, httpx.TransportError) as exc:
            paths.drop_partial()
            if cached_ok and meta.get("source") == url:  # never stand in another URL's archive
                log.warning(
                    "Could not reach %s (%s); using the verified cached copy %s",
                    url,
                    describe_error(exc),
                    paths.target,
                )
                return cached_result(paths.target, url, meta, CACHE_FALLBACK)
            raise DownloadError(
                f"Could not download {url} after {attempts} attempt(s): {describe_error(exc)}. "
                "Check the URL and your network, or pass --source (or RECSYS_SOURCE) with a "
                "mirror URL or a local path to the archive."
            ) from exc
        except DownloadError:
            paths.drop_partial()
            raise
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            paths.drop_partial()
            raise DownloadError(
                f"Could not download {url}: {describe_error(exc)}. Check the URL, or pass "
                "--source (or RECSYS_SOURCE) with a mirror URL or a local path to the archive."
            ) from exc
        except OSError as exc:
            paths.drop_partial()
            raise DownloadError(
                f"Could not write the download of {url} to {paths.part} ({exc}). Free some "
                "space or pass --data-dir with another folder, or --source with a local copy."
            ) from exc
    return _accept(url, paths, pins, RESUMED if resumed else DOWNLOADED)


def _accept(url: str, paths: _CachePaths, pins: dict, status: str) -> FetchedArchive:
    """Verify ``<name>.part``, then rename it over the cached archive and record its digests."""
    part_meta = read_meta(paths.part_meta)
    md5, sha = hash_file(paths.part)
    size = paths.part.stat().st_size
    problem = check_digests(md5, sha, size, **pins)
    if problem:
        paths.drop_partial()
        raise DownloadError(
            f"The archive downloaded from {url} failed verification: {problem}. Nothing was "
            "kept (a previously verified copy stays in place); retry later, or pass --source "
            "(or RECSYS_SOURCE) with a trusted mirror or local copy."
        )
    os.replace(paths.part, paths.target)
    write_json_atomic(
        paths.meta,
        {
            "md5": md5,
            "sha256": sha,
            "size": size,
            "source": url,
            "etag": part_meta.get("etag"),
            "last_modified": part_meta.get("last_modified"),
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    paths.part_meta.unlink(missing_ok=True)
    log.info("Downloaded %s (%d bytes, sha256 %s) to %s", url, size, sha, paths.target)
    return FetchedArchive(paths.target, url, md5, sha, size, from_cache=False, status=status)


def _download(
    client: httpx.Client,
    url: str,
    paths: _CachePaths,
    validators: dict,
    attempts: int,
    backoff: float,
    progress: ProgressFn | None,
) -> bool:
    """Stream into ``<name>.part`` with retries; True when an earlier partial was resumed."""
    resumed: list[bool] = []

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "Download of %s failed (%s); attempt %d of %d, retrying in %.1f s",
            url,
            describe_error(exc),
            state.attempt_number,
            attempts,
            wait,
        )

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff, max=30),
        before_sleep=log_retry,
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            resumed.append(_stream_once(client, url, paths, validators, progress))
    return any(resumed)


def _stream_once(
    client: httpx.Client,
    url: str,
    paths: _CachePaths,
    validators: dict,
    progress: ProgressFn | None,
) -> bool:
    """One attempt: a resumable or conditional GET into ``<name>.part``. True if resumed."""
    offset, headers = _request_headers(url, paths, validators)
    with client.stream("GET", url, headers=headers) as resp:
        status = resp.status_code
        if status == 304 and ("If-None-Match" in headers or "If-Modified-Since" in headers):
            raise _NotModified()
        if status == 416:
            if _part_is_complete(resp, offset):
                return True
            paths.drop_partial()
            raise _TransientError(f"HTTP 416 for a resumed download of {url}; restarting")
        if status >= 500 or status == 429:
            raise _TransientError(f"HTTP {status} {resp.reason_phrase} from {url}")
        if status >= 300:
            raise DownloadError(
                f"The server answered HTTP {status} {resp.reason_phrase} for {url}. Check the "
                "dataset name and URL, or pass --source (or RECSYS_SOURCE) with a mirror URL "
                "or a local path to the archive."
            )
        resumed = status == 206 and offset > 0 and _range_start(resp) == offset
        if status == 206 and not resumed:
            paths.drop_partial()
            raise _TransientError(f"unexpected Content-Range {resp.headers.get('Content-Range')}")
        if not resumed:  # a full body: restart the partial file and remember its validators
            offset = 0
            write_json_atomic(
                paths.part_meta,
                {
                    "source": url,
                    "etag": resp.headers.get("ETag"),
                    "last_modified": resp.headers.get("Last-Modified"),
                },
            )
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        done = _write_body(resp, paths.part, "ab" if resumed else "wb", offset, total, progress)
        if total is not None and done != total:
            raise _TransientError(f"the connection closed after {done} of {total} bytes")
        return resumed


def _request_headers(url: str, paths: _CachePaths, validators: dict) -> tuple[int, dict]:
    """Range + If-Range for a partial file of this URL, else conditional headers if cached."""
    part_meta = read_meta(paths.part_meta)
    offset = paths.part.stat().st_size if paths.part.is_file() else 0
    if offset and part_meta.get("source") == url:
        headers = {"Range": f"bytes={offset}-", "Accept-Encoding": "identity"}
        guard = _strong_etag(part_meta.get("etag")) or part_meta.get("last_modified")
        if guard:
            headers["If-Range"] = guard
        return offset, headers
    if offset:  # bytes of unknown origin: never append to them
        paths.drop_partial()
    headers = {"Accept-Encoding": "identity"}
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    return 0, headers


def _write_body(
    resp: httpx.Response,
    part: Path,
    mode: str,
    done: int,
    total: int | None,
    progress: ProgressFn | None,
) -> int:
    with open(part, mode) as fh:
        try:
            for chunk in resp.iter_raw():  # as received: a cut-off transfer keeps its bytes
                fh.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        finally:
            fh.flush()
            os.fsync(fh.fileno())
    return done


def _range_start(resp: httpx.Response) -> int | None:
    match = re.match(r"bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _part_is_complete(resp: httpx.Response, offset: int) -> bool:
    """416 with ``Content-Range: bytes */N`` and N == our size: the partial file is whole."""
    match = re.match(r"bytes\s+\*/(\d+)", resp.headers.get("Content-Range", ""))
    return bool(match) and offset > 0 and int(match.group(1)) == offset


def _strong_etag(etag: str | None) -> str | None:
    """If-Range needs a strong validator; a weak ETag (W/"...") cannot guard a resume."""
    return etag if etag and not etag.startswith("W/") else None


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, network errors, a short body, 5xx/429."""
    return isinstance(
        exc,
        (_TransientError, httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError),
    )


def describe_error(exc: BaseException | None) -> str:
    """A short human description of what went wrong on the wire."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "the server did not answer in time (timeout)"
    if isinstance(exc, httpx.ConnectError):
        return f"the connection failed ({exc or 'connection refused'})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server closed the connection early ({exc})"
    return str(exc) or type(exc).__name__


def fetch_sidecar_md5(client: httpx.Client, url: str, timeout: float = 10.0) -> str | None:
    """GroupLens publishes ``<archive>.md5`` next to its archives; use it when present."""
    try:
        resp = client.get(url + ".md5", timeout=min(timeout, 10.0))
    except httpx.HTTPError:
        return None
    if resp.status_code != 200 or len(resp.content) > SIDECAR_MAX_BYTES:
        return None
    match = _MD5_TOKEN.search(resp.text)
    if match:
        log.info("Published checksum for %s: MD5 %s", url, match.group(0).lower())
    return match.group(0).lower() if match else None


def cached_archive_path(url: str, cache_dir: Path) -> Path:
    """Where ``fetch_archive`` keeps the verified copy of ``url``."""
    return Path(cache_dir) / _archive_name(url)


def _archive_name(url: str) -> str:
    name = Path(unquote(urlparse(url).path)).name
    return name or "archive.zip"


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        return Path(unquote(urlparse(source).path))
    return Path(source).expanduser()
