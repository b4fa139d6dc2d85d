"""``dataset.json``: a ratings log's name and rating scale, read into a :class:`DatasetSpec`.

The format (one JSON object, UTF-8)::

    {
      "name": "my-app",                       # required: 1-64 of A-Z a-z 0-9 . _ -, starting alphanumeric
      "rating_values": [1, 2, 3, 4, 5],       # required: the allowed ratings, at least two distinct numbers
      "format_version": 1,                    # optional: 1 (the only version so far)
      "description": "ratings from the app"   # optional: free text
    }

Any other key is refused, so that a misspelt field is not silently ignored.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from recsys_core.data.datasets import LOG_DATASET, DatasetSpec
from recsys_core.data.ratings_log.layout import SPEC_FILE, check_log_directory
from recsys_core.errors import DataContractError

FORMAT_VERSION = 1
SPEC_FIELDS = ("name", "rating_values", "format_version", "description")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EXAMPLE = '{"name": "my-app", "rating_values": [1, 2, 3, 4, 5]}'


def load_log_spec(directory: Path | str) -> DatasetSpec:
    """The log's :class:`DatasetSpec` (layout ``log``, no URL), after checking the folder's layout.

    Raises :class:`DataContractError` naming the folder, or ``dataset.json`` and the field, on any problem.
    """
    root = Path(directory)
    check_log_directory(root)
    payload = read_spec_file(root / SPEC_FILE)
    return spec_from_payload(payload, root / SPEC_FILE)


def read_spec_file(path: Path) -> dict[str, Any]:
    """The parsed JSON object of ``dataset.json``."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _spec_error(path, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _spec_error(path, f"cannot be read ({exc})") from None
    if not isinstance(payload, dict):
        raise _spec_error(path, f"holds a JSON {type(payload).__name__}, not an object")
    return payload


def spec_from_payload(payload: dict[str, Any], path: Path) -> DatasetSpec:
    """Validate the fields of ``dataset.json`` and build the spec."""
    unknown = sorted(set(payload) - set(SPEC_FIELDS))
    if unknown:
        raise _spec_error(
            path, f"has unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(SPEC_FIELDS)}"
        )
    for key in ("name", "rating_values"):
        if key not in payload:
            raise _spec_error(path, f"has no {key!r} field")
    name = payload["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise _spec_error(
            path,
            f"field 'name' is {name!r}; give 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    version = payload.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _spec_error(
            path, f"field 'format_version' is {version!r}; this version reads format_version {FORMAT_VERSION}"
        )
    if not isinstance(payload.get("description", ""), str):
        raise _spec_error(path, "field 'description' is not a string")
    values = check_rating_values(payload["rating_values"], path)
    return DatasetSpec(name=name, url="", layout=LOG_DATASET, rating_values=values)


def check_rating_values(values: Any, path: Path) -> tuple[float, ...]:
    """At least two distinct finite numbers, returned sorted as floats."""
    if not isinstance(values, list) or not values:
        raise _spec_error(path, f"field 'rating_values' is {values!r}; give a list of the allowed ratings")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)]
    if bad:
        raise _spec_error(path, f"field 'rating_values' holds {bad[0]!r}, which is not a number")
    scale = tuple(sorted({float(v) for v in values}))
    if len(scale) < 2:
        raise _spec_error(path, f"field 'rating_values' is {values!r}; a scale needs at least two distinct values")
    if len(scale) != len(values):
        raise _spec_error(path, f"field 'rating_values' repeats a value ({values!r}); list each rating once")
    return scale


def describe_log_spec(spec: DatasetSpec, description: str | None = None) -> dict[str, Any]:
    """The ``dataset.json`` payload for ``spec`` (whole numbers written as integers)."""
    values = [int(v) if float(v).is_integer() else float(v) for v in spec.rating_values]
    payload: dict[str, Any] = {"name": spec.name, "rating_values": values, "format_version": FORMAT_VERSION}
    if description:
        payload["description"] = description
    return payload


def _spec_error(path: Path, problem: str) -> DataContractError:
    return DataContractError(
        f"{path} {problem}. It names the ratings log and its rating scale, e.g. {_EXAMPLE} "
        "(half stars: [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]); fix it and run again."
    )
