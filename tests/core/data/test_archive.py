"""Archive safety: non-zips, truncation, escaping member paths and zip bombs are refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from recsys_core.data.archive import find_member, is_unsafe_name, open_release
from recsys_core.data.readers import read_release
from recsys_core.errors import ArchiveError
from tests.builders import build_csv_zip, build_ml100k_zip, zip_bytes


def test_valid_release_opens(tiny_ml100k: Path) -> None:
    with open_release(tiny_ml100k) as zf:
        assert find_member(zf, "u.data") == "ml-100k/u.data"


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ml-100k.zip"
    path.write_text("<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(ArchiveError, match=r"ml-100k\.zip is not a zip archive.*--source"):
        open_release(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ml-100k.zip"
    path.write_bytes(b"")
    with pytest.raises(ArchiveError, match=r"not a zip archive: the file is empty"):
        open_release(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=r"does not exist.*--source"):
        open_release(tmp_path / "nope.zip")


def test_truncated_archive_is_refused(tmp_path: Path, tiny_ml100k: Path) -> None:
    data = tiny_ml100k.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match=r"truncated download"):
        read_release(cut, "ml-100k")


def test_corrupted_member_is_a_clear_error(tmp_path: Path) -> None:
    """Central directory intact, deflated bytes damaged: the CRC/inflate error names the member."""
    payload = "".join(f"{u}\t{u % 7 + 1}\t{u % 5 + 1}\t88125{u:04d}\n" for u in range(1, 3000))
    zpath = build_csv_zip(tmp_path / "ok.zip")
    raw = bytearray(
        zip_bytes(
            {
                "ml-100k/u.data": payload,
                "ml-100k/u.item": "1|A (1999)|x||u|" + "|".join(["0"] * 19) + "\n",
            }
        )
    )
    start = raw.index(b"ml-100k/u.data") + len("ml-100k/u.data") + 200
    raw[start : start + 64] = bytes(64)
    zpath.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match=r"member ml-100k/u\.data cannot be read.*damaged"):
        read_release(zpath, "ml-100k")


@pytest.mark.parametrize("name", ["../x", "ml-100k/../../x", "/etc/passwd", "C:/x", "..\\x"])
def test_member_path_escaping_the_archive_is_refused(tmp_path: Path, name: str) -> None:
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t881250949\n")
        zf.writestr(zipfile.ZipInfo(name), "owned\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ArchiveError, match=r"escapes the archive folder"):
        read_release(zpath, "ml-100k")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere


def test_safe_names_pass() -> None:
    assert not is_unsafe_name("ml-100k/u.data")
    assert not is_unsafe_name("ml-latest-small/")
    assert is_unsafe_name("a/../../b") and is_unsafe_name("/abs") and is_unsafe_name("D:\\x")


def test_zip_bomb_ratio_is_refused(tmp_path: Path) -> None:
    zpath = tmp_path / "bomb.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", b"\0" * (4 << 20))  # 4 MiB of zeros -> ~4 KiB, ~1000x
    zpath.write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match=r"expands \d+x \(limit 200x\).*zip bomb"):
        open_release(zpath)


def test_zip_bomb_total_size_is_refused(tiny_ml100k: Path) -> None:
    with pytest.raises(ArchiveError, match=r"over the 1,000-byte limit.*zip bomb"):
        open_release(tiny_ml100k, max_total=1_000)


def test_find_member_prefers_the_release_folder_and_skips_macos_forks(tmp_path: Path) -> None:
    zpath = build_ml100k_zip(tmp_path / "a.zip", folds=False, extra={"__MACOSX/ml-100k/u.user": b"junk"})
    with open_release(zpath) as zf:
        assert find_member(zf, "u.user", required=False) is None
        with pytest.raises(ArchiveError, match=r"has no ratings\.csv.*--dataset"):
            find_member(zf, "ratings.csv")
