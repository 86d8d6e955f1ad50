"""recordio: what the sequential reader reads back from real files (whole, multi-part with
continuation flags 1/2/3, unpadded last records) and what it raises for damaged ones (code,
message, record number and byte offset); ``unpack`` of label vectors that exactly fill the
record and of headers that announce more labels than there are; ``parse_idx``'s syntax
reports; ``parse_idx_fast`` returning the line parser's keys and offsets for a well-formed
.idx and None (never other keys or offsets) for a malformed one.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``unpack``: ``IR_HEADER.unpack_from(record, )`` and ``struct.unpack_from(..., body, )``
  (the offset defaults to 0).
- ``parse_idx``: ``decode("UTF-8", ...)`` (Python normalises codec names: the same codec).
- ``parse_idx_fast``: ``"\\t\\n" in data`` / ``"\\n\\t" in data`` / ``data[:1] in (...)`` joined
  with ``and``, their strings changed (``"XX\\t\\nXX"``, ``"XX\\n\\tXX"``, ``"XX\\tXX"``,
  ``"XX\\nXX"``), ``data[:2]``, and ``"XX0123456789\\t\\nXX"`` in the first ``translate``: these
  tests of empty fields and stray characters are repeated by the separator check (only digits
  and strictly alternating TAB/NEWLINE pass it) and the count check (an empty field gives one
  number fewer than ``2 * lines``), so the result is the same for every input;
  ``"XX0123456789XX"`` in the separator check (``X`` cannot be in data that passed the first
  check); ``data.replace(b"XX\\tXX", ...)`` (numpy's whitespace separator ``"\\n"`` also
  matches a TAB, so the numbers are the same); ``len(ordered) >= 1`` (one key has no neighbour
  to equal: ``.any()`` of an empty comparison is False).
"""

from __future__ import annotations

import io
import struct

import pytest

from image_dataset.issues import CollectingSink, DatasetError, Issue
from image_dataset.recordio import (
    IR_HEADER,
    MAGIC,
    MAGIC_BYTES,
    RecordIOReader,
    frame,
    pack,
    parse_idx,
    parse_idx_fast,
    unpack,
)
from tests.builders import jpeg, magic_payload, write_rec


def _read_error(data: bytes, reads: int = 0, **kwargs) -> Issue:
    """The issue raised by the read after ``reads`` good ones."""
    reader = RecordIOReader(io.BytesIO(data), "x.rec", **kwargs)
    for _ in range(reads):
        assert reader.read() is not None
    with pytest.raises(DatasetError) as caught:
        reader.read()
    return caught.value.issue


def _part(cflag: int, data: bytes) -> bytes:
    """One on-disk part: magic, length word with the continuation flag, data, padding."""
    return struct.pack("<II", MAGIC, cflag << 29 | len(data)) + data + b"\0" * (-len(data) % 4)


# -- reading real files -------------------------------------------------------------------------


def test_reader_reads_back_labels_ids_and_images_of_split_records(tmp_path) -> None:
    images = [jpeg(8, 8, (10, 20, 30)), jpeg(9, 8, (40, 50, 60))]
    records = [(2, images[0]), ([1.0, 0.0, 0.5], magic_payload(images[1])), (7, magic_payload(images[0]))]
    path = write_rec(str(tmp_path / "m.rec"), records, ids=[11, 12, 13])
    with open(path, "rb") as f:
        data = f.read()
    # the second record is cut into parts with flags 1, 2, 2, 3 (three aligned magic numbers)
    second = len(frame(pack(2, images[0], id=11)))
    flags = []
    pos = second
    while True:
        lrec = struct.unpack_from("<I", data, pos + 4)[0]
        flags.append(lrec >> 29)
        pos += 8 + ((lrec & (2**29 - 1)) + 3) // 4 * 4
        if flags[-1] == 3:
            break
    assert flags == [1, 2, 2, 3]
    read = list(RecordIOReader(io.BytesIO(data), "m.rec"))
    assert [offset for offset, _ in read] == [0, second, pos]
    headers = [unpack(record) for _, record in read]
    assert [(h.flag, h.label, h.id, h.id2) for h, _ in headers] == [
        (0, 2.0, 11, 0),
        (3, (1.0, 0.0, 0.5), 12, 0),
        (0, 7.0, 13, 0),
    ]
    assert [image for _, image in headers] == [images[0], magic_payload(images[1]), magic_payload(images[0])]


def test_reader_counts_records_in_its_error_locations() -> None:
    data = frame(b"one") + frame(b"two") + frame(b"three") + b"\0" * 8
    assert _read_error(data, reads=3) == Issue(
        "REC_BAD_MAGIC", "expected magic 0xced7230a, found 0x00000000", "x.rec#record 3 @byte 40"
    )


def test_reader_without_a_name_calls_the_file_stream() -> None:
    with pytest.raises(DatasetError) as caught:
        RecordIOReader(io.BytesIO(b"\0" * 8)).read()
    assert caught.value.issue.location == "<stream>#record 0 @byte 0"


# -- padding of the last record -----------------------------------------------------------------


def test_a_last_record_without_its_padding_is_truncated_unless_padded_end_is_off() -> None:
    data = frame(b"first") + frame(b"abcde")[:-3]  # 16 bytes, then 8 + 5 without the 3 padding bytes
    assert _read_error(data, reads=1) == Issue(
        "REC_TRUNCATED", "record of 5 bytes, file ends after 5", "x.rec#record 1 @byte 16"
    )
    reader = RecordIOReader(io.BytesIO(data), "x.rec", padded_end=False)
    assert list(reader) == [(0, b"first"), (16, b"abcde")]
    assert reader.offset == len(data)


def test_with_padded_end_off_the_data_must_still_be_whole() -> None:
    data = frame(b"first") + frame(b"abcde")[:-4]
    assert _read_error(data, reads=1, padded_end=False) == Issue(
        "REC_TRUNCATED", "record of 5 bytes, file ends after 4", "x.rec#record 1 @byte 16"
    )


# -- damaged files ------------------------------------------------------------------------------


def test_a_file_that_ends_inside_a_multi_part_record_is_reported_at_its_start() -> None:
    split = frame(b"abcd" + MAGIC_BYTES + b"efgh")
    assert struct.unpack_from("<I", split, 4)[0] >> 29 == 1
    data = frame(b"whole") + split[:12]  # only the first part (8 + 4 bytes)
    assert _read_error(data, reads=1) == Issue(
        "REC_TRUNCATED", "file ends inside a multi-part record", "x.rec#record 1 @byte 16"
    )


def test_a_file_that_ends_inside_a_record_header() -> None:
    data = frame(b"ab") + MAGIC_BYTES[:3]
    assert _read_error(data, reads=1) == Issue(
        "REC_TRUNCATED", "file ends 3 bytes into a record header", "x.rec#record 1 @byte 12"
    )


@pytest.mark.parametrize("cflag", [4, 7])
def test_a_continuation_flag_above_3_is_rejected(cflag) -> None:
    data = frame(b"ok") + _part(cflag, b"abcd") + _part(3, b"efgh")
    assert _read_error(data, reads=1) == Issue(
        "REC_BAD_FLAG", f"continuation flag {cflag} is not 0-3", "x.rec#record 1 @byte 12"
    )


@pytest.mark.parametrize(
    "parts, message, offset",
    [
        ([(2, b"abcd")], "part with flag 2 outside a multi-part record", 12),
        ([(3, b"abcd")], "part with flag 3 outside a multi-part record", 12),
        ([(1, b"abcd"), (0, b"efgh")], "part with flag 0 inside a multi-part record", 24),
        ([(1, b"abcd"), (2, b"efgh"), (1, b"ijkl")], "part with flag 1 inside a multi-part record", 36),
    ],
)
def test_parts_out_of_order_name_the_flag_and_where_it_is(parts, message, offset) -> None:
    data = frame(b"ok") + b"".join(_part(c, d) for c, d in parts)
    assert _read_error(data, reads=1) == Issue("REC_BAD_CONTINUATION", message, f"x.rec#record 1 @byte {offset}")


# -- image-record headers -----------------------------------------------------------------------


def test_unpack_labels_that_fill_the_record_exactly() -> None:
    header, image = unpack(pack([1.0, 2.5], b"", id=3, id2=4))
    assert header == (2, (1.0, 2.5), 3, 4) and image == b""
    header, image = unpack(pack([9.0], b"img", id=5, id2=6))
    assert header == (1, (9.0,), 5, 6) and image == b"img"


def test_unpack_reports_labels_announced_beyond_the_record() -> None:
    record = IR_HEADER.pack(2, 0.0, 1, 0) + b"\0" * 7  # one byte short of two float32 labels
    with pytest.raises(DatasetError) as caught:
        unpack(record, "x.rec#record 3 @byte 96")
    assert caught.value.issue == Issue(
        "REC_BAD_HEADER", "header announces 2 labels (8 bytes) but only 7 bytes follow it", "x.rec#record 3 @byte 96"
    )


def test_unpack_without_a_location_calls_it_the_record() -> None:
    with pytest.raises(DatasetError) as caught:
        unpack(b"short")
    assert caught.value.issue == Issue(
        "REC_BAD_HEADER", "record has 5 bytes, fewer than the 24-byte image-record header", "record"
    )


# -- .idx: the line parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, shown",
    [
        (b"1 2", "'1 2'"),  # a space is not the separator
        (b"1\t\t2", "'1\\t\\t2'"),  # nor are two tabs
        (b"7\t" + b"x" * 100, "'7\\t" + "x" * 78 + "'"),  # the line is cut at 80 bytes
    ],
)
def test_parse_idx_shows_the_bad_line(line, shown) -> None:
    sink = CollectingSink()
    assert parse_idx(b"0\t0\n" + line + b"\n", "x.idx", sink) == [(0, 0, 1)]
    assert sink.errors == [Issue("IDX_SYNTAX", f"expected 'key<TAB>offset', got {shown}", "x.idx:line 2")]


# -- .idx: the fast parser ----------------------------------------------------------------------


def _slow(data: bytes):
    sink = CollectingSink()
    entries = parse_idx(data, "x.idx", sink)
    return sink.counts, [e.key for e in entries], [e.offset for e in entries]


@pytest.mark.parametrize(
    "data",
    [
        b"0\t0\n1\t36\n2\t72\n",  # as MXIndexedRecordIO writes it
        b"0\t0\n1\t36\n2\t72",  # no final newline
        b"5\t0\n3\t8\n",  # keys in any order
        b"007\t010\n",  # leading zeros
        b"1\t9223372036854775806\n",  # the largest int64 the bulk parser takes (2**63-1 is left to the line parser)
        b"42\t0\n",  # a single line
        b"",  # an empty file
    ],
)
def test_parse_idx_fast_returns_the_line_parsers_entries(data) -> None:
    fast = parse_idx_fast(data)
    counts, keys, offsets = _slow(data)
    assert counts == {}
    assert fast is not None
    assert (fast[0].tolist(), fast[1].tolist()) == (keys, offsets)
    assert (fast[0].dtype, fast[1].dtype) == ("uint64", "int64")


@pytest.mark.parametrize(
    "data",
    [
        b"\t1\t2\n",  # leading tab
        b"1\t2\t\n",  # trailing tab
        b"1\t2\t",  # trailing tab, no final newline
        b"1\t",  # empty offset, no final newline
        b"1\t\n",  # empty offset
        b"\t2\n",  # empty key
        b"1\t\t2\n",  # two tabs
        b"0\t0\n1\t\t2\n",  # two tabs on the second line
        b"1\t2\n3\n",  # a line without offset
        b"1\n2\t3\n",  # a line without offset, first
        b"1\t2\t3\n4\n",  # the fields of two lines on one
        b"1\t2\n\n",  # a blank line
        b"\n1\t2\n",  # a blank first line
        b"\n",  # only a newline
        b"1 2\n",  # a space
        b"1\t2\r\n",  # Windows line ends
        b"a\t1\n",  # not a number
        b"-1\t2\n",  # negative key
        b"1\t-2\n",  # negative offset
        b"1\t2\n1\t4\n",  # duplicate keys
        b"3\t0\n1\t8\n3\t16\n",  # duplicate keys, not neighbours
        b"12",  # one number
    ],
)
def test_parse_idx_fast_leaves_a_malformed_idx_to_the_line_parser(data) -> None:
    fast = parse_idx_fast(data)
    counts, keys, offsets = _slow(data)
    if fast is not None:  # only what the line parser reads the same, without a problem
        assert counts == {} and (fast[0].tolist(), fast[1].tolist()) == (keys, offsets)
    if counts:
        assert fast is None


@pytest.mark.parametrize(
    "idx, line, what",
    [
        ("0\t0\n1\t99999999999999999999\n", 2, "offset"),  # the bulk parser would clamp it
        ("0\t0\n1\t99999999999999999999\n\n", 2, "offset"),  # a blank line: the line parser alone
        ("99999999999999999999\t0\n", 1, "key"),
        ("18446744073709551616\t0\n", 1, "key"),  # 2**64
        ("-9223372036854775809\t0\n", 1, "key"),
        ("0\t9223372036854775808\n", 1, "offset"),  # 2**63: no file is that large
    ],
)
def test_a_number_beyond_64_bits_in_an_idx_is_a_syntax_error_at_its_line(
    tmp_path, idx: str, line: int, what: str
) -> None:
    """Neither a wrong offset in the message (numpy clamps what it cannot hold) nor an
    OverflowError: IDX_SYNTAX at the line, and the validation goes on."""
    from image_dataset.validate import ValidationOptions, validate_path

    write_rec(str(tmp_path / "train" / "d.rec"), [(0, jpeg()), (1, jpeg())])
    (tmp_path / "train" / "d.idx").write_text(idx)
    report = validate_path(str(tmp_path), ValidationOptions(workers=1))
    syntax = [i for i in report["errors"] if i["code"] == "IDX_SYNTAX"]
    assert [i["location"] for i in syntax] == [f"train/d.idx:line {line}"]
    prefix = "an offset beyond 9223372036854775807 (63 bits): " if what == "offset" else "a key beyond 64 bits: "
    assert syntax[0]["message"].startswith(prefix)
    assert not [i for i in report["errors"] if i["code"] == "IDX_BAD_OFFSET"]


@pytest.mark.parametrize("fast", [True, False])
def test_idx_keys_are_64_bits_unsigned_as_record_ids_are(tmp_path, fast: bool) -> None:
    """MXIndexedRecordIO writes any id as the key, and ImageRecordIter reads it as size_t."""
    from image_dataset.validate import ValidationOptions, validate_path

    ids = [2**63, 2**64 - 1]
    rec = write_rec(str(tmp_path / "d.rec"), [(0, jpeg()), (1, jpeg())], ids=ids)
    offsets = [int(line.split("\t")[1]) for line in (tmp_path / "d.idx").read_text().splitlines()]
    keys = ids if fast else [2**63, -1]  # -1 is 2**64 - 1 to MXNet's reader, and only the line parser reads it
    (tmp_path / "d.idx").write_text("".join(f"{k}\t{o}\n" for k, o in zip(keys, offsets)))
    report = validate_path(rec, ValidationOptions(workers=1))
    assert report["valid"] and report["counts"] == {}, report["errors"] + report["warnings"]
    (tmp_path / "d.idx").write_text("".join(f"{k}\t{o}\n" for k, o in zip(keys[::-1], offsets)))
    report = validate_path(rec, ValidationOptions(workers=1))
    assert [(i["code"], i["message"]) for i in report["warnings"]] == [
        ("IDX_KEY_MISMATCH", f"the .idx key is {2**64 - 1}, the record's header id {2**63}"),
        ("IDX_KEY_MISMATCH", f"the .idx key is {2**63}, the record's header id {2**64 - 1}"),
    ]


def test_the_largest_64_bit_numbers_are_read_as_they_are() -> None:
    sink = CollectingSink()
    entries = parse_idx(b"9223372036854775807\t9223372036854775807\n-9223372036854775808\t0\n", "d.idx", sink)
    assert [(e.key, e.offset) for e in entries] == [(2**63 - 1, 2**63 - 1), (-(2**63), 0)] and not sink.errors
    assert parse_idx_fast(b"18446744073709551615\t0\n") is None  # left to the line parser, which reads it exactly
    assert parse_idx(b"18446744073709551615\t0\n", "d.idx", sink)[0].key == 2**64 - 1 and not sink.errors
    fast = parse_idx_fast(b"18446744073709551614\t9223372036854775807\n")
    assert fast is not None and (fast[0].tolist(), fast[1].tolist()) == ([2**64 - 2], [2**63 - 1])
    assert parse_idx_fast(b"0\t9223372036854775808\n") is None  # an offset beyond 63 bits
