"""The MovieLens releases the pipeline knows: where they live and how they are laid out."""

from __future__ import annotations

from dataclasses import dataclass

from recsys_core.errors import RecsysError

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
LAYOUTS = ("ml-100k", "ml-1m", "csv", "log")
# `--dataset log --source DIR`: an application's ratings log folder (recsys_core/data/ratings_log);
# its spec comes from DIR/dataset.json, so it has no entry in DATASETS.
LOG_DATASET = "log"


@dataclass(frozen=True)
class DatasetSpec:
    """One release: its official URL, pinned checksum (when published) and rating scale.

    ``md5``/``size`` are pinned only where GroupLens publishes a fixed value; "latest"
    releases change over time, so their checksum comes from the ``.md5`` sidecar instead.
    """

    name: str
    url: str
    layout: str  # one of LAYOUTS
    rating_values: tuple[float, ...]
    md5: str | None = None
    size: int | None = None
    folds: tuple[str, ...] = ()
    encoding: str = "utf-8"  # of the text files holding titles
    n_movies: int | None = None  # catalogue size of a fixed release (None: it changes over time)

    @property
    def rating_min(self) -> float:
        return min(self.rating_values)

    @property
    def rating_max(self) -> float:
        return max(self.rating_values)

    @property
    def sidecar_url(self) -> str:
        """GroupLens publishes ``<archive>.md5`` next to its archives."""
        return self.url + ".md5"


_WHOLE_STARS = (1.0, 2.0, 3.0, 4.0, 5.0)
_HALF_STARS = tuple(x / 2 for x in range(1, 11))

DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        name="ml-100k",
        url=f"{GROUPLENS}/ml-100k.zip",
        layout="ml-100k",
        rating_values=_WHOLE_STARS,
        md5="0e33842e24a9c977be4e0107933c0723",
        size=4_924_029,
        folds=("u1", "u2", "u3", "u4", "u5", "ua", "ub"),
        encoding="latin-1",
        n_movies=1_682,
    ),
    "ml-1m": DatasetSpec(
        name="ml-1m",
        url=f"{GROUPLENS}/ml-1m.zip",
        layout="ml-1m",
        rating_values=_WHOLE_STARS,
        md5="c4d9eecfca2ab87c1945afe126590906",
        encoding="latin-1",
        n_movies=3_883,
    ),
    "ml-latest-small": DatasetSpec(
        name="ml-latest-small",
        url=f"{GROUPLENS}/ml-latest-small.zip",
        layout="csv",
        rating_values=_HALF_STARS,
    ),
    "ml-25m": DatasetSpec(
        name="ml-25m",
        url=f"{GROUPLENS}/ml-25m.zip",
        layout="csv",
        rating_values=_HALF_STARS,
        md5="6b51fb2759a8657d3bfcbfc42b592ada",
        size=261_978_986,
        n_movies=62_423,
    ),
    "ml-32m": DatasetSpec(
        name="ml-32m",
        url=f"{GROUPLENS}/ml-32m.zip",
        layout="csv",
        rating_values=_HALF_STARS,
        md5="d472be332d4daa821edc399621853b57",
        size=238_950_008,
        n_movies=87_585,
    ),
}


def get_dataset(name: str) -> DatasetSpec:
    """Look a release up by name, with an error that lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise RecsysError(f"Unknown dataset {name!r} (--dataset / RECSYS_DATASET). Known releases: {known}.") from None


def pinned_digests(spec: DatasetSpec, source: str | None) -> tuple[str | None, int | None]:
    """(md5, size) to verify ``source`` against: the pins apply to the official URL only.

    A ``--source`` mirror or local copy may be re-packed (same files, other bytes), so it is
    verified by its own ``.md5`` sidecar when one exists, and by reading it, not by the pin.
    """
    if source is None or source == spec.url:
        return spec.md5, spec.size
    return None, None
