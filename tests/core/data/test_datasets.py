"""The release registry: five releases, official URLs, pinned checksums where published."""

from __future__ import annotations

import re

import pytest

from recsys_core.data.datasets import DATASETS, GROUPLENS, LAYOUTS, get_dataset, pinned_digests
from recsys_core.errors import RecsysError


def test_five_releases_with_known_layouts() -> None:
    assert set(DATASETS) == {"ml-100k", "ml-1m", "ml-latest-small", "ml-25m", "ml-32m"}
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.layout in LAYOUTS
        assert spec.url == f"{GROUPLENS}/{name}.zip" and spec.url.startswith("https://")
        assert spec.sidecar_url == spec.url + ".md5"
        assert spec.md5 is None or re.fullmatch(r"[0-9a-f]{32}", spec.md5)


def test_ml100k_pin_matches_the_published_checksum() -> None:
    spec = get_dataset("ml-100k")
    assert (spec.md5, spec.size) == ("0e33842e24a9c977be4e0107933c0723", 4_924_029)
    assert spec.folds == ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
    assert spec.encoding == "latin-1"


def test_rating_scales() -> None:
    assert get_dataset("ml-100k").rating_values == (1.0, 2.0, 3.0, 4.0, 5.0)
    for name in ("ml-latest-small", "ml-25m", "ml-32m"):
        spec = get_dataset(name)
        assert (spec.rating_min, spec.rating_max, len(spec.rating_values)) == (0.5, 5.0, 10)


def test_latest_small_is_not_pinned() -> None:
    """ml-latest-small changes over time: its checksum comes from the .md5 sidecar."""
    assert get_dataset("ml-latest-small").md5 is None


def test_pins_apply_to_the_official_url_only() -> None:
    spec = get_dataset("ml-100k")
    assert pinned_digests(spec, None) == (spec.md5, spec.size)
    assert pinned_digests(spec, spec.url) == (spec.md5, spec.size)
    assert pinned_digests(spec, "/data/ml-100k.zip") == (None, None)  # a re-packed copy is fine
    assert pinned_digests(spec, "http://mirror.example/ml-100k.zip") == (None, None)


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(RecsysError, match=r"Unknown dataset 'ml-10m'.*--dataset.*ml-100k, ml-1m"):
        get_dataset("ml-10m")
