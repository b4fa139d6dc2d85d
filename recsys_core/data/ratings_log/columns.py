"""Turn a ratings file's columns, whatever their Arrow types, into the canonical ones.

Values that are missing or are not numbers of the right kind become nulls; the reader sets
those rows aside as malformed. A column of a type no number can come from (a list, a binary
blob) breaks the file's contract.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

RATING_TYPES: dict[str, pa.DataType] = {
    "user_id": pa.int64(),
    "movie_id": pa.int64(),
    "rating": pa.float32(),
    "timestamp": pa.int64(),
}
RATINGS_SCHEMA = pa.schema([pa.field(name, typ) for name, typ in RATING_TYPES.items()])
_INT_TEXT = r"^-?\d{1,18}$"
_FLOAT_TEXT = r"^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INT64_LIMIT = 2.0**63


class UnusableColumn(TypeError):
    """A column whose Arrow type holds no numbers (the message names the type)."""


def coerce_column(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """``column`` as ``target`` (int64 or float32); unusable values become nulls."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    kind = column.type
    if kind == target:
        return column
    if pa.types.is_null(kind):
        return pa.chunked_array([pa.nulls(len(column), target)])
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _from_text(column, target)
    if pa.types.is_timestamp(kind) and pa.types.is_integer(target):
        return pc.cast(pc.cast(column, pa.timestamp("s", kind.tz), safe=False), target)
    if pa.types.is_integer(kind) and pa.types.is_integer(target):
        return _from_integer(column, target)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        if pa.types.is_floating(target):
            return pc.cast(column, target, safe=False)
        return _from_float(pc.cast(column, pa.float64(), safe=False), target)
    raise UnusableColumn(f"has type {kind}, which holds no numbers")


def _from_text(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """Plain decimal numbers (surrounding spaces and a leading '+' allowed); anything else is null."""
    text = pc.replace_substring_regex(pc.utf8_trim_whitespace(column.cast(pa.string())), r"^\+([0-9.])", r"\1")
    ok = pc.match_substring_regex(text, _FLOAT_TEXT if pa.types.is_floating(target) else _INT_TEXT)
    return pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), target)


def _from_integer(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """Narrower integers widen; uint64 values above the int64 range become nulls."""
    if column.type == pa.uint64():
        fits = pc.less_equal(column, pa.scalar(2**63 - 1, pa.uint64()))
        column = pc.if_else(fits, column, pa.scalar(None, pa.uint64()))
    return pc.cast(column, target)


def _from_float(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """Whole numbers within int64 become integers; fractions, NaN and infinities become nulls."""
    whole = pc.and_(pc.equal(pc.floor(column), column), pc.less(pc.abs(column), _INT64_LIMIT))
    return pc.cast(pc.if_else(whole, column, pa.scalar(None, column.type)), target, safe=False)
