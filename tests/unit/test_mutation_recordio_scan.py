"""recordio_scan: the per-record path (multi-part records read part by part: their batch, their
labels and the problems of a broken chain) and the length walk (large records), which must find
exactly what the word scan finds, in whole files and in shards, damaged or not. Also the word
scan's exact records and issues at every chunk size from 64 bytes up (clean, damaged and resynced
files), headers and padding, batches, and the chunks it reads.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``__init__``: ``self.walk = None`` (falsy like False; set from the first chunk before it matters);
  ``stopped_at = None``/``1`` (every finished scan sets it; callers read it only after the scan).
- ``_plain_rows``: ``dtype=None`` or left out in ``np.arange`` (int64 on the 64-bit platforms we
  run); ``flags.astype(None)`` in the label check (float64 holds every uint32 exactly);
  ``image_word <= len(words)`` in ``has_head`` (a row that reaches it has its header and one
  more word inside the chunk, so its image word is always < len(words)).
- ``scan``: ``pos <= end`` before the walk (in the loop with no damage, pos < end already);
  ``pos > end`` in the walk branch (the batch is then yielded after the loop instead, before
  the totals: only ``stopped_at`` is set earlier); ``4097``/``<=`` in the walk test (when to
  walk is a speed heuristic: the walk finds what the word scan finds).
- ``_walk``: ``array("Q")`` (offsets are small and non-negative: same bytes), ``astype(None)``
  of the lengths (``_plain_rows`` casts them to int64), and every change of where the walk
  stops (``len(data) - 9``, ``end - pos + 1``/``- 2``, ``at < limit``, ``nxt >= limit``,
  ``IR_HEADER_SIZE < lrec``, ``lrec < LENGTH_MASK``, ``return`` instead of ``break``): the
  records it leaves are read by the word scan with the same result (speed only).
- ``_resync``: ``len(cand) or True`` (indexing an empty cand gives an empty array);
  ``pos - n_bytes``/``> self.size`` at the file's end (the scan then steps word by word to the
  end and stops at the same place); ``len(words) - 2`` (the next chunk overlaps one more word:
  speed only); ``max(..., 2)`` (a chunk of at most 2 words is the file's tail, returned before).
- ``_first_special``: ``cand.astype(None)`` (float64 compares equal to the int64 offsets).
"""

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


# -- the word scan: exact records and issues, whatever the chunk size ----------------------

SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 13]  # image bytes of the scalar-label records


def _raw(record: bytes) -> bytes:
    """One single-part record written as is: not split at aligned magic numbers, zero padding."""
    return struct.pack("<II", MAGIC, len(record)) + record + b"\0" * (-len(record) % 4)


def _small_records() -> List[bytes]:
    """Framed small records: scalar labels with images of every length mod 4, ids above 2**32
    (and a non-zero id2 right after them), then two records with vector labels."""
    out = [
        frame(pack(i * 0.5, bytes(range(1, n + 1)), id=(1 << 40) + (3 << 32) + i, id2=0xABCDEF))
        for i, n in enumerate(SIZES)
    ]
    out.append(frame(pack([1.5, 2.5], b"vec", id=99, id2=7)))
    out.append(frame(pack([3.0, 4.0, 5.0], b"wxyz", id=100)))
    return out


def _expected_rows(records: List[bytes], first: int = 0) -> Tuple[Dict[str, List[object]], List[object]]:
    """The columns and vectors that a scan must give for the clean ``records`` (from byte 0)."""
    rows: Dict[str, List[object]] = {name: [] for name in ("o", "off", "f", "l", "id", "io", "il", "ih")}
    vectors = []
    at = 0
    for i, record in enumerate(records):
        length = struct.unpack_from("<I", record, 4)[0]
        flag, label, rec_id, _ = IR_HEADER.unpack_from(record, 8)
        image = record[8 + 24 + 4 * flag : 8 + length]
        if flag:
            values = list(struct.unpack_from(f"<{flag}f", record, 32))
            vectors.append((flag, [i], [values]))
        for name, value in zip(
            rows,
            (first + i, at, flag, label, rec_id, at + 32 + 4 * flag, len(image)),
        ):
            rows[name].append(value)
        rows["ih"].append(struct.unpack("<I", image[:4])[0] if len(image) >= 4 else 0)
        at += len(record)
    return rows, sorted(vectors)


def test_small_records_are_read_exactly_whatever_the_chunk_size() -> None:
    records = _small_records()
    data = b"".join(records)
    rows, vectors = _expected_rows(records)
    assert rows["il"][:9] == SIZES and rows["ih"][4] == 0x04030201 and rows["ih"][3] == 0  # 4 bytes, 3 bytes
    assert rows["id"][0] == (1 << 40) + (3 << 32) and rows["f"][9:] == [2, 3]
    for chunk in [*range(64, len(data) + 12, 4), 1 << 20]:
        result = _result(data, chunk, 0, len(data), True)
        assert result == (rows, vectors, {}, [], len(data), len(records)), chunk


def _normal(result: Tuple[object, ...]) -> Tuple[object, ...]:
    """The result with REC_BAD_MAGIC messages cut to what they say whatever the chunk size: the
    word found and where the scan went on (the first words name the record before the damage
    only when that record and the damage lie in one chunk)."""
    issues = [(c, m[m.index("found") :] if c == "REC_BAD_MAGIC" else m, w) for c, m, w in result[3]]  # type: ignore
    return (*result[:3], issues, *result[4:])


def _damaged_files() -> Dict[str, Tuple[bytes, List[Tuple[str, str, str]], int]]:
    """name -> (file, the issues of a whole-file chunk, records counted)."""
    records = _small_records()
    base = b"".join(records)
    cut = sum(len(r) for r in records[:3])  # 104: the start of record 3
    multi = _part(1, pack(7.0, b"ab", id=5)) + _part(3, b"cd")
    n = len(records)
    return {
        "stray3": (
            base + b"\x01\x02\x03",
            [("REC_TRUNCATED", "3 stray bytes at the end of the file", f"x.rec#record {n} @byte {len(base)}")],
            n,
        ),
        "stray4": (
            base + b"\x01\x02\x03\x04",
            [("REC_TRUNCATED", "4 stray bytes at the end of the file", f"x.rec#record {n} @byte {len(base)}")],
            n,
        ),
        "garbage": (
            base[:cut] + b"\xee" * 12 + base[cut:],
            [
                (
                    "REC_BAD_MAGIC",
                    "expected the next record (magic 0xced7230a) at byte 104, after the 26-byte record at byte 68, "
                    "found 0xeeeeeeee; skipped 12 bytes to the next record at byte 116",
                    "x.rec#record 3 @byte 104",
                )
            ],
            n,
        ),
        "orphan parts": (  # resync skips the magic numbers of continuation parts (flags 2 and 3)
            base[:cut] + b"\xee" * 4 + _part(2, b"zzzz") + _part(3, b"zz") + base[cut:],
            [
                (
                    "REC_BAD_MAGIC",
                    "expected the next record (magic 0xced7230a) at byte 104, after the 26-byte record at byte 68, "
                    "found 0xeeeeeeee; skipped 28 bytes to the next record at byte 132",
                    "x.rec#record 3 @byte 104",
                )
            ],
            n,
        ),
        "multi-part after garbage": (  # resync stops at the first part (flag 1) of a record
            base[:cut] + b"\xee" * 8 + multi + base[cut:],
            [
                (
                    "REC_BAD_MAGIC",
                    "expected the next record (magic 0xced7230a) at byte 104, after the 26-byte record at byte 68, "
                    "found 0xeeeeeeee; skipped 8 bytes to the next record at byte 112",
                    "x.rec#record 3 @byte 104",
                )
            ],
            n + 1,
        ),
        "bad flag": (
            base[:cut] + struct.pack("<II", MAGIC, (5 << 29) | 4) + b"abcd" + base[cut:],
            [
                (
                    "REC_BAD_FLAG",
                    "length word 0xa0000004 has continuation flag 5; skipped 12 bytes to the next record at byte 116",
                    "x.rec#record 3 @byte 104",
                )
            ],
            n,
        ),
        "garbage to the end": (  # a lone magic number as the last word starts no record
            base + b"\xee" * 40 + MAGIC_BYTES,
            [
                (
                    "REC_BAD_MAGIC",
                    f"expected the next record (magic 0xced7230a) at byte {len(base)}, after the 40-byte record at "
                    f"byte {len(base) - 48}, found 0xeeeeeeee; no further record in the file",
                    f"x.rec#record {n} @byte {len(base)}",
                )
            ],
            n,
        ),
        "a magic number as the last word": (
            base + b"\xee" * 4 + MAGIC_BYTES,
            [
                (
                    "REC_BAD_MAGIC",
                    f"expected the next record (magic 0xced7230a) at byte {len(base)}, after the 40-byte record at "
                    f"byte {len(base) - 48}, found 0xeeeeeeee; no further record in the file",
                    f"x.rec#record {n} @byte {len(base)}",
                )
            ],
            n,
        ),
        "garbage longer than a chunk": (
            base[:cut] + b"\xee" * 212 + base[cut:],
            [
                (
                    "REC_BAD_MAGIC",
                    "expected the next record (magic 0xced7230a) at byte 104, after the 26-byte record at byte 68, "
                    "found 0xeeeeeeee; skipped 212 bytes to the next record at byte 316",
                    "x.rec#record 3 @byte 104",
                )
            ],
            n,
        ),
        "truncated": (
            base[:-5],
            [("REC_TRUNCATED", "record announces 40 bytes, the file ends after 35", "x.rec#record 10 @byte 388")],
            n,
        ),
        "empty last record": (
            base + frame(b""),
            [
                (
                    "REC_BAD_HEADER",
                    "record has 0 bytes, fewer than the 24-byte image-record header",
                    f"x.rec#record {n} @byte {len(base)}",
                )
            ],
            n + 1,
        ),
    }


DAMAGED = [
    "a magic number as the last word",
    "bad flag",
    "empty last record",
    "garbage",
    "garbage longer than a chunk",
    "garbage to the end",
    "multi-part after garbage",
    "orphan parts",
    "stray3",
    "stray4",
    "truncated",
]


@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_files_resync_the_same_way_whatever_the_chunk_size(name: str) -> None:
    files = _damaged_files()
    assert sorted(files) == DAMAGED
    data, issues, count = files[name]
    whole = _result(data, len(data) + 64, 0, len(data), True)
    assert whole[3] == issues and whole[4] == len(data) and whole[5] == count
    records = _small_records()
    rows, _ = _expected_rows(records)
    found = whole[0]["id"]  # type: ignore[index]
    lost = [100] if name == "truncated" else []  # the last record, cut short
    assert [i for i in found if i != 5] == [i for i in rows["id"] if i not in lost]  # 5: the multi-part one
    for chunk in range(64, len(data) + 12, 4):
        assert _normal(_result(data, chunk, 0, len(data), True)) == _normal(whole), chunk


def test_a_bad_magic_at_the_start_of_the_scan_names_the_word_found() -> None:
    records = _small_records()
    data = b"\x01\x02\x03\x04" + b"".join(records)
    for chunk in (64, 1 << 20):
        result = _result(data, chunk, 0, len(data), True)
        assert result[3] == [
            (
                "REC_BAD_MAGIC",
                "expected a record (magic 0xced7230a) at byte 0, found 0x04030201; "
                "skipped 4 bytes to the next record at byte 4",
                "x.rec#record 0 @byte 0",
            )
        ]
        assert result[0]["off"] == [o + 4 for o in _expected_rows(records)[0]["off"]]  # type: ignore[index]
    only_garbage = b"\x01\x02\x03\x04" * 3
    assert _result(only_garbage, 64, 0, 12, True)[3:] == (
        [
            (
                "REC_BAD_MAGIC",
                "expected a record (magic 0xced7230a) at byte 0, found 0x04030201; no further record in the file",
                "x.rec#record 0 @byte 0",
            )
        ],
        12,
        0,
    )


def test_a_shard_ends_before_the_record_at_its_end() -> None:
    records = _small_records()
    data = b"".join(records)
    rows, _ = _expected_rows(records)
    offsets: List[int] = rows["off"]  # type: ignore[assignment]
    for k in range(1, len(records)):
        for chunk in (64, 1 << 20):
            head = _result(data, chunk, 0, offsets[k], True)
            tail = _result(data, chunk, offsets[k], len(data), True)
            assert head[0]["off"] == offsets[:k] and head[4] == offsets[k] and head[5] == k  # type: ignore[index]
            assert tail[0]["off"] == offsets[k:] and tail[3] == [] and tail[5] == len(records) - k  # type: ignore


# -- headers and padding: the exact issues --------------------------------------------------


def test_records_that_cannot_hold_their_header_or_labels() -> None:
    fits = _raw(IR_HEADER.pack(1, 0.0, 1, 0) + struct.pack("<f", 9.0))  # 28 bytes: exactly its one label
    empty = _raw(pack(2.0, b"", id=2))  # 24 bytes: the header, no image
    short = _raw(b"abcdefgh")  # 8 bytes
    too_many = _raw(IR_HEADER.pack(2, 0.0, 3, 0) + struct.pack("<f", 9.0))  # 28 bytes, 2 labels announced
    tail = frame(pack(4.0, b"wxyz", id=4))
    data = fits + empty + short + too_many + tail
    for chunk in (64, 1 << 20):
        rows, vectors, _, issues, _, records = _result(data, chunk, 0, len(data), True)
        assert issues == [
            ("REC_BAD_HEADER", "record of 8 bytes cannot hold the 24-byte header", "x.rec#record 2 @byte 68"),
            (
                "REC_BAD_HEADER",
                "record of 28 bytes cannot hold the 24-byte header and the 2 labels it announces",
                "x.rec#record 3 @byte 84",
            ),
        ]
        assert rows["id"] == [1, 2, 4] and rows["il"] == [0, 0, 4] and rows["o"] == [0, 1, 4] and records == 5
        assert vectors == [(1, [0], [[9.0]])]


def test_non_zero_padding_is_reported_once_then_counted() -> None:
    def dirty(image: bytes, pad: bytes, rec_id: int) -> bytes:
        return struct.pack("<II", MAGIC, 24 + len(image)) + pack(0, image, id=rec_id) + pad

    clean = frame(pack(0, b"abcd", id=0))
    first = dirty(b"a", b"\x01\0\0", 1)  # the first padding byte has its lowest bit set
    second = dirty(b"abc", b"\x80", 2)
    data = clean + first + second + clean
    for chunk in (64, 1 << 20):
        result = _result(data, chunk, 0, len(data), True)
        assert result[3] == [
            ("REC_PADDING_NONZERO", "padding after the 25 data bytes is not zero", "x.rec#record 1 @byte 36"),
            ("REC_PADDING_NONZERO", "2 records in all have non-zero padding", "x.rec"),
        ]
        assert result[0]["id"] == [0, 1, 2, 0]  # type: ignore[index]
    for pad in (b"\0\x01\0", b"\0\0\x01"):
        data = clean + dirty(b"a", pad, 1) + clean
        assert _result(data, 1 << 20, 0, len(data), True)[3] == [
            ("REC_PADDING_NONZERO", "padding after the 25 data bytes is not zero", "x.rec#record 1 @byte 36")
        ]
    data = clean + dirty(b"ab", b"\0\0", 1) + dirty(b"abc", b"\0", 2) + clean
    assert _result(data, 1 << 20, 0, len(data), True)[3] == []
    sink = CollectingSink()
    data = clean + first + second + clean
    list(_scanner(data, sink).scan(summarize=False))
    assert [i.message for i in sink.warnings] == ["padding after the 25 data bytes is not zero"]


# -- batches ------------------------------------------------------------------------------


def _batches(data: bytes, chunk: int, batch_records: int, end: int = -1) -> Tuple[List[int], int]:
    """(records in each batch, chunks read). Reads of a record's part beyond a chunk (read_at)
    are not chunks."""
    reads = [0]

    def read(offset: int, length: int) -> bytes:
        assert offset >= 0 and offset + length <= len(data), "a read past the end of the file"
        return data[offset : offset + length]

    def read_chunk(offset: int, length: int) -> bytes:
        reads[0] += 1
        return read(offset, length)

    scanner = RecordIOScanner(read, len(data), "x.rec", CollectingSink(), chunk, read_chunk)
    sizes = [len(batch) for batch in scanner.scan(0, None if end < 0 else end, batch_records)]
    return sizes, reads[0]


def _greedy(steps: List[int], threshold: int) -> List[int]:
    out, gathered = [], 0
    for step in steps:
        gathered += step
        if gathered >= threshold:
            out.append(gathered)
            gathered = 0
    return out + ([gathered] if gathered else [])


@pytest.mark.parametrize("large", [False, True])
def test_a_batch_is_yielded_as_soon_as_it_holds_batch_records(large: bool) -> None:
    if large:  # walked: a few records per chunk
        data = b"".join(frame(pack(0, bytes([i + 1]) * (6000 + 1500 * (i % 3)), id=i)) for i in range(40))
        chunk = 65536
    else:
        data = b"".join(_small_records() * 3)
        chunk = 128
    steps, reads = _batches(data, chunk, 1)
    assert len(steps) == reads > 3 and sum(steps) == (40 if large else 33)  # each chunk read gives a batch
    assert min(steps) >= 1 and max(steps) > 1
    for threshold in range(2, max(steps) + 3):
        assert _batches(data, chunk, threshold)[0] == _greedy(steps, threshold), threshold


def test_the_default_batch_holds_65536_records() -> None:
    record = frame(pack(0, b"", id=0))  # 32 bytes
    data = record * 65537
    scanner = RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x.rec", CollectingSink(), 65536 * 32 + 4)
    assert [len(batch) for batch in scanner.scan()] == [65536, 1]


def test_records_before_the_end_are_yielded_before_the_scan_looks_past_it() -> None:
    records = _small_records()
    base = b"".join(records)
    data = base + b"\xee" * 8 + base
    sink = CollectingSink()
    scanner = _scanner(data, sink)
    seen = [(len(batch), len(sink.errors)) for batch in scanner.scan(0, len(base))]
    assert seen == [(len(records), 0)]  # the damage after the end is reported after the batch
    assert [i.location for i in sink.errors] == [f"x.rec#record {len(records)} @byte {len(base)}"]
    assert scanner.stopped_at == len(base) + 8


def test_garbage_after_a_record_that_ends_with_a_magic_number() -> None:
    """The scan must not step back into the record before the damage, even where that record's last
    word is an aligned magic number followed (in the garbage) by a plausible length word."""
    records = _small_records()
    base = b"".join(records)
    cut = sum(len(r) for r in records[:3])
    data = base[:cut] + _raw(pack(0, b"abcd" + MAGIC_BYTES, id=77)) + struct.pack("<I", 0x10) + base[cut:]
    expected = ("REC_BAD_MAGIC", "found 0x00000010; skipped 4 bytes to the next record at byte 148")
    ids = _expected_rows(records)[0]["id"]
    for chunk in range(64, len(data) + 12, 4):
        rows, _, _, issues, stopped, count = _normal(_result(data, chunk, 0, len(data), True))
        # the unsplit magic number in record 3 is noticed at some chunk sizes only (see the report)
        assert [i for i in issues if i[0] != "REC_UNESCAPED_MAGIC"] == [(*expected, "x.rec#record 4 @byte 144")]
        assert rows["id"] == [*ids[:3], 77, *ids[3:]] and stopped == len(data) and count == 12, chunk


@pytest.mark.parametrize("asked, used", [(10, 64), (64, 64), (70, 68), (71, 68), (1000, 1000)])
def test_chunks_are_whole_words_of_at_least_64_bytes(asked: int, used: int) -> None:
    data = b"".join(_small_records())  # 436 bytes
    lengths: List[int] = []

    def read(offset: int, length: int) -> bytes:
        lengths.append(length)
        return data[offset : offset + length]

    scanner = RecordIOScanner(read, len(data), "x.rec", CollectingSink(), asked)
    assert scanner.chunk_size == used
    assert sum(len(batch) for batch in scanner.scan()) == 11
    assert lengths[0] == min(used, len(data)) and max(lengths) == min(used, len(data))
