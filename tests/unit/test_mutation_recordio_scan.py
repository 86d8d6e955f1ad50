"""recordio_scan: the per-record path (multi-part records read part by part: their batch, their
labels and the problems of a broken chain) and the length walk (large records), which must find
exactly what the word scan finds, in whole files and in shards, damaged or not."""

from __future__ import annotations

import random
import struct
from typing import Dict, List, Tuple

import numpy as np
import pytest

from image_dataset.issues import CollectingSink, Issue
from image_dataset.recordio import IR_HEADER, MAGIC, MAGIC_BYTES, frame, pack
from image_dataset.recordio_scan import RecordIOScanner, find_record_start

DTYPES = ["int64", "int64", "uint32", "float32", "uint64", "int64", "int64", "uint32"]


def _part(cflag: int, data: bytes) -> bytes:
    return struct.pack("<II", MAGIC, (cflag << 29) | len(data)) + data + b"\0" * (-len(data) % 4)


def _multipart(*parts: bytes) -> bytes:
    """One logical record of ``parts`` (the reader puts the magic number back between them)."""
    flags = [1] + [2] * (len(parts) - 2) + [3]
    return b"".join(_part(f, p) for f, p in zip(flags, parts))


def _scanner(data: bytes, sink: CollectingSink, chunk: int = 1 << 20) -> RecordIOScanner:
    return RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x.rec", sink, chunk)


def _one_batch(data: bytes):
    sink = CollectingSink()
    batches = list(_scanner(data, sink).scan())
    assert len(batches) == 1
    return batches[0], sink


def test_a_multi_part_record_gives_a_batch_of_the_documented_types() -> None:
    record = pack(3.5, b"", id=7) + b"jpeg"  # split before the image: the image is MAGIC + b"jpeg"
    batch, sink = _one_batch(_multipart(record[:24], b"jpeg"))
    assert sink.errors == [] and sink.warnings == []
    assert [str(column.dtype) for column in batch[:8]] == DTYPES
    assert [column.tolist() for column in batch[:8]] == [
        [0],
        [0],
        [0],
        [3.5],
        [7],
        [-1],  # not contiguous in the file
        [8],
        [struct.unpack("<I", MAGIC_BYTES)[0]],
    ]
    assert batch.vectors == {} and batch.images == {0: MAGIC_BYTES + b"jpeg"}


def test_a_multi_part_record_with_vector_labels() -> None:
    record = IR_HEADER.pack(2, 0.0, 9, 0) + struct.pack("<f", 1.0)  # the magic number is the second label
    batch, sink = _one_batch(_multipart(record, b"ab"))
    assert sink.errors == []
    assert [str(column.dtype) for column in batch[:8]] == DTYPES
    assert batch.flags.tolist() == [2] and batch.labels.tolist() == [0.0] and batch.ids.tolist() == [9]
    assert batch.image_lengths.tolist() == [2] and batch.image_heads.tolist() == [0]  # shorter than 4 bytes
    rows, values = batch.vectors[2]
    assert rows.tolist() == [0] and str(rows.dtype) == "int64"
    assert values.dtype == np.float32 and values.shape == (1, 2)
    assert values[0, 0] == 1.0 and values[0, 1] == np.frombuffer(MAGIC_BYTES, "<f4")[0]
    assert batch.images == {0: b"ab"}


def test_a_multi_part_image_of_exactly_four_bytes_has_its_head() -> None:
    batch, _ = _one_batch(_multipart(pack(1, b"", id=1), b""))
    assert batch.image_lengths.tolist() == [4]
    assert batch.image_heads.tolist() == [struct.unpack("<I", MAGIC_BYTES)[0]]


def test_a_multi_part_record_too_short_for_its_header_is_reported_where_it_starts() -> None:
    data = frame(pack(0, b"abcd", id=0)) + _multipart(b"abcd", b"")
    sink = CollectingSink()
    list(_scanner(data, sink).scan())
    assert sink.errors == [
        Issue(
            "REC_BAD_HEADER",
            "record has 8 bytes, fewer than the 24-byte image-record header",
            "x.rec#record 1 @byte 36",
        )
    ]


def _errors(data: bytes) -> List[Issue]:
    sink = CollectingSink()
    list(_scanner(data, sink).scan())
    return sink.errors


def test_a_file_that_ends_inside_a_multi_part_record() -> None:
    first = frame(pack(0, b"abcd", id=0))  # 36 bytes
    assert _errors(first + _part(1, pack(1, b"ab"))) == [
        Issue("REC_TRUNCATED", "file ends inside a multi-part record", "x.rec#record 1 @byte 36")
    ]


def test_a_continuation_that_does_not_continue_breaks_the_record() -> None:
    first = frame(pack(0, b"abcd", id=0))
    head = _part(1, pack(1, b"ab"))  # 36 bytes from byte 36: the next part is at byte 72
    for second, flag in ((_part(0, b"zz"), 0), (_part(1, b"zz"), 1)):
        # the scan then goes on at the next record start: byte 72
        assert _errors(first + head + second)[0] == Issue(
            "REC_BAD_CONTINUATION",
            f"multi-part record starting at byte 36 is broken at byte 72 (magic 0x{MAGIC:08x}, flag {flag})",
            "x.rec#record 1 @byte 36",
        )
    bad_magic = struct.pack("<II", 0x12345678, (3 << 29) | 2) + b"zz\0\0"
    assert _errors(first + head + bad_magic) == [
        Issue(
            "REC_BAD_CONTINUATION",
            "multi-part record starting at byte 36 is broken at byte 72 (magic 0x12345678, flag 3)",
            "x.rec#record 1 @byte 36",
        )
    ]


def test_a_part_that_runs_past_the_end_of_the_file() -> None:
    first = frame(pack(0, b"abcd", id=0))
    head = _part(1, pack(1, b"ab"))
    for tail in (struct.pack("<II", MAGIC, (3 << 29) | 40) + b"short", _part(3, b"abcde")[:-3]):
        length = struct.unpack("<I", tail[4:8])[0] & ((1 << 29) - 1)
        assert _errors(first + head + tail) == [
            Issue(
                "REC_TRUNCATED",
                f"part at byte 72 announces {length} bytes, the file ends first",
                "x.rec#record 1 @byte 36",
            )
        ]


# -- the length walk: a pure speed-up of the word scan ---------------------------------------


def _result(data: bytes, chunk: int, start: int, end: int, walk: bool) -> Tuple[object, ...]:
    sink = CollectingSink(limit_per_code=1000)
    scanner = _scanner(data, sink, chunk)
    if not walk:
        scanner._walk = lambda *args: None  # type: ignore[method-assign]
    rows: Dict[str, List[object]] = {name: [] for name in ("o", "off", "f", "l", "id", "io", "il", "ih")}
    vectors, images, base = [], {}, 0
    for batch in scanner.scan(start, end):
        for name, column in zip(rows, batch[:8]):
            rows[name].extend(column.tolist())
        for flag, (r, v) in sorted(batch.vectors.items()):
            vectors.append((flag, (r + base).tolist(), v.tolist()))
        images.update({row + base: data for row, data in batch.images.items()})
        base += len(batch)
    issues = [tuple(i) for i in sink.errors + sink.warnings]
    return rows, sorted(vectors), images, issues, scanner.stopped_at, scanner.records


def _large_file(rng: random.Random) -> bytes:
    out = bytearray()
    for i in range(rng.randint(1, 12)):
        size = rng.choice([0, 1, 3, 5000, 9000, 20000, rng.randint(4097, 30000)])
        label = [1.0, 0.0, 2.0] if rng.random() < 0.2 else float(i % 4)
        out += frame(pack(label, bytes([i % 251]) * size, id=1000 + i))
    damage = rng.random()
    if damage < 0.15:
        out += b"\x01\x02\x03\x04"  # stray bytes at the end
    elif damage < 0.3:
        at = rng.randrange(0, len(out) // 4) * 4
        out[at : at + 4] = b"\xff\xff\xff\xff"  # a damaged word
    elif damage < 0.4:
        out = out[: rng.randrange(1, len(out))]  # truncated
    return bytes(out)


@pytest.mark.parametrize("seed", range(40))
def test_the_walk_finds_what_the_word_scan_finds(seed: int) -> None:
    rng = random.Random(seed)
    data = _large_file(rng)
    for chunk in (4096, 16384, 1 << 20):
        assert _result(data, chunk, 0, len(data), True) == _result(data, chunk, 0, len(data), False)
        cut = find_record_start(lambda o, n: data[o : o + n], len(data), rng.randrange(0, len(data) + 1))
        for start, end in ((0, cut), (cut, len(data)), (0, cut + rng.choice([0, 1, 4, 8]))):
            assert _result(data, chunk, start, end, True) == _result(data, chunk, start, end, False), (
                chunk,
                start,
                end,
            )


def test_large_records_are_walked_to_their_lengths() -> None:
    sizes = [5000, 9000, 4097, 12000, 20000]
    data = b"".join(frame(pack(float(i), b"x" * n, id=i)) for i, n in enumerate(sizes))
    rows, _, images, issues, stopped, records = _result(data, 16384, 0, len(data), True)
    assert issues == [] and images == {} and stopped == len(data) and records == 5
    assert rows["il"] == sizes and rows["id"] == [0, 1, 2, 3, 4] and rows["l"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    offsets = [0]
    for n in sizes[:-1]:
        offsets.append(offsets[-1] + 8 + 24 + n + (-(24 + n) % 4))
    assert rows["off"] == offsets and rows["io"] == [o + 32 for o in offsets]
    with_tail = _result(data + b"\x01\x02\x03\x04", 16384, 0, len(data) + 4, True)
    assert with_tail[3] == [
        ("REC_TRUNCATED", "4 stray bytes at the end of the file", f"x.rec#record 5 @byte {len(data)}")
    ]
    assert with_tail[0] == rows
