"""The dataset-format core: RecordIO framing and the image-record header byte for byte as MXNet
(dmlc-core's ``RecordIOWriter::WriteRecord``, ``mxnet.recordio.pack``) writes them, the largest
record it takes, the .idx of a writer given no keys (recordio); the dataset a report names and
the progress a run tells, for one file and for a folder, and a list channel whose samples changed
between the validation and the read for packing (validate); entries of a channel folder that
cannot be looked at (layout); hidden and non-image files of class folders, a class folder that
cannot be listed, and images decoded in more jobs than the pool holds at once (list_checks).

Survivors judged EQUIVALENT (no test can tell them apart):

- recordio ``frame``: ``search = None`` (``bytes.find`` reads a start of None as 0);
  ``find(MAGIC_BYTES, search, None)`` or without its end, and the same in the loop that skips
  unaligned hits (a match that runs past ``len & ~3`` starts past it too, so it is never
  4-byte aligned: the loop skips it, and an aligned match always lies inside the bound);
  ``hit + 2`` in that loop (the magic ``0a 23 d7 ce`` cannot match at ``hit`` and ``hit + 1``
  both: its first two bytes differ).
- validate ``_unchanged``: ``found <= stats.samples`` (equality returned just above).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import struct
from typing import Iterator, List, Tuple

import pytest

import image_dataset.list_checks as list_checks
from image_dataset.issues import CollectingSink, DatasetError, Issue
from image_dataset.layout import LST, discover
from image_dataset.recordio import MAGIC, MAGIC_BYTES, MAX_RECORD_LENGTH, RecordIOReader, RecordIOWriter, frame, pack
from image_dataset.store import LocalStore
from image_dataset.validate import ValidationOptions, Validator, validate_path
from tests.builders import folder_dataset, jpeg, magic_payload, write_file, write_rec

# -- recordio: what MXNet's writer puts on disk -------------------------------------------------


def _dmlc_write_record(buf: bytes) -> bytes:
    """dmlc-core's ``RecordIOWriter::WriteRecord`` (src/recordio.cc), line for line: the magic
    at each aligned offset below ``len & ~3`` ends a part (cflag 1, then 2) and is dropped; the
    rest is the last part (cflag 3) or the whole record (0); zeros pad to 4 bytes."""
    out = bytearray()
    length = len(buf)
    lower_align = (length >> 2) << 2
    upper_align = ((length + 3) >> 2) << 2
    dptr = 0
    for i in range(0, lower_align, 4):
        if buf[i : i + 4] == MAGIC_BYTES:
            out += struct.pack("<II", MAGIC, (1 if dptr == 0 else 2) << 29 | (i - dptr))
            out += buf[dptr:i]
            dptr = i + 4
    out += struct.pack("<II", MAGIC, (3 if dptr != 0 else 0) << 29 | (length - dptr))
    out += buf[dptr:]
    out += b"\0" * (upper_align - length)
    return bytes(out)


class _Hung(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Fail, not hang, when framing a few bytes loops for ever."""

    def hung(signum: int, stack: object) -> None:
        raise _Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _head(cflag: int, length: int) -> bytes:
    return struct.pack("<II", MAGIC, cflag << 29 | length)


M = MAGIC_BYTES
PAYLOADS = {
    # an aligned magic first, then an unaligned one before an aligned one
    "magic_first_then_unaligned": M + b"x" + M + b"abc" + M + b"yz",
    "unaligned_then_two_aligned": b"x" + M + b"abc" + M + M + b"yz",
    "starts_with_magic": M + b"tail",
    "ends_with_aligned_magic": b"abcd" + M,
    "aligned_magic_in_last_word_of_12": b"abcdefgh" + M,
    "two_aligned_magics": b"abcd" + M + b"efgh" + M + b"ij",
    "only_magics": M + M + M,
    "unaligned_magic_only": b"ab" + M + b"cdefgh",
    "magic_cut_by_the_end": b"abcdef" + M[:3],
    "empty": b"",
    "image_record_with_magics": struct.pack("<IfQQ", 0, 1.0, 3, 0) + magic_payload(jpeg(8, 8)),
}


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_frame_writes_the_bytes_dmlc_writes(payload: bytes) -> None:
    with _deadline(2.0):
        framed = frame(payload)
    assert framed == _dmlc_write_record(payload)
    assert RecordIOReader(io.BytesIO(framed)).read() == (0, payload)


def test_frame_cuts_at_each_aligned_magic_in_order() -> None:
    """Written out by hand: parts end at offsets 8 and 12 (the magic at 1 is not aligned)."""
    payload = b"x" + M + b"abc" + M + M + b"yz"
    with _deadline(2.0):
        framed = frame(payload)
    assert framed == _head(1, 8) + payload[:8] + _head(2, 0) + _head(3, 2) + b"yz\0\0"


def test_frame_splits_a_record_that_starts_or_ends_with_the_magic() -> None:
    assert frame(M + b"tail") == _head(1, 0) + _head(3, 4) + b"tail"
    assert frame(b"abcd" + M) == _head(1, 4) + b"abcd" + _head(3, 0)
    assert frame(b"abcdefgh" + M) == _head(1, 8) + b"abcdefgh" + _head(3, 0)


def test_frame_takes_a_record_of_exactly_2_29_minus_1_bytes() -> None:
    """dmlc accepts ``size < 1 << 29``: the largest record is written whole, with one padding byte."""
    framed = frame(bytes(MAX_RECORD_LENGTH))  # zero pages: cheap until framed
    try:
        assert len(framed) == 8 + (1 << 29)
        assert framed[:8] == _head(0, MAX_RECORD_LENGTH)
    finally:
        del framed


def test_frame_refuses_a_longer_record_with_its_limit_in_the_message() -> None:
    with pytest.raises(ValueError) as caught:
        frame(bytes(MAX_RECORD_LENGTH + 1))
    assert str(caught.value) == "a RecordIO record holds at most 2**29 - 1 bytes"


def test_pack_writes_the_ir_header_of_mxnet() -> None:
    """``IRHeader(flag, label, id, id2)`` as ``<IfQQ``: ids 0 unless given; a label vector sets
    ``flag`` to its length and the header's label to 0.0, as ``mxnet.recordio.pack`` does."""
    assert pack(3, b"img") == struct.pack("<IfQQ", 0, 3.0, 0, 0) + b"img"
    assert pack(3, b"img", id=7) == struct.pack("<IfQQ", 0, 3.0, 7, 0) + b"img"
    assert pack([1, 2.5], b"img", id=5) == struct.pack("<IfQQ", 2, 0.0, 5, 0) + struct.pack("<2f", 1, 2.5) + b"img"
    assert pack([4], b"") == struct.pack("<IfQQ", 1, 0.0, 0, 0) + struct.pack("<f", 4)


def test_writer_without_keys_indexes_each_record_by_its_offset(tmp_path) -> None:
    rec, idx = str(tmp_path / "d.rec"), str(tmp_path / "d.idx")
    with RecordIOWriter(rec, idx) as writer:
        assert writer.write(b"abc") == 0
        assert writer.write(b"defgh") == 12
        assert writer.write(b"ij", key=9) == 28
    with open(idx) as f:
        assert f.read() == "0\t0\n12\t12\n9\t28\n"
    with open(rec, "rb") as f:
        assert f.read() == frame(b"abc") + frame(b"defgh") + frame(b"ij")


# -- validate: the dataset a report names, the progress it tells ---------------------------------


def test_validate_path_of_one_file_names_the_file_and_tells_progress(tmp_path) -> None:
    rec = write_rec(str(tmp_path / "train.rec"), [(0, jpeg()), (1, jpeg())], with_idx=False)
    told: List[Tuple[str, int, int]] = []
    report = validate_path(rec, ValidationOptions(workers=1), progress=lambda *a: told.append(a))
    assert report["dataset"] == rec and report["channels"]["train"]["samples"] == 2
    size = os.path.getsize(rec)
    assert told and told[-1] == ("train.rec", size // 2, size)  # the last batch starts at the 2nd record


def test_validate_path_of_a_folder_names_the_folder_and_tells_progress(tmp_path) -> None:
    root = str(tmp_path / "data")
    rec = write_rec(os.path.join(root, "train", "train.rec"), [(0, jpeg()), (1, jpeg())], with_idx=False)
    write_rec(os.path.join(root, "validation", "validation.rec"), [(0, jpeg()), (1, jpeg())], with_idx=False)
    told: List[Tuple[str, int, int]] = []
    report = validate_path(root, ValidationOptions(workers=1), progress=lambda *a: told.append(a))
    assert report["dataset"] == root and report["valid"], report["errors"]
    size = os.path.getsize(rec)
    assert ("train/train.rec", size // 2, size) in told and any(t[0] == "validation/validation.rec" for t in told)


# -- validate: samples that changed between the validation and the read --------------------------


def _validated(root: str) -> Validator:
    validator = Validator(LocalStore(root), ValidationOptions(workers=1), display_name="ds")
    assert validator.run()["valid"], validator.issues.errors
    return validator


def test_samples_added_after_validation_stop_the_read(tmp_path) -> None:
    root = folder_dataset(str(tmp_path / "data"), {"cat": 2, "dog": 2})
    validator = _validated(root)
    write_file(os.path.join(root, "train", "cat", "new.jpg"), jpeg())
    with pytest.raises(DatasetError) as caught:
        validator.validated_samples()
    assert caught.value.issue == Issue(
        "FILE_EXTRA", "1 samples were added while the dataset was read; validate again", "train"
    )


def test_samples_deleted_after_validation_stop_the_read(tmp_path) -> None:
    root = folder_dataset(str(tmp_path / "data"), {"cat": 2, "dog": 2})
    validator = _validated(root)
    os.unlink(os.path.join(root, "train", "dog", "000.jpg"))
    with pytest.raises(DatasetError) as caught:
        validator.validated_samples()
    assert caught.value.issue == Issue(
        "FILE_MISSING",
        "1 of the 4 validated samples are gone (deleted while the dataset was read); validate again",
        "train",
    )


# -- layout: channel entries that cannot be looked at -------------------------------------------


def test_a_broken_link_in_a_channel_is_reported_and_not_taken_for_its_format(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "train.lst"), "0\t0\ta.jpg\n")
    os.symlink(str(tmp_path / "gone.rec"), str(tmp_path / "train" / "broken.rec"))
    os.symlink("loop.rec", str(tmp_path / "train" / "loop.rec"))
    sink = CollectingSink()
    channels = discover(LocalStore(str(tmp_path)), None, sink, None)
    assert [(c.name, c.format, c.files) for c in channels] == [("train", LST, ("train/train.lst",))]
    assert sink.errors == [
        Issue(
            "FILE_MISSING",
            "the entry does not exist (deleted while it was read, or a broken symbolic link)",
            "train/broken.rec",
        ),
        Issue("FILE_UNREADABLE", "the entry is a loop of symbolic links", "train/loop.rec"),
    ]


def test_a_broken_link_named_train_is_reported_as_an_entry_not_as_a_file(tmp_path) -> None:
    os.symlink(str(tmp_path / "gone"), str(tmp_path / "train"))
    os.makedirs(str(tmp_path / "validation"))
    sink = CollectingSink()
    assert discover(LocalStore(str(tmp_path)), None, sink, None) == []  # validation/ is empty
    assert sink.errors[0] == Issue(
        "FILE_MISSING", "the entry does not exist (deleted while it was read, or a broken symbolic link)", "train"
    )
    assert [i.code for i in sink.errors[1:]] == ["FORMAT_UNKNOWN"]  # of validation/, not "train is a file"


class _ExistsLags(LocalStore):
    """A store whose ``exists`` misses one entry that is still there when looked at again (a
    file rewritten by deleting and creating it while the channel was listed)."""

    def exists(self, path: str) -> bool:
        return path != "train/b.lst" and super().exists(path)


def test_an_entry_that_can_still_be_looked_at_is_kept(tmp_path) -> None:
    write_file(str(tmp_path / "train" / "a.lst"), "0\t0\ta.jpg\n")
    write_file(str(tmp_path / "train" / "b.lst"), "1\t0\tb.jpg\n")
    sink = CollectingSink()
    channels = discover(_ExistsLags(str(tmp_path)), None, sink, None)
    assert [c.files for c in channels] == [("train/a.lst", "train/b.lst")]
    assert sink.errors == []


# -- list_checks: class folders -----------------------------------------------------------------


def _run(store: LocalStore) -> dict:
    return Validator(store, ValidationOptions(workers=1), display_name="ds").run()


def test_hidden_files_of_a_class_folder_are_skipped_and_other_files_reported(tmp_path) -> None:
    folder_dataset(str(tmp_path), {"cat": 2, "dog": 2}, channels=("train",))
    write_file(str(tmp_path / "train" / "cat" / ".DS_Store"), b"\0\0\0\1Bud1")
    write_file(str(tmp_path / "train" / "cat" / "._000.jpg"), b"\0\5\26\7 AppleDouble")
    write_file(str(tmp_path / "train" / "dog" / "notes.txt"), "not an image")
    report = _run(LocalStore(str(tmp_path / "train")))
    assert report["valid"], report["errors"]
    assert report["channels"]["train"]["samples"] == 4
    assert report["channels"]["train"]["class_counts"] == {"0": 2, "1": 2}
    assert [(w["code"], w["message"], w["location"]) for w in report["warnings"]] == [
        ("FILE_EXTRA", "not a .jpg/.jpeg/.png image; ignored", "dog/notes.txt")
    ]


class _FolderFails(LocalStore):
    """A store that cannot list one class folder, and whose error names no file (as a remote
    store's errors do)."""

    def walk_files(self, path: str) -> Iterator[str]:
        if path == "dog":
            raise OSError(errno.EIO, "Input/output error")
        return super().walk_files(path)


def test_a_class_folder_that_cannot_be_listed_is_reported_at_its_path(tmp_path) -> None:
    folder_dataset(str(tmp_path), {"cat": 2, "dog": 2}, channels=("train",))
    report = _run(_FolderFails(str(tmp_path / "train")))
    assert [(e["code"], e["message"], e["location"]) for e in report["errors"]] == [
        ("FILE_UNREADABLE", "cannot list the folder: Input/output error", "dog")
    ]
    assert report["channels"]["train"]["samples"] == 2


def test_images_decoded_in_more_jobs_than_in_flight_all_count(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(list_checks, "DECODE_BATCH", 1)  # a job per image: 3 jobs fill a pool of 1 worker
    for n in range(4):
        write_file(str(tmp_path / "cat" / f"{n}.jpg"), jpeg(8 + n, 8))
    write_file(str(tmp_path / "dog" / "0.jpg"), jpeg(8, 8))
    told: List[Tuple[str, int, int]] = []
    validator = Validator(LocalStore(str(tmp_path)), ValidationOptions(workers=1), progress=lambda *a: told.append(a))
    report = validator.run()
    channel = report["channels"]["train"]
    assert channel["images_checked"] == 5 and channel["samples"] == 5
    assert channel["image_size"] == {"min_width": 8, "min_height": 8, "max_width": 11, "max_height": 8}
    assert told == [("train", n, 0) for n in range(1, 6)]
