"""store: the code and message of every kind of OSError met on a dataset's file or folder, the
store path an error is about, and the base Store's whole-file reads."""

from __future__ import annotations

import errno
import os
from typing import Dict, List

import pytest

from image_dataset.store import LocalStore, Store, access_problem, join

MISSING = "the file does not exist (deleted while it was read, or a broken symbolic link)"


def test_a_missing_file_is_file_missing_whatever_carries_it() -> None:
    assert access_problem(FileNotFoundError(errno.ENOENT, "No such file or directory", "a.jpg")) == (
        "FILE_MISSING",
        MISSING,
    )
    assert access_problem(FileNotFoundError()) == ("FILE_MISSING", MISSING)  # no errno
    plain = OSError("gone")
    plain.errno = errno.ENOENT  # an OSError that is not a FileNotFoundError
    assert not isinstance(plain, FileNotFoundError)
    assert access_problem(plain, "folder") == (
        "FILE_MISSING",
        "the folder does not exist (deleted while it was read, or a broken symbolic link)",
    )


def test_a_symbolic_link_loop_is_unreadable() -> None:
    assert access_problem(OSError(errno.ELOOP, "Too many levels of symbolic links")) == (
        "FILE_UNREADABLE",
        "the file is a loop of symbolic links",
    )
    assert access_problem(OSError(errno.ELOOP, "x"), "folder") == (
        "FILE_UNREADABLE",
        "the folder is a loop of symbolic links",
    )


def test_other_errors_are_unreadable_with_their_reason_read_for_a_file_list_for_a_folder() -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", "a.jpg")
    assert access_problem(denied) == ("FILE_UNREADABLE", "cannot read the file: Permission denied")
    assert access_problem(denied, "folder") == ("FILE_UNREADABLE", "cannot list the folder: Permission denied")
    assert access_problem(OSError(errno.EIO, "Input/output error"), "file") == (
        "FILE_UNREADABLE",
        "cannot read the file: Input/output error",
    )


def test_the_reason_falls_back_to_the_text_then_to_the_type_name() -> None:
    assert access_problem(OSError("disk on fire")) == ("FILE_UNREADABLE", "cannot read the file: disk on fire")
    assert access_problem(OSError()) == ("FILE_UNREADABLE", "cannot read the file: OSError")
    assert access_problem(BlockingIOError()) == ("FILE_UNREADABLE", "cannot read the file: BlockingIOError")


def test_error_path_names_the_store_path_the_error_is_about(tmp_path) -> None:
    store = LocalStore(str(tmp_path))
    inside = OSError(errno.EACCES, "Permission denied", os.path.join(str(tmp_path), "train", "cat"))
    assert store.error_path(inside, "train") == "train/cat"
    assert store.error_path(OSError(errno.EACCES, "denied", str(tmp_path)), "train") == ""
    outside = OSError(errno.EACCES, "denied", os.path.dirname(str(tmp_path)))
    assert store.error_path(outside, "train") == "train"
    sibling = OSError(errno.EACCES, "denied", str(tmp_path) + "-other")
    assert store.error_path(sibling, "train") == "train"
    assert store.error_path(OSError(errno.EACCES, "denied"), "train/x.jpg") == "train/x.jpg"
    assert store.error_path(OSError(errno.EACCES, "denied", 7), "train/x.jpg") == "train/x.jpg"  # a descriptor
    assert Store().error_path(inside, "train") == "train"


def test_describe_gives_the_absolute_path_of_a_local_file(tmp_path) -> None:
    store = LocalStore(str(tmp_path))
    assert store.describe("train/a.jpg") == os.path.join(str(tmp_path), "train", "a.jpg")
    assert store.describe("") == str(tmp_path)
    assert Store().describe("train/a.jpg") == "train/a.jpg"


class _Memory(Store):
    def __init__(self, files: Dict[str, bytes]) -> None:
        self.files = files
        self.calls: List[tuple] = []

    def size(self, path: str) -> int:
        return len(self.files[path])

    def read_at(self, path: str, offset: int, length: int) -> bytes:
        self.calls.append((path, offset, length))
        return self.files[path][offset : offset + length]


def test_the_base_store_reads_whole_files_in_order_through_read_at() -> None:
    store = _Memory({"a": b"alpha", "b": b"be"})
    assert store.read_many(["b", "a", "b"]) == [b"be", b"alpha", b"be"]
    assert store.calls == [("b", 0, 2), ("a", 0, 5), ("b", 0, 2)]
    with pytest.raises(KeyError):
        store.read_many(["c"])


def test_walk_files_names_files_relative_to_the_store_root(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.jpg").write_bytes(b"a")
    (tmp_path / "sub" / "b.jpg").write_bytes(b"b")
    assert list(LocalStore(str(tmp_path)).walk_files("")) == ["a.jpg", "sub/b.jpg"]
    assert list(LocalStore(str(tmp_path)).walk_files("sub")) == ["sub/b.jpg"]


def test_join_drops_empty_parts_and_outer_slashes() -> None:
    assert join("train/", "/cat", "", "/", "1.jpg") == "train/cat/1.jpg"
    assert join("a b", " c ") == "a b/ c "  # only slashes are stripped
    assert join("XX", "Xray/", "boX") == "XX/Xray/boX"
    assert join() == ""


def test_local_reads_of_nested_paths_and_byte_ranges(tmp_path) -> None:
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "1.jpg").write_bytes(b"0123456789")
    store = LocalStore(str(tmp_path))
    assert store.read_at("train/cat/1.jpg", 2, 3) == b"234"
    assert store.read("train/cat/1.jpg") == b"0123456789"
    assert store.size("train/cat/1.jpg") == 10 and store.exists("train/cat") and store.is_dir("train/cat")
    assert store.list_dir("train") == ["cat"] and store.local_path("") == str(tmp_path)
