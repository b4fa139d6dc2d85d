"""Failures in words: a full or read-only disk names the path and the space; cleanup is safe."""

from __future__ import annotations

import errno
import json

import pytest

from recsys_core.errors import StorageError
from recsys_core.runs.failures import FAILURE_FILE, converts_storage_errors, discard_partial_outputs


def test_disk_full_names_the_path_the_free_space_and_what_a_run_wrote(tmp_path):
    data_dir = tmp_path / "data"
    earlier = data_dir / "runs" / "20261120T030000Z-aaaaaa"
    earlier.mkdir(parents=True)
    (earlier / "model.bin").write_bytes(b"x" * 5000)
    target = data_dir / "runs" / "20261121T030000Z-bbbbbb" / "model" / "weights.npz"

    @converts_storage_errors
    def write() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    with pytest.raises(StorageError) as caught:
        write()
    message = str(caught.value)
    assert str(target) in message and "disk is full" in message and "free" in message
    assert "4.9 KB" in message  # the last run folder's size, as the space a run needs
    assert "Nothing published was changed" in message and "\n" not in message


def test_read_only_and_other_errors(tmp_path):
    @converts_storage_errors
    def read_only() -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x"))

    with pytest.raises(StorageError, match="read-only file system"):
        read_only()

    @converts_storage_errors
    def other() -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file", "y")

    with pytest.raises(FileNotFoundError):  # not a storage problem: passes through unchanged
        other()


def test_partial_outputs_are_removed_and_the_failure_is_recorded(tmp_path):
    folder = tmp_path / "runs" / "r"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "w.npz").write_bytes(b"x" * 100)
    (folder / "validation.html").write_text("<html></html>")
    note = discard_partial_outputs(folder, stage="train", message="boom", state="Failed")
    assert not (folder / "model").exists() and (folder / "validation.html").is_file()
    assert note["freed_bytes"] == 100
    assert json.loads((folder / FAILURE_FILE).read_text())["stage"] == "train"
    discard_partial_outputs(folder, stage="train", message="boom", state="Failed")  # safe twice


def test_validation_results_survive_the_cleanup(tmp_path):
    folder = tmp_path / "runs" / "r"
    (folder / "data_docs").mkdir(parents=True)
    (folder / "data_docs" / "index.html").write_text("<html></html>")
    discard_partial_outputs(folder, stage="validate", message="too many rejects", state="Failed")
    assert (folder / "data_docs" / "index.html").is_file()


def test_staging_removed_meanwhile_is_not_stale(tmp_path):
    from recsys_core.publishing.table import is_stale_staging

    gone = tmp_path / "recommendations" / "_staging" / "run_id=20261122T000000Z-abcdef"
    assert is_stale_staging(tmp_path, gone) is False
