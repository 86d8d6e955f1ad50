"""The RecordIO scan's findings do not depend on where its chunks end: a record that crosses a
chunk's end, and records the scan walks by their lengths (large records, after the first
chunk), are checked for an unsplit magic number in the payload and for non-zero padding as a
record inside one chunk is. The validator reads 8 MB chunks, so every file over 8 MB has
records of both kinds."""

from __future__ import annotations

import struct
from typing import List, Tuple

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from image_dataset.issues import CollectingSink
from image_dataset.recordio import MAGIC, MAGIC_BYTES, frame, pack, padded
from image_dataset.recordio_scan import RecordIOScanner

Record = Tuple[int, bool, bool]  # image bytes, an unsplit magic number in it, non-zero padding


def encode(label: int, size: int, magic: bool, dirty: bool) -> bytes:
    """One single-part record: ``size`` image bytes (never the magic number by chance), with
    the magic number unsplit at an aligned offset of the payload, and/or non-zero padding."""
    image = bytes((label * 7 + i) % 251 or 1 for i in range(size))
    payload = pack(float(label), image, id=label)
    if magic:
        at = 24 + ((size // 2) & ~3)
        payload = payload[:at] + MAGIC_BYTES + payload[at + 4 :]
    if not magic and not dirty:
        return frame(payload)
    record = struct.pack("<II", MAGIC, len(payload)) + payload
    filler = b"\x05" if dirty and len(payload) % 4 else b"\0"
    return record + filler * (padded(len(payload)) - len(payload))


def scan(data: bytes, chunk: int) -> Tuple[List[Tuple[str, str, str]], List[float], int]:
    sink = CollectingSink()
    scanner = RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x.rec", sink, chunk)
    labels = [float(v) for batch in scanner.scan() for v in batch.labels]
    # in their order per code: the two warnings reported once per file (unsplit magic, padding) may
    # come in either order when a record's padding lies past a chunk's end (checked on the way)
    found = sorted((tuple(i) for i in sink.errors + sink.warnings), key=lambda issue: issue[0])
    return found, labels, scanner.records  # type: ignore[return-value]


records = st.lists(
    st.tuples(st.integers(1, 20_000), st.booleans(), st.booleans()).map(
        lambda r: (r[0], r[1] and r[0] >= 8, r[2] and (r[0] + 24) % 4 != 0)
    ),
    min_size=1,
    max_size=24,
)


@settings(max_examples=60, deadline=None)
@given(records, st.sampled_from([64, 256, 4096, 16384, 65536]))
@example([(16317, False, False), (1, False, True), (8, True, False), (1, False, False)], 16384)  # padding past the end
@example([(5000, True, False), (5000, True, False), (40, True, False)], 4096)  # a harmless magic, then false starts
@example([(20000, True, False), (5000, True, False), (5001, True, True)], 65536)  # walked (small chunk) and not
def test_the_findings_are_those_of_one_chunk_over_the_file(rows: List[Record], chunk: int) -> None:
    data = b"".join(encode(i, *row) for i, row in enumerate(rows))
    expected = scan(data, len(data) + 64)
    assert scan(data, chunk) == expected
    found, labels, count = expected
    assert not [f for f in found if f[0] not in ("REC_UNESCAPED_MAGIC", "REC_PADDING_NONZERO", "REC_FALSE_START")]
    assert labels == [float(i) for i in range(len(rows))] and count == len(rows)
    starts = [i for i, row in enumerate(rows) if _false_start(i, *row)]
    assert [f[2] for f in found if f[0] == "REC_FALSE_START"] == [
        f"x.rec#record {i} @byte {_offset(rows, i)}" for i in starts
    ]
    for code, flagged in (("REC_UNESCAPED_MAGIC", [r[1] for r in rows]), ("REC_PADDING_NONZERO", [r[2] for r in rows])):
        located = [f[2] for f in found if f[0] == code and "#record" in f[2]]
        if not any(flagged):
            assert located == []
            continue
        assert located == [f"x.rec#record {flagged.index(True)} @byte {_offset(rows, flagged.index(True))}"]
        total = [f[1] for f in found if f[0] == code and f[2] == "x.rec"]
        assert total == ([f"{sum(flagged)} records in all {_what(code)}"] if sum(flagged) > 1 else [])


def _false_start(label: int, size: int, magic: bool, dirty: bool) -> bool:
    """Whether the record's magic number is followed, inside the record, by a length word with
    flag 0 or 1 (which MXNet's chunked readers take for a record start)."""
    if not magic:
        return False
    record = encode(label, size, magic, dirty)
    at = 8 + 24 + ((size // 2) & ~3) + 4  # the word after the magic number
    return at + 4 <= len(record) and struct.unpack_from("<I", record, at)[0] >> 29 <= 1


def _offset(rows: List[Record], index: int) -> int:
    return sum(len(encode(i, *row)) for i, row in enumerate(rows[:index]))


def _what(code: str) -> str:
    return "hold an unsplit magic number" if code == "REC_UNESCAPED_MAGIC" else "have non-zero padding"


def test_a_magic_number_past_the_first_chunk_of_large_records() -> None:
    """Records of 37 KB: the scan walks them after the first 8 MB chunk without reading the
    payloads; an unsplit magic number there is still found (it was missed before)."""
    rows = [(37_000, i == 300, False) for i in range(400)]
    data = b"".join(encode(i, *row) for i, row in enumerate(rows))
    assert len(data) > 12 << 20
    found, labels, _ = scan(data, 8 << 20)
    magic_at = _offset(rows, 300) + 8 + 24 + 18_500
    assert _false_start(300, *rows[300])
    assert found == [
        (
            "REC_FALSE_START",
            f"payload holds the magic number at byte {magic_at} followed by length word 0x19181716 (continuation"
            " flag 0), which MXNet's chunked readers take for a record start",
            f"x.rec#record 300 @byte {_offset(rows, 300)}",
        ),
        (
            "REC_UNESCAPED_MAGIC",
            f"payload holds the magic number at byte {_offset(rows, 300) + 8 + 24 + 18_500}",
            f"x.rec#record 300 @byte {_offset(rows, 300)}",
        )
    ]
    assert len(labels) == 400


def test_the_part_beyond_a_chunk_is_read_once_a_chunk_at_a_time() -> None:
    """A record many chunks long is read in chunk-sized reads, and only as far as needed."""
    data = encode(0, 100_001, False, True) + encode(1, 10, False, False)
    reads: List[int] = []

    def read(offset: int, length: int) -> bytes:
        reads.append(length)
        return data[offset : offset + length]

    sink = CollectingSink()
    assert len(list(RecordIOScanner(read, len(data), "x.rec", sink, 4096).scan())) == 1
    assert [i.code for i in sink.warnings] == ["REC_PADDING_NONZERO"] and max(reads) <= 4096
    assert sum(reads) < 2 * len(data)


def test_no_magic_number_by_chance_in_the_generated_images() -> None:
    for label in range(30):
        words = np.frombuffer(encode(label, 20_000, False, False)[8:], "<u4")
        assert not (words == MAGIC).any()


def test_every_record_without_room_for_its_header_is_counted() -> None:
    """The report's count of REC_BAD_HEADER is the file's, whatever the chunk size."""
    data = b"".join(frame(pack(i, b"x")) if i % 3 else frame(b"tiny") for i in range(600))
    for chunk in (64, 4096, len(data) + 64):
        sink = CollectingSink()
        list(RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x.rec", sink, chunk).scan())
        assert sink.counts == {"REC_BAD_HEADER": 200} and len(sink.errors) == 50, chunk


def _damaged(rows: List[Record], kind: str, at: int) -> bytes:
    out = []
    for i, row in enumerate(rows):
        record = encode(i, *row)
        if i == at and kind == "unpadded":
            record = record[: 8 + struct.unpack_from("<I", record, 4)[0] & 0x1FFFFFFF]
        out.append(record)
        if i == at and kind == "garbage":
            out.append(b"\x01\x02\x03\x04" * 3)
    if kind == "stray":  # bytes after the last record, too few for a header
        out.append(b"\x09" * (at % 7 + 1))
    return b"".join(out)


@settings(max_examples=60, deadline=None)
@given(
    records,
    st.sampled_from(["unpadded", "garbage", "stray"]),
    st.integers(0, 30),
    st.sampled_from([64, 256, 4096, 16384, 65536]),
)
def test_damage_is_found_alike_at_every_chunk_size(rows: List[Record], kind: str, at: int, chunk: int) -> None:
    at = at % len(rows)
    if kind == "unpadded" and (rows[at][0] + 24) % 4 == 0:
        return  # nothing to leave out
    data = _damaged(rows, kind, at)
    assert scan(data, chunk) == scan(data, len(data) + 64)
