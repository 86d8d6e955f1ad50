"""layout: the channels :func:`discover` returns (name, format, root, files) and the exact issues
(code, message, location) for small trees: hidden files and folders (``.DS_Store``, ``._x.jpg``,
``.cache/``, ``_tmp/``) skipped before the files that follow them; a channel with files of
several formats (ambiguous, at a channel and at a dataset that is one channel); no known file
(FORMAT_UNKNOWN at ``.``); a forced format, with and without a file of it; and folders that
cannot be listed (the dataset root, a channel, a ``train_lst/``), reported as FILE_UNREADABLE or
FILE_MISSING at their path.

Survivors judged EQUIVALENT (no test can tell them apart): none.
"""

from __future__ import annotations

import errno
import os
from typing import List, Optional

from image_dataset.issues import CollectingSink, Issue
from image_dataset.layout import ANNOTATIONS, FOLDERS, LST, MANIFEST, RECORDIO, Channel, discover
from image_dataset.store import LocalStore
from tests.builders import write_file

MANIFEST_LINE = '{"source-ref": "a.jpg", "class": 0}\n'
ANNOTATIONS_DOC = '{"images": []}'


def _discover(root, forced: Optional[str] = None, store=None):
    sink = CollectingSink()
    channels = discover(store or LocalStore(str(root)), forced, sink, None)
    return channels, sink


class _Unlistable(LocalStore):
    """A store whose folder ``bad`` cannot be listed, with the given errno."""

    def __init__(self, root: str, bad: str, err: int = errno.EACCES) -> None:
        super().__init__(root)
        self.bad = bad
        self.err = err

    def list_dir(self, path: str) -> List[str]:
        if path == self.bad:
            raise OSError(self.err, os.strerror(self.err), self._abs(path))
        return super().list_dir(path)


# -- hidden entries -----------------------------------------------------------------------------


def test_hidden_files_and_folders_are_skipped_and_the_files_after_them_kept(tmp_path) -> None:
    write_file(str(tmp_path / "train" / ".DS_Store"), b"\0\0\0\1Bud1")
    write_file(str(tmp_path / "train" / "._a.lst"), b"\0\5\26\7")
    write_file(str(tmp_path / "train" / "_old.manifest"), MANIFEST_LINE)
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    os.makedirs(str(tmp_path / "train" / ".cache"))
    os.makedirs(str(tmp_path / "train" / "_tmp"))
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", LST, "train", ("train/a.lst",))]
    assert [i.code for i in sink.errors] == []
    unread = "a name starting with '_' is not read (rename it to use it)"
    assert sink.warnings == [
        Issue("VALIDATION_CHANNEL_MISSING", "no validation/ folder", "."),
        Issue("FILE_EXTRA", unread, "train/_old.manifest"),
        Issue("FILE_EXTRA", unread, "train/_tmp"),
    ]


def test_a_class_folder_starting_with_an_underscore_is_not_lost_silently(tmp_path) -> None:
    """It is not a class (as before), but the user is told, so a `_background/` class cannot
    vanish from the label map unnoticed; a zip's `__MACOSX/` and a `_SUCCESS` marker stay quiet."""
    for d in ("_background", "__MACOSX", "cat", "dog"):
        os.makedirs(str(tmp_path / "train" / d))
    write_file(str(tmp_path / "train" / "_SUCCESS"), b"")
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", FOLDERS, "train", ("train/cat", "train/dog"))]
    assert [(i.code, i.location) for i in sink.warnings if i.code == "FILE_EXTRA"] == [("FILE_EXTRA", "train/_background")]


def test_hidden_lst_files_in_a_train_lst_folder_are_not_lists(tmp_path) -> None:
    """macOS leaves `._a.lst` (AppleDouble) beside `a.lst`: it is not a list of the channel."""
    os.makedirs(str(tmp_path / "train" / "cat"))
    write_file(str(tmp_path / "train_lst" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "train_lst" / "._a.lst"), b"\0\5\26\7")
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", LST, "train", ("train_lst/a.lst",))]
    assert sink.errors == []


def test_hidden_folders_are_not_classes(tmp_path) -> None:
    for d in (".cache", "_tmp", "cat", "dog"):
        os.makedirs(str(tmp_path / "train" / d))
    write_file(str(tmp_path / "train" / ".DS_Store"), b"x")
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", FOLDERS, "train", ("train/cat", "train/dog"))]
    assert sink.errors == []


def test_a_hidden_folder_alone_is_no_class(tmp_path) -> None:
    os.makedirs(str(tmp_path / "train" / ".cache"))
    os.makedirs(str(tmp_path / "validation" / "_tmp"))
    channels, sink = _discover(tmp_path)
    assert channels == []
    message = "no .rec, .lst, manifest, annotations.json or class folders found"
    assert sink.errors == [
        Issue("FORMAT_UNKNOWN", message, "train"),
        Issue("FORMAT_UNKNOWN", message, "validation"),
    ]


# -- ambiguous and unknown formats ----------------------------------------------------------------


def test_two_formats_in_a_channel_are_ambiguous(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "train" / "a.manifest"), MANIFEST_LINE)
    write_file(str(tmp_path / "validation" / "v.lst"), "0\t0\tcat/v.jpg\n")
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("validation", LST, "validation", ("validation/v.lst",))]
    assert sink.errors == [
        Issue(
            "FORMAT_AMBIGUOUS",
            "the channel holds manifest and lst files; keep one kind or pass --format",
            "train",
        )
    ]


def test_three_formats_in_a_one_channel_dataset_are_ambiguous_at_dot(tmp_path) -> None:
    write_file(str(tmp_path / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "b.jsonl"), MANIFEST_LINE)
    write_file(str(tmp_path / "annotations.json"), ANNOTATIONS_DOC)
    channels, sink = _discover(tmp_path)
    assert channels == []
    assert sink.errors == [
        Issue(
            "FORMAT_AMBIGUOUS",
            "the channel holds annotations and manifest and lst files; keep one kind or pass --format",
            ".",
        )
    ]


def test_a_lst_in_train_lst_and_a_manifest_in_train_are_ambiguous(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.manifest"), MANIFEST_LINE)
    write_file(str(tmp_path / "train_lst" / "a.lst"), "0\t0\tcat/a.jpg\n")
    channels, sink = _discover(tmp_path)
    assert channels == []
    assert [(i.code, i.location) for i in sink.errors] == [("FORMAT_AMBIGUOUS", "train")]


def test_a_rec_wins_over_other_files(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.rec"), b"")
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "train" / "a.manifest"), MANIFEST_LINE)
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", RECORDIO, "train", ("train/a.rec",))]
    assert sink.errors == []


def test_unknown_files_in_a_one_channel_dataset_are_format_unknown_at_dot(tmp_path) -> None:
    write_file(str(tmp_path / "notes.txt"), "hello")
    write_file(str(tmp_path / "a.jpg"), b"\xff\xd8\xff")
    channels, sink = _discover(tmp_path)
    assert channels == []
    assert sink.errors == [
        Issue("FORMAT_UNKNOWN", "no .rec, .lst, manifest, annotations.json or class folders found", ".")
    ]


# -- a forced format ----------------------------------------------------------------------------


def test_a_forced_format_settles_an_ambiguous_channel(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "train" / "a.manifest"), MANIFEST_LINE)
    write_file(str(tmp_path / "train" / "annotations.json"), ANNOTATIONS_DOC)
    for forced, files in ((LST, ("train/a.lst",)), (MANIFEST, ("train/a.manifest",))):
        channels, sink = _discover(tmp_path, forced)
        assert channels == [Channel("train", forced, "train", files)]
        assert sink.errors == []
    channels, sink = _discover(tmp_path, ANNOTATIONS)
    assert channels == [Channel("train", ANNOTATIONS, "train", ("train/annotations.json",))]


def test_a_forced_format_without_its_file_is_reported_at_the_channel(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "validation" / "v.lst"), "0\t0\tcat/v.jpg\n")
    channels, sink = _discover(tmp_path, RECORDIO)
    assert channels == []
    assert sink.errors == [
        Issue("FORMAT_UNKNOWN", "no recordio file in the channel", "train"),
        Issue("FORMAT_UNKNOWN", "no recordio file in the channel", "validation"),
    ]


def test_a_forced_format_without_its_file_in_a_one_channel_dataset_is_reported_at_dot(tmp_path) -> None:
    write_file(str(tmp_path / "a.lst"), "0\t0\tcat/a.jpg\n")
    channels, sink = _discover(tmp_path, MANIFEST)
    assert channels == []
    assert sink.errors == [Issue("FORMAT_UNKNOWN", "no manifest file in the channel", ".")]


# -- folders that cannot be listed --------------------------------------------------------------


def test_a_dataset_root_that_cannot_be_listed_is_reported_at_dot(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    channels, sink = _discover(tmp_path, store=_Unlistable(str(tmp_path), ""))
    assert channels == []
    assert sink.errors == [Issue("FILE_UNREADABLE", "cannot list the folder: Permission denied", ".")]


def test_a_channel_that_cannot_be_listed_is_reported_at_its_path(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "validation" / "v.lst"), "0\t0\tcat/v.jpg\n")
    channels, sink = _discover(tmp_path, store=_Unlistable(str(tmp_path), "train"))
    assert channels == [Channel("validation", LST, "validation", ("validation/v.lst",))]
    assert sink.errors == [Issue("FILE_UNREADABLE", "cannot list the folder: Permission denied", "train")]


def test_a_train_lst_folder_that_vanished_is_reported_as_missing(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "train_lst" / "b.lst"), "0\t0\tcat/b.jpg\n")
    write_file(str(tmp_path / "validation" / "v.lst"), "0\t0\tcat/v.jpg\n")
    store = _Unlistable(str(tmp_path), "train_lst", errno.ENOENT)
    channels, sink = _discover(tmp_path, store=store)
    assert channels == [Channel("validation", LST, "validation", ("validation/v.lst",))]
    assert sink.errors == [
        Issue(
            "FILE_MISSING",
            "the folder does not exist (deleted while it was read, or a broken symbolic link)",
            "train_lst",
        )
    ]


def test_the_lst_of_train_lst_replaces_those_in_train(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "train_lst" / "B.LST"), "0\t0\tcat/b.jpg\n")
    write_file(str(tmp_path / "train_lst" / "notes.txt"), "x")
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", LST, "train", ("train_lst/B.LST",))]
    assert sink.errors == []


# -- files that are not read are said so ---------------------------------------------------------


def test_the_lists_left_in_train_when_train_lst_has_lists_are_reported_as_not_read(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    write_file(str(tmp_path / "train_lst" / "b.lst"), "0\t0\tcat/b.jpg\n")
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", LST, "train", ("train_lst/b.lst",))]
    extra = [i for i in sink.warnings if i.code == "FILE_EXTRA"]
    assert extra == [Issue("FILE_EXTRA", "not read: the channel's lists are those in train_lst/", "train/a.lst")]


def test_an_empty_train_lst_does_not_hide_the_lists_in_train(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")
    (tmp_path / "train_lst").mkdir()
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", LST, "train", ("train/a.lst",))]
    assert Issue("FILE_EXTRA", "holds no .lst file; ignored", "train_lst") in sink.warnings


def test_manifests_annotations_and_orphan_indexes_beside_a_rec_are_reported_as_not_read(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.rec"), b"")
    write_file(str(tmp_path / "train" / "a.idx"), "")
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\tcat/a.jpg\n")  # im2rec's: expected beside a.rec
    write_file(str(tmp_path / "train" / "other.manifest"), MANIFEST_LINE)
    write_file(str(tmp_path / "train" / "annotations.json"), ANNOTATIONS_DOC)
    write_file(str(tmp_path / "train" / "old.idx"), "")
    channels, sink = _discover(tmp_path)
    assert channels == [Channel("train", RECORDIO, "train", ("train/a.rec",))]
    assert sorted((i for i in sink.warnings if i.code == "FILE_EXTRA"), key=lambda i: i.location) == [
        Issue("FILE_EXTRA", "not read: the channel is read as recordio", "train/annotations.json"),
        Issue("FILE_EXTRA", "an index with no .rec of its name; ignored", "train/old.idx"),
        Issue("FILE_EXTRA", "not read: the channel is read as recordio", "train/other.manifest"),
    ]
