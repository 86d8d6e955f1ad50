"""The RecordIO scanner's large-record path (``_walk``): records much larger than 4 KiB make the
scanner follow lengths instead of scanning every word. Its checks (the magic number, the flag and
the length of each header) must hold on that path too, so these records stay large enough for the
scanner to stay on it, and each test asserts that it did."""

from __future__ import annotations

import random
import struct
from typing import List, Tuple

import pytest

from image_dataset.issues import CollectingSink
from image_dataset.recordio import MAGIC, frame, pack
from image_dataset.recordio_scan import RecordIOScanner

RECORD_BYTES = 12_000  # a chunk of 64 KiB holds ~5 records: 5 * 4096 < 65536, so the scanner walks
CHUNK = 64 * 1024


def payload(seed: int) -> bytes:
    """Random bytes without an aligned magic number (frame() would split the record at one)."""
    rng = random.Random(seed)
    data = bytearray(rng.getrandbits(8) for _ in range(RECORD_BYTES))
    for at in range(0, len(data) - 3, 4):
        if struct.unpack_from("<I", data, at)[0] == MAGIC:
            data[at] ^= 1
    return bytes(data)


def large_rec(count: int) -> Tuple[bytearray, List[int]]:
    """A .rec of ``count`` large single-part records (label i % 7, id i) and their offsets."""
    data, offsets = bytearray(), []
    for i in range(count):
        offsets.append(len(data))
        data += frame(pack(i % 7, payload(i), id=i))
    return data, offsets


def scan(data: bytearray) -> Tuple[List[int], List[float], List[Tuple[str, str]], int]:
    """(ids, labels, (code, location) of errors, records found on the walk path)."""
    sink = CollectingSink()
    scanner = RecordIOScanner(lambda o, n: bytes(data[o : o + n]), len(data), "big.rec", sink, CHUNK)
    walked = [0]
    original = scanner._walk

    def counting_walk(*args):  # type: ignore[no-untyped-def]
        result = original(*args)
        if result is not None:
            walked[0] += len(result[0])
        return result

    scanner._walk = counting_walk  # type: ignore[method-assign]
    batches = list(scanner.scan())
    ids = [i for b in batches for i in b.ids.tolist()]
    labels = [float(x) for b in batches for x in b.labels.tolist()]
    return ids, labels, [(e.code, e.location) for e in sink.errors], walked[0]


def test_clean_large_records_are_read_on_the_walk_path() -> None:
    data, _ = large_rec(24)
    ids, labels, errors, walked = scan(data)
    assert errors == []
    assert ids == list(range(24)) and labels == [float(i % 7) for i in range(24)]
    assert walked >= 12  # most records were found by following lengths, not by scanning


@pytest.mark.parametrize("damaged", [9, 13, 17])
def test_walk_path_refuses_a_record_whose_magic_number_is_wrong(damaged: int) -> None:
    data, offsets = large_rec(24)
    data[offsets[damaged] : offsets[damaged] + 4] = b"\0\0\0\0"  # the length word stays valid
    ids, _, errors, walked = scan(data)
    assert walked >= 8, "the records before the damage must have been walked"
    assert errors == [("REC_BAD_MAGIC", f"big.rec#record {damaged} @byte {offsets[damaged]}")]
    assert ids == [i for i in range(24) if i != damaged]


def test_walk_path_does_not_take_a_multi_part_flag_for_a_plain_record() -> None:
    data, offsets = large_rec(24)
    at = offsets[11] + 4
    (lrec,) = struct.unpack_from("<I", data, at)
    struct.pack_into("<I", data, at, lrec | (2 << 29))  # flag 2: a middle part, where a record must start
    ids, _, errors, walked = scan(data)
    assert walked >= 8
    assert [code for code, _ in errors] and all(code.startswith("REC_") for code, _ in errors)
    assert errors[0][1].startswith("big.rec#record 11 @byte")
    assert 11 not in ids and ids[:11] == list(range(11))


def test_walk_path_refuses_a_length_too_short_for_the_image_header() -> None:
    data, offsets = large_rec(24)
    at = offsets[7] + 4
    struct.pack_into("<I", data, at, 8)  # shorter than the 24-byte image-record header
    ids, _, errors, walked = scan(data)
    assert walked >= 5
    assert errors and errors[0][1].startswith("big.rec#record 7 @byte")
    assert ids[:7] == list(range(7)) and 7 not in ids
