"""Open a release zip safely: refuse non-zips, escaping member paths and zip bombs.

Members are read as streams straight from the zip; nothing is extracted to disk, so an unsafe
archive is refused before anything could be written.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath

from recsys_core.errors import ArchiveError

MAX_TOTAL_BYTES = 8 * 1024**3  # ml-32m expands to ~0.9 GB; 8 GB leaves room without a bomb
MAX_RATIO = 200  # CSV compresses ~5-10x; a ratio this high is a bomb, not a ratings file
RATIO_FLOOR = 1 << 20  # tiny members can compress absurdly well without being dangerous

# What a damaged member raises while it is read (bad CRC, truncated deflate stream, ...).
MEMBER_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError)


def open_release(path: Path, *, max_total: int = MAX_TOTAL_BYTES, max_ratio: int = MAX_RATIO) -> zipfile.ZipFile:
    """Open ``path`` as a zip after checking every member; raise ArchiveError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(
            f"The archive {path} does not exist. Pass --source (or RECSYS_SOURCE) with the "
            "path or URL of a MovieLens release zip."
        )
    if not zipfile.is_zipfile(path):
        raise ArchiveError(f"{path} is not a zip archive: {_guess_why(path)}")
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(
            f"{path} is a damaged zip archive ({exc}). Delete it and run again, or pass "
            "--source with a good copy of the release."
        ) from exc
    try:
        check_members(path, infos, max_total=max_total, max_ratio=max_ratio)
    except ArchiveError:
        zf.close()
        raise
    return zf


def check_members(path: Path, infos: list[zipfile.ZipInfo], *, max_total: int, max_ratio: int) -> None:
    """Refuse escaping paths and bombs using the central directory only (nothing is inflated).

    zipfile never inflates a member past its declared size, so checking declared sizes bounds
    what reading can produce.
    """
    total = 0
    for info in infos:
        if is_unsafe_name(info.filename):
            raise ArchiveError(
                f"{path} contains the member {info.filename!r}, whose path escapes the archive "
                "folder. Refusing to read it; pass --source with an official MovieLens release."
            )
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > max_ratio:
            raise ArchiveError(
                f"{path} member {info.filename!r} expands {ratio:.0f}x (limit {max_ratio}x): "
                "this looks like a zip bomb. Refusing to read it; pass --source with an "
                "official MovieLens release."
            )
    if total > max_total:
        raise ArchiveError(
            f"{path} expands to {total:,} bytes, over the {max_total:,}-byte limit for a "
            "release: this looks like a zip bomb. Pass --source with an official MovieLens release."
        )


def is_unsafe_name(filename: str) -> bool:
    """Absolute paths, drive letters, ``..`` parts and NULs could write outside a target."""
    name = filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    return name.startswith("/") or "\x00" in name or ".." in parts or bool(parts and ":" in parts[0])


def find_member(zf: zipfile.ZipFile, basename: str, *, required: bool = True) -> str | None:
    """The member whose file name is ``basename`` (releases nest files in one folder)."""
    matches = [n for n in zf.namelist() if PurePosixPath(n).name == basename and not n.startswith("__MACOSX/")]
    if not matches:
        if required:
            raise ArchiveError(
                f"{zf.filename} has no {basename}: it is not the MovieLens release this dataset "
                "expects. Check that --dataset matches the archive given by --source."
            )
        return None
    return min(matches, key=len)


def read_member(zf: zipfile.ZipFile, member: str) -> bytes:
    """The member's bytes; a damaged member becomes an ArchiveError naming it."""
    try:
        return zf.read(member)
    except MEMBER_READ_ERRORS as exc:
        raise damaged_member(zf, member, exc) from exc


def damaged_member(zf: zipfile.ZipFile, member: str, exc: BaseException) -> ArchiveError:
    """The error for a member that cannot be inflated (truncated or corrupted download)."""
    return ArchiveError(
        f"{zf.filename} member {member} cannot be read ({exc}): the archive is damaged or "
        "truncated. Delete the cached archive and run again, or pass --source with a good copy."
    )


def _guess_why(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return (
            "it starts like a zip but its end is missing (a truncated download). Delete it "
            "and run again, or pass --source with a complete copy of the release."
        )
    if not head:
        return "the file is empty. Delete it and run again, or pass --source with a release zip."
    return (
        "the file is something else (an HTML error page or a wrong file?). Pass --source with a MovieLens release zip."
    )
