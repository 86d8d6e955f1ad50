"""recordio.RecordIOReader.open: a .rec file read from its path, named by its base name unless
named, with the name and the message in every error."""

from __future__ import annotations

import os

import pytest

from image_dataset.issues import DatasetError, Issue
from image_dataset.recordio import IndexedRecordIO, RecordIOReader, frame, pack
from tests.builders import write_rec


def test_open_reads_the_records_of_a_file_named_by_its_base_name(tmp_path) -> None:
    path = write_rec(str(tmp_path / "train.rec"), [(1, b"one"), (2, b"two!")])
    reader = RecordIOReader.open(path)
    try:
        assert reader.name == "train.rec"
        records = list(reader)
    finally:
        reader.close()
    assert records == [(0, pack(1, b"one", id=0)), (36, pack(2, b"two!", id=1))]  # 8 + 24 + 3 bytes, padded to 4


def test_open_takes_the_name_given(tmp_path) -> None:
    path = write_rec(str(tmp_path / "train.rec"), [(1, b"one")])
    reader = RecordIOReader.open(path, "channel/train.rec")
    try:
        assert reader.name == "channel/train.rec"
        assert reader.read() == (0, pack(1, b"one", id=0))
        assert reader.read() is None
    finally:
        reader.close()
    assert reader._stream.closed


def test_an_error_carries_its_message_and_the_file_record_and_byte(tmp_path) -> None:
    path = str(tmp_path / "bad.rec")
    with open(path, "wb") as f:
        f.write(frame(b"good") + b"\x00" * 8)
    reader = RecordIOReader.open(path)
    try:
        assert reader.read() == (0, b"good")
        with pytest.raises(DatasetError) as caught:
            reader.read()
    finally:
        reader.close()
    assert caught.value.issue.code == "REC_BAD_MAGIC"
    assert caught.value.issue.message == "expected magic 0xced7230a, found 0x00000000"
    assert caught.value.issue.location == "bad.rec#record 1 @byte 12"
    assert os.path.basename(path) in str(caught.value)


# -- random access through the .idx ----------------------------------------------------------


def test_indexed_reads_each_key_and_names_the_file_in_errors(tmp_path) -> None:
    rec = write_rec(str(tmp_path / "train.rec"), [(1, b"one"), (2, b"two!")], ids=[7, 9])
    size = os.path.getsize(rec)
    with open(str(tmp_path / "train.idx"), "a") as f:
        f.write(f"11\t{size}\n12\t4\n")  # past the end; not a record start
    with IndexedRecordIO(rec, str(tmp_path / "train.idx")) as indexed:
        assert indexed.name == "train.rec" and indexed.keys == [7, 9, 11, 12]
        assert indexed.read_idx(9) == pack(2, b"two!", id=9)
        assert indexed.read_idx(7) == pack(1, b"one", id=7)
        with pytest.raises(DatasetError) as caught:
            indexed.read_idx(11)
        assert caught.value.issue == Issue(
            "IDX_BAD_OFFSET", "key 11 points past the end", f"train.rec#record 0 @byte {size}"
        )
        with pytest.raises(DatasetError) as caught:
            indexed.read_idx(12)
        assert caught.value.issue.code == "REC_BAD_MAGIC"
        assert caught.value.issue.location == "train.rec#record 0 @byte 4"


def test_a_broken_idx_fails_with_its_own_name_and_line(tmp_path) -> None:
    rec = write_rec(str(tmp_path / "train.rec"), [(1, b"one")])
    with open(str(tmp_path / "train.idx"), "w") as f:
        f.write("0\t0\nzero\t36\n")
    with pytest.raises(DatasetError) as caught:
        IndexedRecordIO(rec, str(tmp_path / "train.idx"))
    assert caught.value.issue.code == "IDX_SYNTAX" and caught.value.issue.location == "train.idx:line 2"
