"""The rules across channels (image_dataset.cross_channel), on channel stats built directly:
label shapes, classes without samples or outside the names, num_classes against the data,
channels smaller than a mini-batch and unopened s3:// references; each problem with its exact
message and location, in the order the report lists them.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``_label_shapes``: ``lengths[+1]`` for ``lengths[-1]``: the stats hold at most the train and
  validation channels, so the second is the last.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest

from image_dataset.channel_stats import ChannelStats
from image_dataset.context import ValidationOptions
from image_dataset.cross_channel import CrossChannelRules, num_classes
from image_dataset.issues import IssueSink
from image_dataset.label_names import LabelNames
from image_dataset.label_rules import MAX_CLASSES
from image_dataset.layout import LST, Channel

Found = Tuple[str, str, str]  # code, message, location


class _Recorder(IssueSink):
    def __init__(self) -> None:
        self.found: List[Found] = []

    def report(self, code: str, message: str, location: str) -> None:
        self.found.append((code, message, location))


def stats(
    name: str,
    root: Optional[str] = None,
    samples: int = 0,
    counts: Optional[Dict[int, int]] = None,
    vector: Optional[int] = None,
    multi: Optional[bool] = None,
) -> ChannelStats:
    s = ChannelStats(Channel(name, LST, name if root is None else root, ()))
    s.samples, s.class_counts, s.vector_length, s.multi_label = samples, dict(counts or {}), vector, multi
    return s


def check(
    *channels: ChannelStats,
    names: Optional[List[str]] = None,
    file: Optional[str] = None,
    s3: int = 0,
    **options: object,
) -> List[Found]:
    sink = _Recorder()
    by_name = {s.channel.name: s for s in channels}
    CrossChannelRules(ValidationOptions(**options), sink, by_name, LabelNames(names, file), s3).check()  # type: ignore[arg-type]
    return sink.found


# -- num_classes ---------------------------------------------------------------------------


def test_num_classes_takes_the_option_then_the_names_then_vectors_then_ids() -> None:
    train = stats("train", counts={0: 1, 4: 2}, vector=3)
    validation = stats("validation", counts={6: 1}, vector=5)
    channels = {"train": train, "validation": validation}
    assert num_classes(ValidationOptions(num_classes=9), LabelNames(["a"]), channels) == 9
    assert num_classes(ValidationOptions(num_classes=0), LabelNames(["a"]), channels) == 0
    assert num_classes(ValidationOptions(), LabelNames(["a", "b"]), channels) == 2
    assert num_classes(ValidationOptions(), LabelNames([]), channels) == 5  # no names: the longest vector
    train.vector_length = validation.vector_length = None
    assert num_classes(ValidationOptions(), LabelNames(), channels) == 7  # the highest id, plus one
    assert num_classes(ValidationOptions(), LabelNames(), {"train": stats("train")}) is None


# -- label shapes --------------------------------------------------------------------------


def test_a_multi_label_channel_beside_a_single_label_one() -> None:
    found = check(
        stats("train", counts={0: 1, 1: 1}, multi=False),
        stats("validation", counts={0: 1, 1: 1}, multi=True),
        num_classes=2,
    )
    assert found == [("LABEL_SHAPE", "the validation channel is multi-label, the others single-label", "validation")]


def test_a_channel_at_the_dataset_root_is_located_at_dot() -> None:
    found = check(
        stats("train", root="", counts={0: 1, 1: 1}, multi=True), stats("validation", multi=False), num_classes=2
    )
    assert found == [("LABEL_SHAPE", "the train channel is multi-label, the others single-label", ".")]


def test_channels_with_no_label_yet_do_not_count_as_a_shape() -> None:
    assert check(stats("train", counts={0: 1, 1: 1}, multi=False), stats("validation")) == []


def test_label_vectors_of_different_lengths() -> None:
    found = check(
        stats("train", counts={0: 1, 1: 1, 2: 1}, vector=2, multi=True),
        stats("validation", counts={0: 1}, vector=3, multi=True),
        num_classes=3,
    )
    assert found == [
        (
            "LABEL_SHAPE",
            "label vectors have 2 values in the train channel but 3 in the validation channel",
            "validation",
        )
    ]


def test_vectors_at_the_dataset_root() -> None:
    found = check(
        stats("train", vector=4, multi=True), stats("validation", root="", vector=2, multi=True), num_classes=4
    )
    assert found[0] == (
        "LABEL_SHAPE",
        "label vectors have 4 values in the train channel but 2 in the validation channel",
        ".",
    )


@pytest.mark.parametrize("n, tail", [(None, "the data names no class id: pass --num-classes"), (1, "the data has 1")])
def test_multi_label_needs_two_classes(n: Optional[int], tail: str) -> None:
    counts = {} if n is None else {0: 3}
    found = check(stats("train", counts=counts, multi=True), num_classes=n)
    message = "multi-label samples need at least 2 classes for their multi-hot vectors; " + tail
    assert ("LABEL_SHAPE", message, ".") in found


def test_two_classes_are_enough_for_multi_label() -> None:
    assert check(stats("train", counts={0: 1, 1: 1}, multi=True), num_classes=2) == []


def test_vectors_longer_or_shorter_than_the_names() -> None:
    found = check(stats("train", root="tr", counts={0: 1, 1: 1}, vector=2, multi=True), names=["a", "b", "c"])
    assert found[0] == ("NUM_CLASSES_MISMATCH", "label vectors have 2 values but the dataset names 3 classes", "tr")
    found = check(stats("train", root="", counts={0: 1, 1: 1}, vector=2, multi=True), names=["a", "b", "c"])
    assert found[0][2] == "."
    assert check(stats("train", counts={0: 1, 1: 1}, vector=2, multi=True), names=["a", "b"]) == []


# -- classes -------------------------------------------------------------------------------


def test_validation_classes_that_train_lacks() -> None:
    found = check(
        stats("train", counts={0: 2, 1: 1}),
        stats("validation", root="val", counts={0: 1, 2: 1, 3: 1}),
        names=["a", "b", "c", "d"],
    )
    assert found[0] == (
        "CLASS_NOT_IN_TRAIN",
        "classes 2 (c), 3 (d) have validation samples but no training sample",
        "val",
    )
    found = check(stats("train", counts={0: 2}), stats("validation", root="", counts={1: 1}))
    assert found[0] == ("CLASS_NOT_IN_TRAIN", "classes 1 have validation samples but no training sample", "validation")


def test_validation_classes_need_a_train_histogram_to_compare() -> None:
    assert check(stats("train"), stats("validation", counts={1: 1})) == []


def test_num_classes_against_the_names() -> None:
    found = check(stats("train", counts={0: 1, 1: 1}), names=["a", "b"], num_classes=3)
    assert ("NUM_CLASSES_MISMATCH", "num_classes is 3 but the dataset names 2 classes", ".") in found
    assert check(stats("train", counts={0: 1, 1: 1}), names=["a", "b"], num_classes=2) == []


def test_class_ids_beyond_the_labels_json() -> None:
    train = stats("train", counts={0: 1, 1: 1, 2: 1, 14: 1})
    found = check(train, stats("validation", counts={0: 1, 3: 1}), names=["a", "b"], file="train/labels.json")
    assert ("LABEL_NAMES_INVALID", "names 2 classes, but class ids 2, 3, 14 appear", "train/labels.json") in found
    many = stats("train", counts={i: 1 for i in range(13)})
    found = check(many, names=["a"], file="labels.json")
    assert (
        "LABEL_NAMES_INVALID",
        "names 1 classes, but class ids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 appear",
        "labels.json",
    ) in found


def test_names_from_class_folders_are_not_a_labels_json() -> None:
    found = check(stats("train", counts={0: 1, 5: 1}), names=["a", "b"])
    assert not [f for f in found if f[0] == "LABEL_NAMES_INVALID"]


def test_classes_without_a_training_sample() -> None:
    found = check(stats("train", root="tr", counts={0: 1, 3: 1}), names=["a", "b", "c", "d"])
    assert found == [("CLASS_WITHOUT_SAMPLES", "classes 1 (b), 2 (c) have no training sample", "tr")]
    found = check(stats("train", root="", counts={0: 1}), num_classes=2)
    assert found == [("CLASS_WITHOUT_SAMPLES", "classes 1 have no training sample", ".")]


def test_at_most_twenty_empty_classes_are_named() -> None:
    found = check(stats("train", counts={0: 1}), num_classes=30)
    assert found == [
        ("CLASS_WITHOUT_SAMPLES", f"classes {', '.join(map(str, range(1, 21)))} have no training sample", "train")
    ]


def test_empty_classes_are_not_listed_beyond_the_class_limit() -> None:
    assert check(stats("train", counts={0: 1}), num_classes=MAX_CLASSES + 1) == []
    found = check(stats("train", counts={0: 1}), num_classes=MAX_CLASSES)
    assert [f[0] for f in found] == ["CLASS_WITHOUT_SAMPLES"]


def test_no_train_histogram_no_empty_classes() -> None:
    assert check(stats("train"), stats("validation", counts={0: 1}), num_classes=3) == []


# -- sizes ---------------------------------------------------------------------------------


def test_channels_smaller_than_a_mini_batch() -> None:
    found = check(
        stats("train", samples=32, counts={0: 32}),
        stats("validation", root="", samples=31, counts={0: 31}),
        mini_batch_size=32,
    )
    assert found == [
        ("TOO_FEW_SAMPLES", "the validation channel has 31 valid samples, fewer than mini_batch_size 32", ".")
    ]
    found = check(stats("train", samples=1, counts={0: 1}), stats("validation", samples=0), mini_batch_size=2)
    assert found == [
        ("TOO_FEW_SAMPLES", "the train channel has 1 valid samples, fewer than mini_batch_size 2", "train")
    ]


def test_unopened_s3_references() -> None:
    message = "3 s3:// references were not opened; validate in AWS or pass --allow-bucket"
    assert check(stats("train", counts={0: 1}), s3=3) == [("PATH_NOT_CHECKED", message, ".")]
    assert check(stats("train", counts={0: 1}), s3=3, allowed_buckets=["b"]) == []
    assert check(stats("train", counts={0: 1}), s3=0) == []


def test_the_rules_report_in_the_order_of_the_report() -> None:
    found = check(
        stats("train", samples=1, counts={0: 1}, multi=True),
        stats("validation", samples=1, counts={2: 1}, multi=False),
        mini_batch_size=4,
        s3=1,
    )
    assert [f[0] for f in found] == [
        "LABEL_SHAPE",
        "CLASS_NOT_IN_TRAIN",
        "CLASS_WITHOUT_SAMPLES",
        "TOO_FEW_SAMPLES",
        "TOO_FEW_SAMPLES",
        "PATH_NOT_CHECKED",
    ]
