"""Stage 1: fetch the release archive into the cache (or use a local archive)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from recsys_core.datasets import get_dataset
from recsys_core.download import FetchedArchive, fetch_archive, is_url
from tasks.artifacts import logger


@task(name="download")
def download_archive(dataset: str, source: str | None, cache_dir: Path, offline: bool = False) -> FetchedArchive:
    """Default source is the official GroupLens URL, whose pinned checksum is then enforced.

    Transient network errors are retried with exponential backoff inside ``fetch_archive``
    (tenacity); what reaches Prefect is final (404, checksum mismatch, retries exhausted),
    so the task itself does not retry.
    """
    spec = get_dataset(dataset)
    src = source or spec.url
    official = src == spec.url
    log = logger()
    progress_id = create_progress_artifact(progress=0.0, key=None, description=f"download {src}") if is_url(src) else None
    last = [-1]

    def report(done: int, total: int | None) -> None:
        if total and progress_id is not None:
            pct = int(100 * done / total)
            if pct >= last[0] + 5:
                last[0] = pct
                update_progress_artifact(progress_id, progress=float(pct))

    fetched = fetch_archive(
        src,
        cache_dir,
        expected_md5=spec.md5 if official else None,
        expected_size=spec.size if official else None,
        offline=offline,
        progress=report,
    )
    if progress_id is not None:
        update_progress_artifact(progress_id, progress=100.0)
    log.info(
        "archive %s (%s bytes, sha256 %s, %s)",
        fetched.path, f"{fetched.size:,}", fetched.sha256[:12], "cached" if fetched.from_cache else "downloaded",
    )
    return fetched
