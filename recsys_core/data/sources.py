"""Where a night's ratings come from: a MovieLens release archive or an application's ratings log.

Tasks take a :class:`DatasetSpec` (or a release name): ``resolve_spec`` builds it once from the
configuration, reading a log's ``dataset.json``. For a log there is nothing to download; the
"archive" is the folder, and its fingerprint covers only what the night reads.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from recsys_core.data.archive_cache import FetchedArchive
from recsys_core.data.datasets import LOG_DATASET, DatasetSpec, get_dataset
from recsys_core.data.ratings_log import fingerprint_log, load_log_spec
from recsys_core.nights.calendar import cutoff_seconds

LOG_STATUS = "ratings log"


def resolve_spec(dataset: str, source: str | None) -> DatasetSpec:
    """The release's spec, or a log's, built from ``<source>/dataset.json``."""
    if dataset == LOG_DATASET:
        return load_log_spec(Path(str(source)))
    return get_dataset(dataset)


def as_spec(dataset: str | DatasetSpec) -> DatasetSpec:
    """Tasks accept a spec or a release name (tests and older callers pass names)."""
    return dataset if isinstance(dataset, DatasetSpec) else get_dataset(dataset)


def is_log(spec: DatasetSpec) -> bool:
    return spec.layout == LOG_DATASET


def locate_log(directory: Path, as_of: date | None) -> FetchedArchive:
    """A log as the flow's "archive": the folder, fingerprinted through the night's cutoff."""
    cutoff = cutoff_seconds(as_of) if as_of else None
    digest = fingerprint_log(directory, cutoff)
    return FetchedArchive(
        path=Path(directory), source=str(directory), md5="", sha256=digest, size=0, from_cache=False, status=LOG_STATUS
    )


def night_fingerprint(spec: DatasetSpec, archive: FetchedArchive, as_of: date) -> str:
    """What a night reads, as one digest: the archive's sha256, or the log through the cutoff."""
    return locate_log(archive.path, as_of).sha256 if is_log(spec) else archive.sha256
