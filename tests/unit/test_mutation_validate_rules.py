"""The smaller modules split out of validate.py: the plan and merge steps of a sharded run
(validate), the state it carries (findings), class names in messages and labels.json
(label_names), images a list names that cannot be opened (list_checks), unreadable paths
(context) and image decodes in several jobs (decode_queue).

Survivors judged EQUIVALENT (no test can tell them apart):

- recordio_batch ``one_record``: ``np.array([n], None)`` or without a dtype for the int64
  columns (a Python int gives int64 on the 64-bit platforms imgclf runs on).
- label_names ``_read_file``: ``decode("UTF-8")`` (codec names are case-insensitive).
- validate ``from_state``: ``display_name=None`` or left out (``Findings.load`` sets it from the
  state right after).
"""

from __future__ import annotations

import errno
import os

import pytest

import image_dataset.decode_queue as decode_queue
from image_dataset.channel_stats import ChannelStats
from image_dataset.issues import CollectingSink, Issue
from image_dataset.label_names import LabelNames
from image_dataset.layout import LST, RECORDIO, Channel
from image_dataset.store import LocalStore
from image_dataset.validate import ValidationOptions, Validator
from tests.builders import jpeg, lst_dataset, write_file, write_rec


def _validator(root: str, **options: object) -> Validator:
    return Validator(LocalStore(root), ValidationOptions(workers=1, **options), display_name="ds")  # type: ignore[arg-type]


def _issues(validator: Validator):
    return validator.issues.errors + validator.issues.warnings


# -- validate: plan, check, merge --------------------------------------------------------------


def test_plan_leaves_the_images_of_a_list_to_the_shards(tmp_path) -> None:
    root = lst_dataset(str(tmp_path), [(0, [0], "a.jpg"), (1, [1], "b.jpg")])
    validator = _validator(root)
    channel = validator.channels()[0]
    plan = validator.plan_channel(channel, lambda rec, size: [(0, size)])
    assert plan.ranges == [] and sorted(path for _, path in plan.images) == ["train/a.jpg", "train/b.jpg"]
    assert validator.stats["train"].images_checked == 0


def test_plan_cuts_only_files_that_hold_bytes(tmp_path) -> None:
    write_rec(os.path.join(tmp_path, "train", "a.rec"), [(0, jpeg())], with_idx=False)
    write_file(os.path.join(tmp_path, "train", "b.rec"), b"")
    validator = _validator(str(tmp_path))
    cuts = []

    def cut(rec: str, size: int):
        cuts.append((rec, size))
        return [(0, size)]

    channel = Channel("train", RECORDIO, "train", ("train/a.rec", "train/b.rec"))
    plan = validator.plan_channel(channel, cut)
    size = os.path.getsize(os.path.join(tmp_path, "train", "a.rec"))
    assert cuts == [("train/a.rec", size)] and plan.ranges == [("train/a.rec", 0, size)]
    assert _issues(validator) == [Issue("REC_EMPTY_FILE", "the file is empty", "train/b.rec")]


def test_a_file_that_cannot_be_cut_is_reported_at_its_path(tmp_path) -> None:
    write_rec(os.path.join(tmp_path, "a.rec"), [(0, jpeg())], with_idx=False)
    validator = _validator(str(tmp_path))

    def cut(rec: str, size: int):
        raise OSError(errno.EIO, "Input/output error")

    plan = validator.plan_channel(Channel("train", RECORDIO, "", ("a.rec",)), cut)
    assert plan.ranges == []
    assert _issues(validator) == [Issue("FILE_UNREADABLE", "cannot read the file: Input/output error", "a.rec")]


def test_check_records_starts_at_the_first_record_by_default(tmp_path) -> None:
    write_rec(os.path.join(tmp_path, "a.rec"), [(0, jpeg()), (1, jpeg())], with_idx=False)
    validator = _validator(str(tmp_path), decode_images=False)
    partial, records = validator.check_records(Channel("train", RECORDIO, "", ("a.rec",)), "a.rec")
    assert partial["start"] == 0 and partial["count"] == 2 and records.ordinals.tolist() == [0, 1]


def _shard(multi: bool, channel: Channel) -> dict:
    part = ChannelStats(channel)
    part.multi_label = multi
    return {"stats": part.to_state(), "issues": CollectingSink().to_state()}


@pytest.mark.parametrize(
    "root, where, expected", [("train", None, "train"), ("", None, "."), ("train", "a.rec", "a.rec")]
)
def test_merge_reports_shapes_that_differ_at_the_channel_or_where_asked(tmp_path, root, where, expected) -> None:
    channel = Channel("train", RECORDIO, root, ())
    validator = _validator(str(tmp_path))
    validator.plan_channel(channel, lambda rec, size: [])
    validator.merge("train", _shard(False, channel))
    assert _issues(validator) == []
    validator.merge("train", _shard(True, channel), where)
    assert _issues(validator)[-1] == Issue("LABEL_SHAPE", "single-label and multi-label samples are mixed", expected)


# -- findings: the state between the steps ------------------------------------------------------


def test_the_saved_state_comes_back_whole(tmp_path) -> None:
    validator = _validator(str(tmp_path))
    validator._findings.labels = LabelNames(["cat", "dog"], "train/labels.json")
    validator._findings.s3_unchecked = 3
    state = validator.to_state()
    back = Validator.from_state(LocalStore(str(tmp_path)), ValidationOptions(), state)
    assert back.to_state() == state
    assert back.report()["dataset"] == "ds" and back.label_names == ["cat", "dog"]


# -- label_names --------------------------------------------------------------------------------


def test_class_names_in_messages() -> None:
    assert LabelNames(["cat", "dog"]).describe([0, 1, 2]) == "0 (cat), 1 (dog), 2"
    assert LabelNames().describe([3, 4]) == "3, 4"


def _read_names(tmp_path, text: str):
    write_file(os.path.join(tmp_path, "train", "x.rec"), b"")
    write_file(os.path.join(tmp_path, "train", "labels.json"), text)
    validator = _validator(str(tmp_path))
    validator.channels()
    return [i for i in _issues(validator) if i.code == "LABEL_NAMES_INVALID"], validator.label_names


def test_labels_json_must_be_a_list_of_names(tmp_path) -> None:
    for text in ("{}", "[]", '["a", ""]', '"a"'):
        issues, names = _read_names(tmp_path, text)
        assert issues == [
            Issue("LABEL_NAMES_INVALID", "must be a non-empty JSON list of non-empty strings", "train/labels.json")
        ], text


def test_labels_json_names_that_appear_twice(tmp_path) -> None:
    names = ["a", "b", "c", "d", "e", "f"]
    issues, _ = _read_names(tmp_path, '["0", ' + ", ".join(f'"{n}", "{n}"' for n in names) + "]")
    assert issues == [Issue("LABEL_NAMES_INVALID", "names appear twice: a, b, c, d, e", "train/labels.json")]


def test_labels_json_that_cannot_be_read_without_a_file_name(tmp_path, monkeypatch) -> None:
    write_file(os.path.join(tmp_path, "train", "x.rec"), b"")
    write_file(os.path.join(tmp_path, "train", "labels.json"), '["a"]')

    def read(self: LocalStore, path: str) -> bytes:
        raise OSError(errno.EIO, "Input/output error")  # as a remote store raises it: no file name

    monkeypatch.setattr(LocalStore, "read", read)
    validator = _validator(str(tmp_path))
    validator.channels()
    assert Issue("FILE_UNREADABLE", "cannot read the file: Input/output error", "train/labels.json") in _issues(
        validator
    )


def test_labels_json_that_cannot_be_read(tmp_path) -> None:
    write_file(os.path.join(tmp_path, "train", "x.rec"), b"")
    os.makedirs(os.path.join(tmp_path, "train", "labels.json"))
    validator = _validator(str(tmp_path))
    validator.channels()
    assert [(i.code, i.location) for i in _issues(validator) if i.code == "FILE_UNREADABLE"] == [
        ("FILE_UNREADABLE", "train/labels.json")
    ]


# -- list_checks: images that cannot be opened ----------------------------------------------------


def test_a_listed_image_that_is_a_folder(tmp_path) -> None:
    root = lst_dataset(str(tmp_path), [(0, [0], "a.jpg")])
    os.makedirs(os.path.join(root, "train", "b.jpg"))
    with open(os.path.join(root, "train", "train.lst"), "a") as f:
        f.write("1\t0\tb.jpg\n")
    report = _validator(root).run()
    assert {
        "code": "FILE_MISSING",
        "message": "image train/b.jpg is a folder",
        "location": "train/train.lst:line 2",
    } in report["errors"]


def test_a_listed_image_that_cannot_be_read(tmp_path, monkeypatch) -> None:
    root = lst_dataset(str(tmp_path), [(0, [0], "a.jpg")])
    with open(os.path.join(root, "train", "train.lst"), "a") as f:
        f.write("1\t0\tb.jpg\n")
    real_size = LocalStore.size

    def size(self: LocalStore, path: str) -> int:
        if path.endswith("b.jpg"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_size(self, path)

    monkeypatch.setattr(LocalStore, "size", size)
    validator = _validator(root)
    validator.run()
    assert Issue(
        "FILE_UNREADABLE", "cannot read image train/b.jpg: Permission denied", "train/train.lst:line 2"
    ) in _issues(validator)


# -- context: unreadable paths ------------------------------------------------------------------


def test_an_unreadable_path_is_reported_as_a_file_by_default(tmp_path) -> None:
    validator = _validator(str(tmp_path))
    validator.unreadable(OSError(errno.EACCES, "Permission denied"), "train/a.jpg")
    validator.unreadable(OSError(errno.EACCES, "Permission denied", str(tmp_path)), "train/b.jpg")
    assert _issues(validator) == [
        Issue("FILE_UNREADABLE", "cannot read the file: Permission denied", "train/a.jpg"),
        Issue("FILE_UNREADABLE", "cannot read the file: Permission denied", "."),
    ]


# -- decode_queue: several decode jobs ----------------------------------------------------------


def test_images_decoded_in_many_jobs_all_count(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(decode_queue, "DECODE_BATCH", 1)  # one job per image: results come back while queuing
    files = []
    for n in range(6):
        write_file(os.path.join(tmp_path, f"{n}.jpg"), jpeg(8 + n, 8))
        files.append((f"l:{n}", f"{n}.jpg"))
    validator = _validator(str(tmp_path))
    shard = validator.check_images(Channel("train", LST, "", ()), files)
    stats = ChannelStats.from_state(shard["stats"])
    assert stats.images_checked == 6 and stats.min_size == (8, 8) and stats.max_size == (13, 8)
