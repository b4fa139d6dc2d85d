"""Stage 1: fetch the release archive into the cache (or use a local archive)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext

from recsys_core.data.archive_cache import FetchedArchive
from recsys_core.data.datasets import DatasetSpec, pinned_digests
from recsys_core.data.download import cached_archive_path, fetch_archive, is_url
from recsys_core.data.progress import make_terminal_progress
from recsys_core.data.sources import as_spec, is_log, locate_log
from recsys_core.runs.failures import converts_storage_errors
from tasks.artifacts import logger
from tasks.failure import remember_failed_stage


def archive_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """Cache the task on (source, pinned checksum, the file's identity on disk).

    A re-run with the same verified archive skips the task (no hashing, no network). The
    file's size and mtime are part of the key, so a deleted or replaced archive runs the
    task again. Unpinned URLs (``ml-latest-small``) are not cached: they need the
    conditional request that tells whether the release changed.
    """
    spec = as_spec(parameters["dataset"])
    if is_log(spec):
        return None  # a log is fingerprinted each night, never cached
    src = parameters.get("source") or spec.url
    md5, _ = pinned_digests(spec, src)
    if is_url(src):
        if md5 is None:
            return None
        path = cached_archive_path(src, Path(parameters["cache_dir"]))
    else:
        path = Path(src).expanduser()
    if not path.is_file():
        return None
    st = path.stat()
    return f"archive|{src}|{md5}|{st.st_size}|{st.st_mtime_ns}"


@task(
    name="download",
    on_failure=[remember_failed_stage],
    cache_key_fn=archive_cache_key,
    cache_expiration=timedelta(days=7),
    persist_result=True,
)
@converts_storage_errors
def download_archive(
    dataset: str | DatasetSpec,
    source: str | None,
    cache_dir: Path,
    offline: bool = False,
    as_of: date | None = None,
) -> FetchedArchive:
    """Default source is the official GroupLens URL, whose pinned checksum is then enforced.

    Transient network errors are retried with exponential backoff inside ``fetch_archive``
    (tenacity); what reaches Prefect is final (404, checksum mismatch, retries exhausted),
    so the task itself does not retry. A ratings log (``--dataset log``) is not downloaded: the
    folder is fingerprinted through the night ``as_of``.
    """
    spec = as_spec(dataset)
    if is_log(spec):
        located = locate_log(Path(str(source)), as_of)
        logger().info("ratings log %s (%s), fingerprint %s", located.path, spec.name, located.sha256[:12])
        return located
    src = source or spec.url
    md5, size = pinned_digests(spec, src)
    progress_id = create_progress_artifact(progress=0.0, description=f"download {src}") if is_url(src) else None
    bar = make_terminal_progress(f"download {spec.name}") if is_url(src) else None
    last = [-1]

    def report(done: int, total: int | None) -> None:
        if bar is not None:
            bar(done, total)
        if total and progress_id is not None:
            pct = int(100 * done / total)
            if pct >= last[0] + 5:
                last[0] = pct
                update_progress_artifact(progress_id, progress=float(pct))

    try:
        fetched = fetch_archive(src, cache_dir, expected_md5=md5, expected_size=size, offline=offline, progress=report)
    finally:
        if bar is not None:
            bar.close()
    if progress_id is not None:
        update_progress_artifact(progress_id, progress=100.0)
    logger().info(
        "archive %s: %s (%s bytes, sha256 %s)", fetched.path, fetched.status, f"{fetched.size:,}", fetched.sha256[:12]
    )
    return fetched
