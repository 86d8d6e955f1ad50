"""list_checks: the issues and channel stats a validation reports for list-format channels.

Pinned here, exactly (code, message, location): the images of a .lst channel that no list
names (the first 20 named, one per image, the rest counted at the channel's root; hidden files
and listed images left out; the lists named in the message), an image at the root of a
class-folder channel, a lone list file validated (nothing beside it is extra), a channel folder
that cannot be walked or listed again for that check, a list file that cannot be read (its
samples missing, the other lists still read, its unlisted images not reported); duplicate
indexes and paths, a missing image and a listed folder, images not decoded (still counted), the
decode jobs a channel is cut into with the progress told after each and the images a sharded
plan defers; manifests (the label attribute and number of classes given, s3:// references
counted over several files, label names that clash across channels or within one file) and
annotations files whose names clash across channels.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``samples``: the manifest base ``dirname(path) if single_file and False`` / ``or True``
  (:func:`layout.discover` makes a lone file's channel root its folder, and a channel's
  manifests are only taken from its root folder: the two bases are always the same path).
- ``_extra_files``: ``posixpath.join(channel.root, name) if channel.root or True`` (joining
  onto an empty root gives ``name``, the other branch).
"""

from __future__ import annotations

import errno
import json
import os
from typing import Dict, Iterator, List, Tuple

import pytest

import image_dataset.list_checks as list_checks
from image_dataset.context import ValidationOptions
from image_dataset.store import LocalStore
from image_dataset.validate import Validator, validate_path
from tests.builders import folder_dataset, jpeg, lst_dataset, manifest_lines, write_file

Found = Tuple[str, str, str]


def _run(store: LocalStore, progress=None, **options) -> dict:
    return Validator(store, ValidationOptions(workers=1, **options), display_name="ds", progress=progress).run()


def _issues(report: dict, *skip: str) -> List[Found]:
    return [
        (i["code"], i["message"], i["location"])
        for i in report["errors"] + report["warnings"]
        if i["code"] not in skip
    ]


def _lst(root: str, names: List[str], lst: str = "train/train.lst", first: int = 0) -> None:
    """A .lst naming ``names`` (label = position % 2) and their images under root/train."""
    lines = []
    for n, name in enumerate(names):
        lines.append(f"{first + n}\t{n % 2}\t{name}\n")
        write_file(os.path.join(root, "train", name), jpeg(8, 8))
    write_file(os.path.join(root, lst), "".join(lines))


# -- images no list names -----------------------------------------------------------------


@pytest.mark.parametrize("extra", [20, 21, 23])
def test_the_first_20_unlisted_images_are_named_and_the_rest_counted(tmp_path, extra: int) -> None:
    root = str(tmp_path)
    _lst(root, ["a.jpg", "b.jpg"])
    for n in range(extra):  # in a nested folder, beside hidden files and a non-image
        write_file(os.path.join(root, "train", "more", f"x{n:02d}.jpg"), jpeg(8, 8))
    write_file(os.path.join(root, "train", ".hidden.jpg"), jpeg(8, 8))
    write_file(os.path.join(root, "train", "more", ".y.png"), jpeg(8, 8))
    write_file(os.path.join(root, "train", "notes.txt"), "not an image")
    report = _run(LocalStore(root))
    message = "image not listed in train/train.lst; it will not be used"
    expected = [("FILE_EXTRA", message, f"train/more/x{n:02d}.jpg") for n in range(20)]
    if extra > 20:
        expected.append(("FILE_EXTRA", f"{extra - 20} more images not listed", "train"))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == expected
    train = report["channels"]["train"]
    assert (train["samples"], train["images_checked"], train["class_counts"]) == (2, 2, {"0": 1, "1": 1})


def test_unlisted_images_of_a_channel_folder_validated_alone_are_counted_at_dot(tmp_path) -> None:
    root = str(tmp_path)
    _lst(root, ["a.jpg"])
    for n in range(22):
        write_file(os.path.join(root, "train", f"x{n:02d}.png"), jpeg(8, 8))
    report = _run(LocalStore(os.path.join(root, "train")))
    message = "image not listed in train.lst; it will not be used"
    assert _issues(report) == [("FILE_EXTRA", message, f"x{n:02d}.png") for n in range(20)] + [
        ("FILE_EXTRA", "2 more images not listed", ".")
    ]


def test_an_unlisted_image_is_reported_with_every_list_of_the_channel(tmp_path) -> None:
    root = str(tmp_path)
    _lst(root, ["a.jpg", "b.jpg"], "train/a.lst")
    _lst(root, ["c.jpg"], "train/b.lst", first=5)
    write_file(os.path.join(root, "train", "d.jpg"), jpeg(8, 8))
    report = _run(LocalStore(root))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("FILE_EXTRA", "image not listed in train/a.lst, train/b.lst; it will not be used", "train/d.jpg")
    ]
    train = report["channels"]["train"]
    a, b = (os.path.getsize(os.path.join(root, "train", n)) for n in ("a.lst", "b.lst"))
    assert (train["samples"], train["bytes"], train["images_checked"]) == (3, a + b, 3)


def test_a_lone_list_file_validated_has_no_unlisted_images(tmp_path) -> None:
    _lst(str(tmp_path), ["a.jpg", "b.jpg"])
    write_file(str(tmp_path / "train" / "c.jpg"), jpeg(8, 8))
    report = validate_path(str(tmp_path / "train" / "train.lst"), ValidationOptions(workers=1))
    assert _issues(report) == []
    assert report["channels"]["train"]["samples"] == 2


def test_images_at_the_root_of_a_class_folder_channel_are_reported_and_ignored(tmp_path) -> None:
    folder_dataset(str(tmp_path), {"cat": 1, "dog": 1}, channels=("train",))
    write_file(str(tmp_path / "train" / "stray.png"), jpeg(8, 8))
    write_file(str(tmp_path / "train" / "README.txt"), "about the data")
    report = _run(LocalStore(str(tmp_path)))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("FILE_EXTRA", "image outside any class folder; ignored", "train/stray.png")
    ]
    assert report["channels"]["train"]["samples"] == 2


def test_an_image_at_the_root_of_a_class_folder_channel_validated_alone(tmp_path) -> None:
    folder_dataset(str(tmp_path), {"cat": 1, "dog": 1}, channels=("train",))
    write_file(str(tmp_path / "train" / "stray.jpg"), jpeg(8, 8))
    report = _run(LocalStore(str(tmp_path / "train")))
    assert _issues(report) == [("FILE_EXTRA", "image outside any class folder; ignored", "stray.jpg")]


class _ListsOnce(LocalStore):
    """A store whose channel folder ``train`` can be listed once only (then an I/O error)."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.listed = 0

    def list_dir(self, path: str) -> List[str]:
        if path == "train":
            self.listed += 1
            if self.listed > 1:
                raise OSError(errno.EIO, "Input/output error")
        return super().list_dir(path)


def test_a_class_folder_channel_that_cannot_be_listed_again_is_reported(tmp_path) -> None:
    folder_dataset(str(tmp_path), {"cat": 1, "dog": 1}, channels=("train",))
    report = _run(_ListsOnce(str(tmp_path)))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("FILE_UNREADABLE", "cannot list the folder: Input/output error", "train")
    ]


class _WalkFails(LocalStore):
    """A store that cannot walk the channel folder ``train``; its error names no file."""

    def walk_files(self, path: str) -> Iterator[str]:
        if path == "train":
            raise OSError(errno.EIO, "Input/output error")
        return super().walk_files(path)


def test_a_list_channel_that_cannot_be_walked_for_unlisted_images_is_reported(tmp_path) -> None:
    _lst(str(tmp_path), ["a.jpg", "b.jpg"])
    write_file(str(tmp_path / "train" / "c.jpg"), jpeg(8, 8))
    report = _run(_WalkFails(str(tmp_path)))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("FILE_UNREADABLE", "cannot list the folder: Input/output error", "train")
    ]
    assert report["channels"]["train"]["samples"] == 2


class _ReadFails(LocalStore):
    """A store that cannot read ``train/a.lst``; its error names no file."""

    def read(self, path: str) -> bytes:
        if path == "train/a.lst":
            raise OSError(errno.EIO, "Input/output error")
        return super().read(path)


def test_a_list_that_cannot_be_read_is_reported_and_the_next_list_still_read(tmp_path) -> None:
    root = str(tmp_path)
    _lst(root, ["a.jpg", "b.jpg"], "train/a.lst")
    _lst(root, ["c.jpg"], "train/b.lst", first=5)
    report = _run(_ReadFails(root))
    # a.jpg and b.jpg are named by the list that cannot be read: not reported as unlisted
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("FILE_UNREADABLE", "cannot read the file: Input/output error", "train/a.lst")
    ]
    train = report["channels"]["train"]
    assert (train["samples"], train["bytes"]) == (1, os.path.getsize(os.path.join(root, "train", "b.lst")))


# -- the samples of a list ----------------------------------------------------------------


def test_a_duplicate_index_is_reported_with_its_first_line_and_the_list_read_on(tmp_path) -> None:
    root = str(tmp_path)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_file(os.path.join(root, "train", name), jpeg(8, 8))
    write_file(os.path.join(root, "train", "train.lst"), "0\t0\ta.jpg\n0\t1\tb.jpg\n1\t1\tc.jpg\n")
    report = _run(LocalStore(root))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING", "FILE_EXTRA") == [
        ("DUPLICATE_ID", "index 0 is also used at train/train.lst:line 1", "train/train.lst:line 2")
    ]
    train = report["channels"]["train"]
    assert (train["samples"], train["class_counts"], train["images_checked"]) == (2, {"0": 1, "1": 1}, 2)


def test_an_image_listed_twice_is_counted_once(tmp_path) -> None:
    lst_dataset(str(tmp_path), [(0, [0], "a.jpg"), (1, [1], "a.jpg"), (2, [1], "b.jpg")])
    report = _run(LocalStore(str(tmp_path)))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("DUPLICATE_PATH", "train/a.jpg is listed again", "train/train.lst:line 2")
    ]
    train = report["channels"]["train"]
    assert (train["samples"], train["class_counts"], train["images_checked"]) == (2, {"0": 1, "1": 1}, 2)


def test_a_missing_image_and_a_listed_folder_are_not_counted(tmp_path) -> None:
    root = str(tmp_path)
    _lst(root, ["a.jpg", "b.jpg"])
    os.makedirs(os.path.join(root, "train", "sub.jpg"))
    with open(os.path.join(root, "train", "train.lst"), "a") as f:
        f.write("7\t0\tgone.jpg\n8\t1\tsub.jpg\n")
    report = _run(LocalStore(root))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("FILE_MISSING", "image train/gone.jpg does not exist", "train/train.lst:line 3"),
        ("FILE_MISSING", "image train/sub.jpg is a folder", "train/train.lst:line 4"),
    ]
    train = report["channels"]["train"]
    assert (train["samples"], train["class_counts"], train["images_checked"]) == (2, {"0": 1, "1": 1}, 2)


def test_images_not_decoded_are_all_counted_and_opened(tmp_path) -> None:
    root = str(tmp_path)
    _lst(root, ["a.jpg", "b.jpg", "c.jpg"])
    report = _run(LocalStore(root), decode_images=False)
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == []
    train = report["channels"]["train"]
    assert (train["samples"], train["class_counts"], train["images_checked"]) == (3, {"0": 2, "1": 1}, 0)


# -- decode jobs --------------------------------------------------------------------------


def test_images_are_decoded_in_jobs_of_decode_batch_with_progress_after_each(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(list_checks, "DECODE_BATCH", 2)  # 3 full jobs and a last one of 1: 4 jobs fill a pool of 1
    root = str(tmp_path)
    _lst(root, [f"{n}.jpg" for n in range(7)])
    told: List[Tuple[str, int, int]] = []
    report = _run(LocalStore(root), progress=lambda *a: told.append(a))
    assert told == [("train", 2, 0), ("train", 4, 0), ("train", 6, 0)]
    train = report["channels"]["train"]
    assert (train["samples"], train["images_checked"], train["class_counts"]) == (7, 7, {"0": 4, "1": 3})
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == []


def test_a_sharded_plan_defers_every_image_of_a_list_channel(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(list_checks, "DECODE_BATCH", 2)
    root = str(tmp_path)
    _lst(root, [f"{n}.jpg" for n in range(5)])
    validator = Validator(LocalStore(root), ValidationOptions(workers=1))
    (channel,) = validator.channels()
    plan = validator.plan_channel(channel, lambda rec, size: [])
    assert plan.images == [(f"train/train.lst:line {n + 1}", f"train/{n}.jpg") for n in range(5)]
    assert validator.stats["train"].samples == 5 and validator.stats["train"].images_checked == 0


# -- manifests and annotations files ------------------------------------------------------


def _manifest(root: str, name: str, rows: List[Dict[str, object]], images: bool = True) -> None:
    for row in rows:
        ref = str(row["source-ref"])
        if images and not ref.startswith("s3://"):
            write_file(os.path.join(root, os.path.dirname(name), ref), jpeg(8, 8))
    write_file(os.path.join(root, name), manifest_lines(rows))


def test_a_manifest_label_attribute_named_in_the_options_is_used(tmp_path) -> None:
    root = str(tmp_path)
    rows = [{"source-ref": f"{n}.jpg", "class": n % 2, "reviewed": 1} for n in range(3)]
    _manifest(root, "train/train.manifest", rows)
    report = _run(LocalStore(root), label_attribute="class")
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == []
    assert report["channels"]["train"]["class_counts"] == {"0": 2, "1": 1}


def test_manifest_label_lists_are_class_ids_when_the_number_of_classes_says_so(tmp_path) -> None:
    root = str(tmp_path)
    rows = [{"source-ref": "a.jpg", "class": [0, 1]}, {"source-ref": "b.jpg", "class": [1, 0]}]
    _manifest(root, "train/train.manifest", rows)
    report = _run(LocalStore(root), num_classes=3)
    # without num_classes, [0, 1] and [1, 0] would be multi-hot vectors of 2 classes (1 each)
    assert report["channels"]["train"]["class_counts"] == {"0": 2, "1": 2}


def test_s3_references_of_every_manifest_are_counted_and_their_samples_too(tmp_path) -> None:
    root = str(tmp_path)
    _manifest(root, "train/a.manifest", [{"source-ref": f"s3://b/{n}.jpg", "class": n % 2} for n in range(3)])
    _manifest(root, "train/b.manifest", [{"source-ref": "s3://b/x.jpg", "class": 1}, {"source-ref": "c.jpg", "class": 0}])
    report = _run(LocalStore(root))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        ("PATH_NOT_CHECKED", "4 s3:// references were not opened; validate in AWS or pass --allow-bucket", ".")
    ]
    train = report["channels"]["train"]
    assert (train["samples"], train["class_counts"], train["images_checked"]) == (5, {"0": 3, "1": 2}, 1)


def _named(ref: str, label: int, name: str) -> Dict[str, object]:
    return {"source-ref": ref, "class": label, "class-metadata": {"class-name": name}}


def test_manifest_label_names_that_differ_across_channels_are_reported_at_the_file(tmp_path) -> None:
    root = str(tmp_path)
    _manifest(root, "train/train.manifest", [_named("a.jpg", 0, "cat"), _named("b.jpg", 1, "dog")])
    _manifest(root, "validation/val.manifest", [_named("c.jpg", 0, "dog"), _named("d.jpg", 1, "cat")])
    report = _run(LocalStore(root))
    assert _issues(report) == [
        (
            "FORMAT_MISMATCH",
            "label names ['dog', 'cat'] differ from the other channel's ['cat', 'dog']",
            "validation/val.manifest",
        )
    ]


def test_a_manifest_naming_two_classes_alike_is_reported_at_the_file(tmp_path) -> None:
    root = str(tmp_path)
    _manifest(root, "train/train.manifest", [_named("a.jpg", 0, "cat"), _named("b.jpg", 1, "cat")])
    report = _run(LocalStore(root))
    assert _issues(report, "VALIDATION_CHANNEL_MISSING") == [
        (
            "LABEL_NAMES_INVALID",
            "the metadata gives two class ids one class name (or the number of another unnamed id): cat",
            "train/train.manifest",
        )
    ]


def test_annotations_label_names_that_differ_across_channels_are_reported_at_the_file(tmp_path) -> None:
    root = str(tmp_path)
    for channel, labels in (("train", ["cat", "dog"]), ("validation", ["dog", "cat"])):
        images = [{"path": f"{n}.jpg", "label": n % 2} for n in range(2)]
        for n in range(2):
            write_file(os.path.join(root, channel, f"{n}.jpg"), jpeg(8, 8))
        doc = json.dumps({"labels": labels, "images": images})
        write_file(os.path.join(root, channel, "annotations.json"), doc)
    report = _run(LocalStore(root))
    assert _issues(report) == [
        (
            "FORMAT_MISMATCH",
            "label names ['dog', 'cat'] differ from the other channel's ['cat', 'dog']",
            "validation/annotations.json",
        )
    ]


def test_hidden_files_at_a_class_folder_channels_root_are_not_reported(tmp_path) -> None:
    """As in the class folders themselves, `._stray.jpg` (macOS) at the channel's root is left
    out quietly; a visible stray image is reported."""
    folder_dataset(str(tmp_path), {"cat": 2, "dog": 2}, channels=("train",))
    write_file(str(tmp_path / "train" / "._stray.jpg"), b"\0\5\26\7")
    write_file(str(tmp_path / "train" / "stray.jpg"), jpeg())
    report = validate_path(str(tmp_path), ValidationOptions(workers=1))
    extra = [(i["code"], i["location"]) for i in report["warnings"] if i["code"] == "FILE_EXTRA"]
    assert extra == [("FILE_EXTRA", "train/stray.jpg")]
