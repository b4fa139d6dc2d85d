"""A digest of what a night reads from a ratings log, to tell whether its input changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from recsys_core.data.ratings_log.layout import (
    SPEC_FILE,
    check_log_directory,
    find_movies_file,
    is_pruned,
    list_rating_files,
)

FINGERPRINT_VERSION = "recsys-ratings-log/1"


def fingerprint_log(directory: Path | str, cutoff: int | None) -> str:
    """sha256 over (relative path, size, mtime_ns) of every file a night with ``cutoff`` reads.

    That is each ratings file the cutoff does not prune, the movies file and ``dataset.json``;
    partitions at or after the cutoff's day do not change it, so a backfill can tell a night's
    input is unchanged without reading it. Files are not opened, only listed and stat'ed.
    """
    root = Path(directory)
    check_log_directory(root)
    read = [f.relative for f in list_rating_files(root) if not is_pruned(f.day, cutoff)]
    read += [find_movies_file(root).name, SPEC_FILE]
    digest = hashlib.sha256(f"{FINGERPRINT_VERSION}\n".encode())
    for relative in sorted(read):
        stat = (root / relative).stat()
        digest.update(f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
