"""Parse one delimited archive member into a typed Arrow table, setting malformed lines aside.

pyarrow parses with explicit column types, so a 25M-row ratings.csv streams out of the zip
without a string copy of every value. A value that does not parse becomes a null (for the data
gate to quarantine), a line with too few fields goes to ``bad`` with its text, and only a
wholesale contract break (empty file, missing column, wrong separator) raises.
"""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys_core.data.archive import MEMBER_READ_ERRORS, damaged_member, read_member
from recsys_core.errors import DataContractError

log = logging.getLogger(__name__)

_INT_PATTERN = r"^-?\d{1,18}$"
_FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_BLOCK_SIZE = 16 << 20  # bigger blocks parse a 25M-row file with less per-block overhead
_INNER_SEP = "\x1f"  # pyarrow wants one delimiter byte; '::' files are rewritten to this


@dataclass(frozen=True)
class TableLayout:
    """How one member is laid out: separator, header or fixed names, wanted columns and types."""

    sep: str
    columns: dict[str, pa.DataType]  # canonical name -> type, in file order when headerless
    header: dict[str, tuple[str, ...]] | None = None  # canonical -> accepted header names
    encoding: str | None = None  # None: numbers only, stream the bytes as they are
    quoted: bool = False
    what: str = "rows"


def read_table(zf: zipfile.ZipFile, member: str, spec: TableLayout, bad: list[dict]) -> pa.Table:
    """Parse one member into an Arrow table with canonical column names and the given types.

    Typed parsing is tried first (fast, lean); if a value does not convert, its column is
    re-read as text and coerced, so that bad values become nulls instead of errors.
    """
    label = f"{zf.filename} member {member}"
    data = _member_bytes(zf, member, spec)
    first = _first_line(zf, member, data)
    if not first.strip():
        raise DataContractError(
            f"{label} is empty: the release has no {spec.what}. Delete the cached archive and "
            "run again, or pass --source with a complete MovieLens release."
        )
    fields = first.split(_delimiter(spec))
    include = _source_columns(label, fields, spec)
    names = None if spec.header else list(spec.columns) + [f"extra_{i}" for i in range(len(fields) - len(spec.columns))]
    seen: list[dict] = []

    def read(types: dict[str, pa.DataType]) -> pa.Table:
        seen.clear()
        return _parse(zf, member, data, spec, names, include, types, seen)

    wanted = {src: spec.columns[canon] for canon, src in include.items()}
    types = dict(wanted)
    for _ in range(len(types) + 1):  # each failure turns at least one column into text
        try:
            table = read(types)
            break
        except pa.ArrowInvalid as exc:
            if "conversion error" not in str(exc).lower():
                raise _parse_error(label, spec, exc) from exc
            column = _failed_column(exc, names or [f.strip().strip('"') for f in fields])
            if column not in types or types[column] == pa.string():
                column = None  # unknown: read every wanted column as text
            types.update({column: pa.string()} if column else dict.fromkeys(types, pa.string()))
            log.warning(
                "%s: column %s has values that are not numbers; they become nulls",
                label,
                column or "(several)",
            )
    else:  # pragma: no cover - text columns cannot fail to convert
        raise DataContractError(f"{label}: could not parse its {spec.what}; check the file.")
    table = _coerce(table, {k: v for k, v in wanted.items() if types[k] == pa.string()})
    table = table.select(list(include.values())).rename_columns(list(include))
    _check_malformed(label, table.num_rows, seen, spec)
    bad.extend({"member": member, **row} for row in seen)
    if table.num_rows == 0:
        raise DataContractError(
            f"{label} has a header but no {spec.what}. Delete the cached archive and run "
            "again, or pass --source with a complete MovieLens release."
        )
    return table


def _member_bytes(zf: zipfile.ZipFile, member: str, spec: TableLayout) -> bytes | None:
    """Bytes to parse, decoded to UTF-8 and with '::' made one byte; None: stream the member."""
    if spec.encoding is None and len(spec.sep) == 1:
        return None  # ASCII numbers: let pyarrow stream the member (lean on a 25M-row file)
    raw = read_member(zf, member)
    if spec.encoding is not None:
        raw = decode_text(raw, spec.encoding, f"{zf.filename} member {member}").encode("utf-8")
    if len(spec.sep) > 1:
        raw = raw.replace(spec.sep.encode(), _INNER_SEP.encode())
    return raw


def _delimiter(spec: TableLayout) -> str:
    """The one-byte delimiter pyarrow parses with ('::' is rewritten to _INNER_SEP)."""
    return spec.sep if len(spec.sep) == 1 else _INNER_SEP


def decode_text(data: bytes, encoding: str, label: str) -> str:
    """Decode per release: UTF-8 first; a latin-1 release falls back whole, a UTF-8 one per line.

    ml-100k and ml-1m ship latin-1 text (a re-packed UTF-8 copy is detected and kept); the CSV
    releases are UTF-8, where a stray latin-1/cp1252 line is decoded on its own instead of
    garbling every other title.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if encoding.lower().replace("_", "-") in ("latin-1", "latin1", "iso-8859-1"):
        return data.decode("latin-1")
    lines, fixed = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            fixed.append(number)
            try:
                lines.append(line.decode("cp1252"))
            except UnicodeDecodeError:
                lines.append(line.decode("latin-1"))
    log.warning(
        "%s is not valid %s on %d line(s) (first: %s); decoded those lines as cp1252/latin-1",
        label,
        encoding,
        len(fixed),
        fixed[:5],
    )
    return "\n".join(lines).lstrip("\ufeff")


def _first_line(zf: zipfile.ZipFile, member: str, data: bytes | None) -> str:
    if data is not None:
        end = data.find(b"\n")
        head = data if end < 0 else data[:end]  # no split: that would copy the whole rest
    else:
        try:
            with zf.open(member) as fh:
                head = fh.readline(1 << 20)
        except MEMBER_READ_ERRORS as exc:
            raise damaged_member(zf, member, exc) from exc
    return head.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def _source_columns(label: str, fields: list[str], spec: TableLayout) -> dict[str, str]:
    """canonical name -> name in the file; a missing column or a wrong separator raises."""
    if spec.header is None:
        if len(fields) < len(spec.columns):
            raise DataContractError(
                f"{label} has {len(fields)} field(s) on its first line; this layout has "
                f"{len(spec.columns)} ({', '.join(spec.columns)}) separated by "
                f"{separator_name(spec.sep)}. Is the separator right? Check that --dataset matches "
                "the archive given by --source."
            )
        return {c: c for c in spec.columns}
    found = [f.strip().strip('"') for f in fields]
    mapping, missing = {}, []
    for canon, accepted in spec.header.items():
        src = next((a for a in accepted if a in found), None)
        if src is None:
            missing.append(accepted[0])
        else:
            mapping[canon] = src
    if missing:
        hint = " Is the separator right?" if len(found) == 1 else ""
        raise DataContractError(
            f"{label} lacks the column(s) {', '.join(missing)}; its header is {found[:8]} "
            f"and this layout needs {', '.join(a[0] for a in spec.header.values())} separated "
            f"by {separator_name(spec.sep)}.{hint} Pass --source with an official MovieLens release."
        )
    return mapping


def _parse(
    zf: zipfile.ZipFile,
    member: str,
    data: bytes | None,
    spec: TableLayout,
    names: list[str] | None,
    include: dict[str, str],
    types: dict[str, pa.DataType],
    seen: list[dict],
) -> pa.Table:
    def on_invalid(row: pacsv.InvalidRow) -> str:
        seen.append(
            {
                "line": row.number,
                "reason": f"{row.actual_columns} field(s), expected {row.expected_columns}",
                "text": (row.text or "").replace(_INNER_SEP, spec.sep)[:500],
            }
        )
        return "skip"

    read_opts = pacsv.ReadOptions(column_names=names, block_size=_BLOCK_SIZE)
    parse_opts = pacsv.ParseOptions(
        delimiter=_delimiter(spec),
        quote_char='"' if spec.quoted else False,
        invalid_row_handler=on_invalid,
    )
    convert_opts = pacsv.ConvertOptions(
        column_types=types, include_columns=list(include.values()), strings_can_be_null=False
    )
    try:
        source = pa.BufferReader(data) if data is not None else zf.open(member)
        with source:
            return pacsv.read_csv(source, read_opts, parse_opts, convert_opts)
    except pa.ArrowInvalid:
        raise
    except MEMBER_READ_ERRORS as exc:
        raise damaged_member(zf, member, exc) from exc


def _failed_column(exc: Exception, file_columns: list[str]) -> str | None:
    """The column a pyarrow conversion error names ('In CSV column #2: ...'), if any."""
    match = re.search(r"CSV column #(\d+)", str(exc))
    index = int(match.group(1)) if match else -1
    return file_columns[index] if 0 <= index < len(file_columns) else None


def _coerce(table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    """Strings -> wanted types; anything that is not a plain number becomes null."""
    for name, typ in types.items():
        if typ == pa.string():
            continue
        text = pc.utf8_trim_whitespace(table[name])
        pattern = _FLOAT_PATTERN if pa.types.is_floating(typ) else _INT_PATTERN
        ok = pc.match_substring_regex(text, pattern)
        clean = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), typ)
        table = table.set_column(table.schema.get_field_index(name), name, clean)
    return table


def _check_malformed(label: str, good: int, seen: list[dict], spec: TableLayout) -> None:
    """A few short lines are row faults; more bad lines than good ones is a broken file."""
    if seen and len(seen) > good:
        example = seen[0]
        raise DataContractError(
            f"{label}: {len(seen)} line(s) do not have the expected fields (line "
            f"{example['line']}: {example['reason']}: {example['text'][:80]!r}) against {good} "
            f"good one(s). Is the file {separator_name(spec.sep)}-separated? Pass --source with an "
            "official MovieLens release."
        )
    if seen:
        log.warning("%s: %d malformed line(s) set aside for the rejects table", label, len(seen))


def _parse_error(label: str, spec: TableLayout, exc: Exception) -> DataContractError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataContractError(
        f"{label} could not be parsed as {separator_name(spec.sep)}-separated {spec.what} ({text}). "
        "Pass --source with an official MovieLens release."
    )


def separator_name(sep: str) -> str:
    return {"\t": "tab", ",": "comma", "|": "'|'", "::": "'::'"}.get(sep, repr(sep))
