"""Which night each published run is for, and which night readers see.

Each night folder ``recommendations/dt=<as_of>/`` holds the night's runs and ``_night.json``, the
manifest of the run that is that night's table now (a re-run of the night publishes a new run and
moves this pointer with one ``os.replace``). ``_latest.json`` is the manifest of the newest night:
publishing an older night (a backfill) never displaces it. Files starting with ``_`` are skipped by
Parquet dataset readers.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from recsys_core.atomic import write_json_atomic
from recsys_core.errors import ManifestError
from recsys_core.publishing.table import read_manifest, recommendations_root, write_manifest

log = logging.getLogger(__name__)

NIGHT_POINTER = "_night.json"


def night_folder(data_dir: Path, as_of: date | str) -> Path:
    night = as_of if isinstance(as_of, str) else as_of.isoformat()
    return recommendations_root(data_dir) / f"dt={night}"


def night_pointer_path(data_dir: Path, as_of: date | str) -> Path:
    return night_folder(data_dir, as_of) / NIGHT_POINTER


def read_night(data_dir: Path, as_of: date | str) -> dict[str, Any] | None:
    """The manifest of a night's current run; None when the night was never published (or is unreadable)."""
    path = night_pointer_path(data_dir, as_of)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable night pointer %s: %s", path, exc)
        return None
    return manifest if isinstance(manifest, dict) else None


def list_nights(data_dir: Path) -> list[dict[str, Any]]:
    """Manifests of every published night's current run, oldest night first."""
    nights = []
    for folder in sorted(recommendations_root(data_dir).glob("dt=*")):
        manifest = read_night(data_dir, folder.name.removeprefix("dt="))
        if manifest is not None and manifest.get("as_of"):
            nights.append(manifest)
    return sorted(nights, key=lambda m: m["as_of"])


def latest_night_before(data_dir: Path, as_of: date, *, inclusive: bool = False) -> dict[str, Any] | None:
    """The newest published night before ``as_of`` (or at it, with ``inclusive``)."""
    night = as_of.isoformat()
    earlier = [m for m in list_nights(data_dir) if m["as_of"] < night or (inclusive and m["as_of"] == night)]
    return earlier[-1] if earlier else None


def is_newest(current_latest: dict[str, Any] | None, as_of: date) -> bool:
    """Does a night at ``as_of`` become ``_latest.json``? Yes unless a newer night is published.

    A manifest without ``as_of`` (written before nights existed) counts as older than any night.
    """
    newest = (current_latest or {}).get("as_of")
    return not newest or as_of.isoformat() >= newest


def point_night(data_dir: Path, manifest: dict[str, Any]) -> bool:
    """Point the night at ``manifest``, and ``_latest.json`` too when it is the newest night.

    Call under the publish lock. Returns whether ``_latest.json`` moved.
    """
    as_of = date.fromisoformat(manifest["as_of"])
    write_json_atomic(night_pointer_path(data_dir, as_of), manifest)
    try:
        current = read_manifest(data_dir)
    except ManifestError:  # unreadable: repair it from the newest night pointer
        newest = list_nights(data_dir)[-1]
        write_manifest(data_dir, newest)
        log.warning("_latest.json was unreadable; rewritten from the newest night %s", newest["as_of"])
        return newest.get("run_id") == manifest.get("run_id")
    if is_newest(current, as_of):
        write_manifest(data_dir, manifest)
        return True
    log.info("night %s published; _latest.json stays at the newer night %s", as_of, current.get("as_of"))
    return False
