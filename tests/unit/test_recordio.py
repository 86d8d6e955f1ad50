"""RecordIO framing, image-record headers, the sequential reader, .idx and the fast scanner."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from image_dataset.issues import CollectingSink, DatasetError, IssueSink
from image_dataset.recordio import (
    MAGIC,
    MAGIC_BYTES,
    IndexedRecordIO,
    RecordIOReader,
    frame,
    pack,
    parse_idx,
    unpack,
)
from image_dataset.recordio_scan import RecordIOScanner, find_record_start
from tests.builders import jpeg, magic_payload, noisy_jpeg, write_rec


def scan_all(data: bytes, chunk_size: int = 1 << 20):
    sink = CollectingSink()
    scanner = RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x.rec", sink, chunk_size)
    batches = list(scanner.scan())
    labels = np.concatenate([b.labels for b in batches]) if batches else np.zeros(0)
    ids = np.concatenate([b.ids for b in batches]) if batches else np.zeros(0)
    offsets = np.concatenate([b.offsets for b in batches]) if batches else np.zeros(0)
    return sink, labels.tolist(), ids.tolist(), offsets.tolist(), batches


def test_pack_unpack_scalar_and_vector_labels() -> None:
    header, image = unpack(pack(3, b"img", id=7, id2=9))
    assert (header.flag, header.label, header.id, header.id2, image) == (0, 3.0, 7, 9, b"img")
    header, image = unpack(pack([1, 0, 1], b"img", id=2))
    assert header.flag == 3 and header.label == (1.0, 0.0, 1.0) and image == b"img"


def test_unpack_rejects_short_and_overlong_headers() -> None:
    with pytest.raises(DatasetError) as err:
        unpack(b"short")
    assert err.value.code == "REC_BAD_HEADER"
    with pytest.raises(DatasetError):
        unpack(struct.pack("<IfQQ", 1000, 0.0, 0, 0) + b"abc")


def test_frame_pads_to_four_bytes() -> None:
    framed = frame(b"abcde")
    assert framed[:4] == MAGIC_BYTES
    assert struct.unpack("<I", framed[4:8])[0] == 5
    assert len(framed) == 8 + 8 and framed[-3:] == b"\0\0\0"


def test_frame_splits_at_aligned_magic_and_reader_restores_it() -> None:
    payload = b"abcd" + MAGIC_BYTES + b"efgh" + b"x" + MAGIC_BYTES  # 2nd magic not aligned
    framed = frame(payload)
    first_lrec = struct.unpack("<I", framed[4:8])[0]
    assert first_lrec >> 29 == 1 and first_lrec & 0x1FFFFFFF == 4
    reader = RecordIOReader(io.BytesIO(framed), "x.rec")
    assert reader.read() == (0, payload)
    assert reader.read() is None


def test_frame_handles_payload_that_starts_with_magic() -> None:
    payload = MAGIC_BYTES + b"tail"
    assert RecordIOReader(io.BytesIO(frame(payload))).read() == (0, payload)


@pytest.mark.parametrize(
    "damage, code, offset",
    [
        (lambda d: d[:-3], "REC_TRUNCATED", 0),
        (lambda d: b"\0\0\0\0" + d[4:], "REC_BAD_MAGIC", 0),
        (lambda d: d[:4] + struct.pack("<I", (5 << 29) | 4) + d[8:], "REC_BAD_FLAG", 0),
        (lambda d: d[:4] + struct.pack("<I", (2 << 29) | 4) + d[8:], "REC_BAD_CONTINUATION", 0),
    ],
)
def test_reader_reports_damage_with_byte_offset(damage, code, offset) -> None:
    data = damage(frame(pack(1, jpeg())))
    with pytest.raises(DatasetError) as err:
        list(RecordIOReader(io.BytesIO(data), "x.rec"))
    assert err.value.code == code
    assert err.value.issue.location == f"x.rec#record 0 @byte {offset}"


def test_scanner_matches_reader_on_multi_part_records_at_every_chunk_size(tmp_path) -> None:
    images = [jpeg(8 + i, 8, (i, 2 * i, 3 * i)) for i in range(12)]
    records = [(i % 3, magic_payload(img) if i % 4 == 1 else img) for i, img in enumerate(images)]
    records.append(([1.0, 0.0, 1.0], magic_payload(images[0])))
    path = write_rec(str(tmp_path / "m.rec"), records)
    data = open(path, "rb").read()
    expected = [(off, unpack(rec)[0]) for off, rec in RecordIOReader(io.BytesIO(data))]
    for chunk in (64, 100, 256, 1000, 1 << 20):
        sink, labels, ids, offsets, batches = scan_all(data, chunk)
        assert sink.counts == {}, (chunk, sink.errors)
        assert offsets == [off for off, _ in expected], chunk
        assert ids == [h.id for _, h in expected]
        assert labels[:12] == [float(i % 3) for i in range(12)]
        vectors = {flag: vals.tolist() for b in batches for flag, (_, vals) in b.vectors.items()}
        assert vectors == {3: [[1.0, 0.0, 1.0]]}


def test_scanner_resynchronises_after_damage(tmp_path) -> None:
    path = write_rec(str(tmp_path / "d.rec"), [(i % 2, jpeg()) for i in range(6)])
    data = bytearray(open(path, "rb").read())
    third = [off for off, _ in RecordIOReader(io.BytesIO(bytes(data)))][2]
    data[third : third + 4] = b"XXXX"  # destroy the third record's magic number
    sink, labels, ids, offsets, _ = scan_all(bytes(data), 256)
    assert [e.code for e in sink.errors] == ["REC_BAD_MAGIC"]
    assert sink.errors[0].location == f"x.rec#record 2 @byte {third}"
    assert "skipped" in sink.errors[0].message
    assert ids == [0, 1, 3, 4, 5]  # the records after the damage are still read


def test_scanner_reports_missing_padding(tmp_path) -> None:
    good = frame(pack(0, jpeg() + b"x"))  # odd length: needs padding
    rec_len = struct.unpack("<I", good[4:8])[0]
    unpadded = good[: 8 + rec_len]
    data = unpadded + frame(pack(1, jpeg()))
    sink, *_ = scan_all(data)
    assert sink.errors[0].code == "REC_BAD_PADDING"
    assert sink.errors[0].location == "x.rec#record 0 @byte 0"


def test_scanner_warns_about_nonzero_padding() -> None:
    data = bytearray(frame(pack(0, jpeg() + b"x")))
    data[-1] = 0x55
    sink, labels, *_ = scan_all(bytes(data))
    assert sink.error_count == 0 and [w.code for w in sink.warnings] == ["REC_PADDING_NONZERO"]
    assert labels == [0.0]


def test_scanner_reports_truncation_and_short_header() -> None:
    data = frame(pack(0, jpeg())) + frame(b"tiny") + frame(pack(1, jpeg()))[:-10]
    sink, labels, *_ = scan_all(data)
    assert [e.code for e in sink.errors] == ["REC_BAD_HEADER", "REC_TRUNCATED"]
    assert sink.errors[1].location.startswith("x.rec#record 2 @byte ")
    assert labels == [0.0]


def test_scanner_accepts_unsplit_magic_with_a_warning() -> None:
    payload = pack(2, jpeg()) + b"\0" * ((-len(pack(2, jpeg()))) % 4) + MAGIC_BYTES + b"zzzz"
    unsplit = struct.pack("<II", MAGIC, len(payload)) + payload  # a writer that does not split
    sink, labels, *_ = scan_all(unsplit + frame(pack(3, jpeg())))
    assert sink.error_count == 0
    assert [w.code for w in sink.warnings] == ["REC_UNESCAPED_MAGIC"]
    assert labels == [2.0, 3.0]


def test_scanner_shards_partition_the_file(tmp_path) -> None:
    path = write_rec(str(tmp_path / "s.rec"), [(i, magic_payload(jpeg()) if i == 5 else jpeg()) for i in range(20)])
    data = open(path, "rb").read()
    read = lambda o, n: data[o : o + n]  # noqa: E731
    bounds = [0] + [find_record_start(read, len(data), len(data) * k // 4) for k in (1, 2, 3)] + [len(data)]
    ids = []
    for start, end in zip(bounds, bounds[1:]):
        scanner = RecordIOScanner(read, len(data), "s.rec", IssueSink(), 128)
        ids += [i for b in scanner.scan(start, end) for i in b.ids.tolist()]
    assert ids == list(range(20))


def test_parse_idx_reports_syntax_and_duplicates() -> None:
    sink = CollectingSink()
    entries = parse_idx(b"0\t0\n1\tabc\n0\t16\n\n2\t32\n", "x.idx", sink)
    assert [(e.key, e.offset, e.line) for e in entries] == [(0, 0, 1), (2, 32, 5)]
    assert [(i.code, i.location) for i in sink.errors] == [
        ("IDX_SYNTAX", "x.idx:line 2"),
        ("IDX_DUPLICATE_KEY", "x.idx:line 3"),
    ]


def test_indexed_random_access(tmp_path) -> None:
    path = write_rec(str(tmp_path / "r.rec"), [(i, jpeg()) for i in range(5)], ids=[10, 11, 12, 13, 14])
    with IndexedRecordIO(path, str(tmp_path / "r.idx")) as rec:
        assert rec.keys == [10, 11, 12, 13, 14]
        assert unpack(rec.read_idx(13))[0].label == 3.0


@pytest.mark.parametrize("chunk", [4096, 20000, 1 << 20])
def test_walk_and_scan_paths_agree_on_large_records(tmp_path, chunk) -> None:
    images = [noisy_jpeg(48, 48, seed) for seed in range(6)]
    records = [(i % 5, magic_payload(images[i % 6]) if i in (3, 9) else images[i % 6]) for i in range(30)]
    data = bytearray(open(write_rec(str(tmp_path / "l.rec"), records), "rb").read())
    offsets = [off for off, _ in RecordIOReader(io.BytesIO(bytes(data)))]
    data[offsets[20] : offsets[20] + 4] = b"\0\0\0\0"  # damage in the middle
    results = []
    for walk in (False, True):
        sink = CollectingSink()
        scanner = RecordIOScanner(lambda o, n: bytes(data[o : o + n]), len(data), "l.rec", sink, chunk)
        scanner.walk = walk
        batches = list(scanner.scan())
        ids = [i for b in batches for i in b.ids.tolist()]
        results.append((ids, [(e.code, e.location) for e in sink.errors]))
    assert results[0] == results[1]
    assert results[0][0] == [i for i in range(30) if i != 20]
    assert results[0][1] == [("REC_BAD_MAGIC", f"l.rec#record 20 @byte {offsets[20]}")]
