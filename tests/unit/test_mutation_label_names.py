"""label_names: the issues a user reads when the class names of list-format channels disagree
(FORMAT_MISMATCH, with the first ten names of each side) or when a manifest's metadata names two
class ids alike (LABEL_NAMES_INVALID, with the first five such names), each at the list file;
and the labels.json of RecordIO channels: read from whichever channel has one, and reported
(LABEL_NAMES_INVALID at the second file) when two channels' files differ.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``read_layout``: ``if channel.root or True`` for ``if channel.root`` (``posixpath.join("",
  "labels.json")`` is ``"labels.json"``, the other branch's value).
- ``_read_file``: ``decode("UTF-8-SIG")`` for ``decode("utf-8-sig")`` (codec names are looked
  up case-insensitively: the same codec).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence

from image_dataset.context import ValidationOptions
from image_dataset.issues import CollectingSink, Issue
from image_dataset.label_names import LabelNames
from image_dataset.validate import validate_path
from tests.builders import jpeg, manifest_lines, write_file, write_rec


def _manifest(root: str, channel: str, names: Dict[int, str], unnamed: Sequence[int] = ()) -> None:
    """``root/<channel>/m.manifest``: one image per class id, named by ``names`` (a class id in
    ``unnamed`` is used but given no name)."""
    rows = []
    for i in sorted(set(names) | set(unnamed)):
        write_file(os.path.join(root, channel, f"{i}.jpg"), jpeg(8, 8))
        row: Dict[str, object] = {"source-ref": f"{i}.jpg", "class": i}
        if i in names:
            row["class-metadata"] = {"class-name": names[i]}
        rows.append(row)
    write_file(os.path.join(root, channel, "m.manifest"), manifest_lines(rows))


def _validate(root: str) -> Dict[str, object]:
    return validate_path(root, ValidationOptions(workers=1, decode_images=False))


def _issues(report: Dict[str, object], key: str = "errors") -> List[Issue]:
    return [Issue(i["code"], i["message"], i["location"]) for i in report[key]]  # type: ignore[attr-defined]


# -- names that differ between channels -------------------------------------------------------


def test_channels_whose_names_differ_are_reported_with_ten_names_of_each(tmp_path) -> None:
    root = str(tmp_path)
    _manifest(root, "train", {i: f"n{i}" for i in range(12)})
    _manifest(root, "validation", {i: f"m{i}" for i in range(12)})
    report = _validate(root)
    ours = [f"m{i}" for i in range(10)]
    theirs = [f"n{i}" for i in range(10)]
    assert _issues(report) == [
        Issue(
            "FORMAT_MISMATCH",
            f"label names {ours} differ from the other channel's {theirs}",
            "validation/m.manifest",
        )
    ]
    assert report["label_names"] == [f"n{i}" for i in range(12)]
    assert report["valid"] is False


def test_a_channel_naming_the_first_classes_of_another_agrees_with_it() -> None:
    labels = LabelNames()
    sink = CollectingSink()
    labels.merge("a.manifest", ["cat", "dog"], sink)
    labels.merge("b.manifest", ["cat", "dog", "eel"], sink)  # more classes: taken
    labels.merge("c.manifest", ["cat"], sink)  # the first classes only: agrees
    labels.merge("d.manifest", None, sink)  # no names: nothing to compare
    assert sink.errors == [] and labels.names == ["cat", "dog", "eel"]
    labels.merge("e.manifest", ["dog"], sink)
    assert sink.errors == [
        Issue(
            "FORMAT_MISMATCH", "label names ['dog'] differ from the other channel's ['cat', 'dog', 'eel']", "e.manifest"
        )
    ]
    assert labels.names == ["cat", "dog", "eel"]


# -- names given twice in a manifest's metadata -----------------------------------------------


def test_a_manifest_naming_two_classes_alike_is_reported_with_five_of_the_names(tmp_path) -> None:
    root = str(tmp_path)
    names = {i: f"c{i % 7}" for i in range(14)}  # seven names, each for two class ids
    _manifest(root, "train", names)
    report = _validate(root)
    assert _issues(report) == [
        Issue(
            "LABEL_NAMES_INVALID",
            "the metadata gives two class ids one class name (or the number of another unnamed id): c0, c1, c2, c3, c4",
            "train/m.manifest",
        )
    ]
    assert report["label_names"] is None


def test_a_class_named_by_the_number_of_another_unnamed_class_is_reported(tmp_path) -> None:
    root = str(tmp_path)
    _manifest(root, "train", {0: "2", 1: "dog"}, unnamed=[2])  # class 2 is named "2" too
    assert _issues(_validate(root)) == [
        Issue(
            "LABEL_NAMES_INVALID",
            "the metadata gives two class ids one class name (or the number of another unnamed id): 2",
            "train/m.manifest",
        )
    ]


def test_a_blank_class_name_in_a_manifest_leaves_the_class_named_by_its_number(tmp_path) -> None:
    """labels.json allows no blank name, so pack could not write one: the class keeps its number."""
    root = str(tmp_path)
    for channel in ("train", "validation"):
        _manifest(root, channel, {0: "cat", 1: " "})
    report = _validate(root)
    assert report["valid"] is True and report["label_names"] == ["cat", "1"]


# -- labels.json of RecordIO channels ---------------------------------------------------------


def _recordio(root: str, labels: Dict[str, List[str]]) -> None:
    """A RecordIO channel each for train and validation; ``labels`` gives the labels.json of some."""
    for channel in ("train", "validation"):
        write_rec(os.path.join(root, channel, f"{channel}.rec"), [(0, jpeg(8, 8)), (1, jpeg(8, 8))])
        if channel in labels:
            write_file(os.path.join(root, channel, "labels.json"), json.dumps(labels[channel]))


def test_channels_whose_labels_json_differ_are_reported_at_the_second_file(tmp_path) -> None:
    root = str(tmp_path)
    _recordio(root, {"train": ["cat", "dog"], "validation": ["cat", "eel"]})
    report = _validate(root)
    assert _issues(report) == [
        Issue("LABEL_NAMES_INVALID", "differs from the other channel's class names", "validation/labels.json")
    ]
    assert report["label_names"] == ["cat", "dog"] and report["valid"] is False


def test_labels_json_of_a_later_channel_is_read_when_the_first_has_none(tmp_path) -> None:
    root = str(tmp_path)
    _recordio(root, {"validation": ["cat", "dog"]})
    report = _validate(root)
    assert _issues(report) == [] and report["label_names"] == ["cat", "dog"]
