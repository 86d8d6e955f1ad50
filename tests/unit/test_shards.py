"""Validation in shards (plan, shards, merge) gives the report one process gives, whatever
the shard size: the same counts, the same problems at the same locations."""

from __future__ import annotations

import os
import struct
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

from image_dataset.recordio import MAGIC, frame, pack
from image_dataset.shards import byte_ranges, plan, records_from_bytes, records_to_bytes, run_shard, validate_in_shards
from image_dataset.store import LocalStore
from image_dataset.validate import Records, ValidationOptions, Validator
from tests.builders import folder_dataset, jpeg, lst_dataset, noisy_jpeg, write_file, write_rec


def comparable(report: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(report)
    for key in ("errors", "warnings"):
        out[key] = sorted((i["code"], i["location"], i["message"]) for i in report[key])
    return out


def both(root: str, shard_bytes: int, shard_images: int = 5000, **options: Any) -> tuple:
    one = Validator(LocalStore(root), ValidationOptions(workers=1, **options), display_name="ds").run()
    sharded = validate_in_shards(
        LocalStore(root), ValidationOptions(workers=1, **options), shard_bytes, shard_images, display_name="ds"
    )
    return comparable(one), comparable(sharded)


def unsplit(label: float, image: bytes, rec_id: int) -> bytes:
    """A record whose payload holds an aligned magic number followed by a length word that
    looks like a record start (a writer that does not split), so a shard cut can land in it."""
    body = pack(label, image, id=rec_id)
    body += b"\0" * (-len(body) % 4) + struct.pack("<II", MAGIC, 8) + b"fakefake"
    return struct.pack("<II", MAGIC, len(body)) + body  # frame() would split it, as MXNet's writer does


def dirty_padding(label: float, rec_id: int) -> bytes:
    data = bytearray(frame(pack(label, jpeg() + b"x", id=rec_id)))
    data[-1] = 0x55
    return bytes(data)


def broken_rec(path: str) -> None:
    """A .rec with most kinds of trouble spread over the file, and a .idx with bad lines."""
    parts: List[bytes] = []
    for i in range(80):
        if i in (9, 31, 57):
            parts.append(unsplit(i % 3, noisy_jpeg(24, 24, i), i))
        elif i in (14, 44, 70):
            parts.append(dirty_padding(i % 3, i))
        elif i == 20:
            parts.append(frame(pack(-1, jpeg(), id=i)))  # LABEL_INVALID
        elif i == 26:
            parts.append(frame(pack(1, jpeg()[:-40], id=i)))  # truncated image
        elif i == 50:
            parts.append(frame(pack(2, jpeg(), id=3)))  # DUPLICATE_ID of record 3
        elif i == 38:
            parts.append(b"\x00garbage" * 5)  # REC_BAD_MAGIC, then a resync
        else:
            parts.append(frame(pack(i % 3, noisy_jpeg(16 + i % 7, 20, i), id=i)))
    data = b"".join(parts) + frame(pack(1, jpeg(), id=999))[:-9]  # REC_TRUNCATED
    write_file(path, data)
    offsets = _offsets(data)
    lines = [f"{k}\t{off}\n" for k, off in enumerate(offsets[:-3])]
    lines[5] = f"5\t{offsets[5] + 4}\n"  # IDX_BAD_OFFSET
    write_file(path[: -len(".rec")] + ".idx", "".join(lines))


def _offsets(data: bytes) -> List[int]:
    """Offsets of the records a scan finds (from a one-process scan)."""
    from image_dataset.issues import CollectingSink
    from image_dataset.recordio_scan import RecordIOScanner

    scanner = RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x", CollectingSink())
    return [int(o) for b in scanner.scan() for o in b.offsets]


@pytest.mark.parametrize("shard_bytes", [300, 1024, 4099, 1 << 30])
def test_valid_recordio_reports_match(tmp_path, shard_bytes) -> None:
    for channel, n in (("train", 60), ("validation", 12)):
        write_rec(str(tmp_path / channel / "d.rec"), [(i % 3, noisy_jpeg(16 + i % 9, 24, i)) for i in range(n)])
    one, sharded = both(str(tmp_path), shard_bytes)
    assert one["valid"] and one == sharded


@pytest.mark.parametrize("shard_bytes", [256, 700, 1500, 5003, 1 << 30])
def test_broken_recordio_reports_match(tmp_path, shard_bytes) -> None:
    broken_rec(str(tmp_path / "train" / "d.rec"))
    write_rec(str(tmp_path / "validation" / "v.rec"), [(i % 3, jpeg()) for i in range(6)])
    one, sharded = both(str(tmp_path), shard_bytes)
    found = set(one["counts"])
    assert {"REC_UNESCAPED_MAGIC", "REC_PADDING_NONZERO", "LABEL_INVALID", "IMG_TRUNCATED", "DUPLICATE_ID"} <= found
    assert {"REC_BAD_MAGIC", "REC_TRUNCATED", "IDX_BAD_OFFSET", "IDX_MISSING_RECORD"} <= found
    assert one == sharded


def test_a_cut_inside_a_record_is_scanned_again_from_the_record_end(tmp_path) -> None:
    path = str(tmp_path / "train" / "d.rec")
    write_file(path, b"".join(unsplit(i % 2, jpeg(), i) for i in range(12)))
    store = LocalStore(str(tmp_path))
    size = os.path.getsize(path)
    ranges = byte_ranges(store, "train/d.rec", size, 650)
    real = set(_offsets(open(path, "rb").read()))
    assert any(start not in real for start, _ in ranges)  # the cuts do land inside records
    one, sharded = both(str(tmp_path), 650, num_classes=2)
    assert one == sharded and sharded["channels"]["train"]["samples"] == 12


def test_list_and_folder_reports_match_with_image_shards(tmp_path) -> None:
    rows = [(i, [float(i % 2)], f"img/{i}.jpg") for i in range(23)]
    root = lst_dataset(str(tmp_path / "lst"), rows)
    os.remove(os.path.join(root, "train", "img", "4.jpg"))
    write_file(os.path.join(root, "train", "img", "9.jpg"), b"\xff\xd8\xffnot really")
    write_file(os.path.join(root, "train", "img", "17.jpg"), jpeg(3000, 3000))
    one, sharded = both(root, 1 << 30, shard_images=4, image_shape=(3, 2000, 2000))
    assert {"FILE_MISSING", "IMG_CORRUPT", "IMG_TOO_SMALL"} <= set(one["counts"])
    assert one == sharded
    folders = folder_dataset(str(tmp_path / "folders"), {"cat": 7, "dog": 5})
    one, sharded = both(folders, 1 << 30, shard_images=3)
    assert one["valid"] and one == sharded


def test_label_shapes_that_differ_between_shards_are_reported(tmp_path) -> None:
    path = str(tmp_path / "train" / "d.rec")
    write_rec(path, [(0.0, jpeg())] * 10 + [([1.0, 0.0, 1.0], jpeg())] * 10, ids=list(range(20)))
    sharded = validate_in_shards(LocalStore(str(tmp_path)), ValidationOptions(workers=1), 600)
    assert not sharded["valid"] and "LABEL_SHAPE" in sharded["counts"]


def test_shard_results_travel_as_json_and_npz(tmp_path) -> None:
    write_rec(str(tmp_path / "train" / "d.rec"), [(i % 2, jpeg()) for i in range(10)])
    store = LocalStore(str(tmp_path))
    planned = plan(store, ValidationOptions(workers=1), 500)
    assert len(planned.shards) > 2 and all(s["kind"] == "records" for s in planned.shards)
    result = run_shard(store, ValidationOptions(workers=1), planned.shards[1])
    assert result.records is not None
    again: Optional[Records] = records_from_bytes(records_to_bytes(result.records))
    assert again is not None and all(np.array_equal(a, b) for a, b in zip(again, result.records))
    assert again.ids.dtype == np.uint64 and result.partial["count"] == len(again.ids)


@pytest.mark.parametrize("shard_bytes", [300, 1024, 4099, 1 << 30])
def test_a_damaged_length_word_hides_no_later_record(tmp_path, shard_bytes) -> None:
    """A record announcing far more bytes than the file has, in the middle of the file: it was
    REC_TRUNCATED and every later record was lost (here: a class, and a false
    CLASS_NOT_IN_TRAIN); the scan now goes on at the next record start, in shards too."""
    records = [frame(pack(i % 2, noisy_jpeg(16, 20, i), id=i)) for i in range(12)]
    damaged = bytearray(records[3])
    struct.pack_into("<I", damaged, 4, 0x1FFFFFF0)
    records[3] = bytes(damaged)
    data = b"".join(records)
    write_file(str(tmp_path / "train" / "d.rec"), data)
    write_rec(str(tmp_path / "validation" / "v.rec"), [(i % 2, jpeg()) for i in range(4)])
    one, sharded = both(str(tmp_path), shard_bytes)
    at, after = sum(map(len, records[:3])), sum(map(len, records[:4]))
    assert one["errors"] == [
        (
            "REC_TRUNCATED",
            f"train/d.rec#record 3 @byte {at}",
            f"record announces {0x1FFFFFF0} bytes, the file ends after {len(data) - at - 8}; "
            f"skipped {after - at} bytes to the next record at byte {after}",
        )
    ]
    assert one["channels"]["train"]["samples"] == 11 and one == sharded
