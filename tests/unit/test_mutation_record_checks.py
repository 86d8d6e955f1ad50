"""record_checks: the checks over a whole .rec (its .idx, the record ids) with their exact
findings and the 50 written out per code, the ranges a scan reports when it cannot read on, and
the documented types of :class:`Records`. The whole-file checks take :class:`Records` built
here, as a merge of shards hands them over.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``RecordTable.arrays``: ``copy=None``/``True``/left out in ``astype`` (speed only);
  ``self.parts = None`` after the arrays are taken (a table is read once per scan).
- ``scan``: ``local = None``, ``fd = None``, ``_images(rec, None, ...)`` (the file and its
  images are then read through the store, which reads the same bytes: speed only); the chunk
  reader left out or ``read_chunk=None`` (chunks are then read with ``read_at``: speed only);
  ``if len(batch) or True`` and ``else 1`` in the progress call (a scan never yields an empty
  batch); ``context.unreadable(err, None)`` when the file cannot be opened (``os.open`` names
  the file in its error, and the store reports that path).
- ``_read_idx``: ``fast = None`` (the slow parser gives the same entries for any .idx the fast
  one takes: speed only); a dtype of None or left out in ``np.array``/``np.arange`` (int64
  either way here; an empty .idx returns before its arrays are used); ``len(keys) + 2`` in the
  line numbers' ``arange`` (one more number, never indexed); ``kind="STABLE"`` (numpy reads
  the kind case-insensitively).
- ``_duplicate_ids``: ``ids == ids[1]`` and ``int(ids[1])`` when every id is the same (the
  same test and value); ``kind="STABLE"`` (as above).
"""

from __future__ import annotations

import errno
import os
from typing import List, Sequence, Tuple

import numpy as np

import image_dataset.record_checks as record_checks
from image_dataset.channel_stats import ChannelStats
from image_dataset.context import Context, ValidationOptions
from image_dataset.decode_queue import DecodeQueue
from image_dataset.issues import CollectingSink, Issue
from image_dataset.layout import RECORDIO, Channel
from image_dataset.record_checks import RecordChecks, Records
from image_dataset.recordio import RecordIOReader
from image_dataset.store import LocalStore
from image_dataset.validate import Validator
from tests.builders import jpeg, write_file, write_rec

DTYPES = ["int64", "int64", "uint64"]


def _checks(root: str) -> RecordChecks:
    context = Context(LocalStore(root), ValidationOptions(workers=1, decode_images=False))
    context.issues = CollectingSink(limit_per_code=1000)  # every issue written out, not only 50
    context.sink = context.issues
    return RecordChecks(context, DecodeQueue(context))


def _records(ids: Sequence[int], size: int = 36) -> Records:
    n = len(ids)
    return Records(np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64) * size, np.array(ids, np.uint64))


def _issues(checks: RecordChecks) -> List[Issue]:
    sink = checks.context.issues
    return sink.errors + sink.warnings


def _at(record: int, size: int = 36) -> str:
    return f"d.rec#record {record} @byte {record * size}"


# -- ids --------------------------------------------------------------------------------------


def test_ids_all_the_same_are_reported_once_from_two_records(tmp_path) -> None:
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([7]))
    assert _issues(checks) == []
    checks.check_file("d.rec", _records([7, 7]))
    assert _issues(checks) == [Issue("IDS_NOT_SET", "all 2 records have id 7", "d.rec")]


def test_a_duplicate_id_names_the_record_that_had_it_before(tmp_path) -> None:
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([4, 5, 4, 6, 4]))
    assert _issues(checks) == [
        Issue("DUPLICATE_ID", "id 4 is also the id of record 0", _at(2)),
        Issue("DUPLICATE_ID", "id 4 is also the id of record 2", _at(4)),
    ]


def test_duplicate_ids_are_reported_in_file_order_among_many(tmp_path) -> None:
    ids = [i % 3 for i in range(40)]  # enough for an unstable sort to reorder equal ids
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records(ids))
    expected = []
    for again in sorted(range(3, 40), key=lambda r: (ids[r], r)):
        expected.append(Issue("DUPLICATE_ID", f"id {ids[again]} is also the id of record {again - 3}", _at(again)))
    assert _issues(checks) == expected


def test_fifty_duplicate_ids_are_written_out_and_the_rest_only_counted(tmp_path) -> None:
    for count in (50, 51, 52):
        checks = _checks(str(tmp_path))
        checks.check_file("d.rec", _records([1000] + list(range(count)) + list(range(count))))
        issues = _issues(checks)
        written = [i for i in issues if i.message]
        assert len(written) == 50 and written[0] == Issue(
            "DUPLICATE_ID", "id 0 is also the id of record 1", _at(count + 1)
        )
        assert issues[50:] == [Issue("DUPLICATE_ID", "", "d.rec")] * (count - 50)


# -- the .idx ---------------------------------------------------------------------------------


def test_an_empty_idx_leaves_every_record_unindexed(tmp_path) -> None:
    write_file(os.path.join(tmp_path, "d.idx"), "")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0, 1, 2]))
    assert _issues(checks) == [Issue("IDX_MISSING_RECORD", "3 records have no .idx entry", "d.rec")]


def test_an_idx_key_that_is_not_the_records_id(tmp_path) -> None:
    # record 1 (byte 36) has no entry; record 2's key is not its id; record 3's is not either
    write_file(os.path.join(tmp_path, "d.idx"), "0\t0\n9\t72\n8\t108\n")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0, 1, 2, 3]))
    assert _issues(checks) == [
        Issue("IDX_KEY_MISMATCH", "the .idx key is 9, the record's header id 2", _at(2)),
        Issue("IDX_MISSING_RECORD", "1 records have no .idx entry", "d.rec"),
    ]


def test_an_idx_key_is_compared_with_the_id_exactly(tmp_path) -> None:
    big = 2**60  # int64 and uint64 compared as float64 would find them equal
    write_file(os.path.join(tmp_path, "d.idx"), f"{big + 1}\t0\n")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([big]))
    assert _issues(checks) == [
        Issue("IDX_KEY_MISMATCH", f"the .idx key is {big + 1}, the record's header id {big}", _at(0))
    ]


def test_fifty_bad_idx_offsets_are_written_out(tmp_path) -> None:
    for count, written in ((50, 50), (51, 50)):
        write_file(
            os.path.join(tmp_path, "d.idx"), "0\t0\n" + "".join(f"{k}\t{k * 36 + 4}\n" for k in range(1, count + 1))
        )
        checks = _checks(str(tmp_path))
        checks.check_file("d.rec", _records([0]))
        issues = _issues(checks)
        assert len(issues) == written
        assert issues[0] == Issue("IDX_BAD_OFFSET", "key 1 points at byte 40, where no record starts", "d.idx:line 2")


def test_idx_lines_with_the_same_offset_keep_their_order(tmp_path) -> None:
    lines = [f"{k}\t{(k % 2) * 36}\n" for k in range(40)]  # keys 0, 2, 4... at byte 0; 1, 3... at 36
    write_file(os.path.join(tmp_path, "d.idx"), "".join(lines))
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0, 1]))
    expected = [
        Issue("IDX_BAD_OFFSET", f"key {k} points at byte {(k % 2) * 36}, where no record starts", f"d.idx:line {k + 1}")
        for k in sorted(range(2, 40), key=lambda k: (k % 2, k))
    ]
    assert _issues(checks) == expected


def test_an_idx_that_cannot_be_read_is_reported_at_its_path(tmp_path) -> None:
    os.mkdir(os.path.join(tmp_path, "d.idx"))
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0, 1]))
    issues = _issues(checks)
    assert [(i.code, i.location) for i in issues] == [("FILE_UNREADABLE", "d.idx")]


# -- scans ------------------------------------------------------------------------------------


def test_a_scan_that_cannot_read_on_stops_where_its_range_ends(tmp_path) -> None:
    os.mkdir(os.path.join(tmp_path, "d.rec"))  # opens, but reading fails
    stats = ChannelStats(Channel("train", RECORDIO, "", ("d.rec",)))
    for end, stopped in ((None, 100), (60, 60)):
        checks = _checks(str(tmp_path))
        scan = checks.scan("d.rec", 100, stats, 0, end)
        assert scan.failed and scan.stopped_at == stopped and scan.seen == 0
        assert [(i.code, i.location) for i in _issues(checks)] == [("FILE_UNREADABLE", "d.rec")]
        assert [str(c.dtype) for c in scan.records] == DTYPES and [len(c) for c in scan.records] == [0, 0, 0]


def test_a_part_without_good_records_gives_empty_records_of_the_documented_types(tmp_path) -> None:
    write_file(os.path.join(tmp_path, "d.rec"), b"\x00garbage" * 8)
    validator = Validator(LocalStore(str(tmp_path)), ValidationOptions(workers=1, decode_images=False))
    channel = Channel("train", RECORDIO, "", ("d.rec",))
    partial, records = validator.check_records(channel, "d.rec", 0, None)
    assert [str(c.dtype) for c in records] == DTYPES and [len(c) for c in records] == [0, 0, 0]
    assert partial["count"] == 0 and partial["stopped_at"] == 64


def test_a_file_that_cannot_be_opened_gives_an_empty_failed_scan(tmp_path) -> None:
    stats = ChannelStats(Channel("train", RECORDIO, "", ("d.rec",)))
    checks = _checks(str(tmp_path))
    scan = checks.scan("d.rec", 100, stats, 0, 60)
    assert tuple(scan[1:]) == (0, 60, 0, 0, True)
    assert [str(c.dtype) for c in scan.records] == DTYPES and [len(c) for c in scan.records] == [0, 0, 0]
    assert [(i.code, i.location) for i in _issues(checks)] == [("FILE_MISSING", "d.rec")]


def _three_records(tmp_path) -> Tuple[int, List[int]]:
    path = write_rec(os.path.join(tmp_path, "d.rec"), [(0, jpeg()), (-1, jpeg()), (1, b"not an image")], with_idx=False)
    with open(path, "rb") as f:
        offsets = [off for off, _ in RecordIOReader(f)]
    return os.path.getsize(path), offsets


def test_a_scan_counts_the_records_whose_label_and_image_are_good(tmp_path) -> None:
    size, offsets = _three_records(tmp_path)
    checks = _checks(str(tmp_path))
    told: List[Tuple[str, int, int]] = []
    checks.context.progress = lambda what, done, total: told.append((what, done, total))
    stats = ChannelStats(Channel("train", RECORDIO, "", ("d.rec",)))
    stats.samples = 5
    scan = checks.scan("d.rec", size, stats)
    assert [i.code for i in _issues(checks)] == ["LABEL_INVALID", "IMG_UNKNOWN_FORMAT"]
    assert stats.samples == 6 and scan.seen == 3 and scan.failed is False and scan.stopped_at == size
    assert told == [("d.rec", offsets[2], size)]


def test_a_scan_of_part_of_a_file_stops_at_its_end(tmp_path) -> None:
    size, offsets = _three_records(tmp_path)
    checks = _checks(str(tmp_path))
    stats = ChannelStats(Channel("train", RECORDIO, "", ("d.rec",)))
    scan = checks.scan("d.rec", size, stats, 0, offsets[1])
    assert scan.seen == 1 and scan.records.offsets.tolist() == [0] and stats.samples == 1


def test_records_decoded_in_many_jobs_all_count(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(record_checks, "DECODE_BATCH", 1)  # one job per image: results come back while queuing
    path = write_rec(os.path.join(tmp_path, "d.rec"), [(0, jpeg(8 + n, 8)) for n in range(6)], with_idx=False)
    context = Context(LocalStore(str(tmp_path)), ValidationOptions(workers=1))
    decodes = DecodeQueue(context)
    stats = ChannelStats(Channel("train", RECORDIO, "", ("d.rec",)))
    with decodes.running():
        RecordChecks(context, decodes).scan("d.rec", os.path.getsize(path), stats)
    assert context.issues.errors == [] and stats.images_checked == 6 and stats.samples == 6
    assert stats.min_size == (8, 8) and stats.max_size == (13, 8)


def test_an_idx_read_error_without_a_file_name_is_reported_at_the_idx(tmp_path, monkeypatch) -> None:
    write_file(os.path.join(tmp_path, "d.idx"), "0\t0\n")

    def read(self: LocalStore, path: str) -> bytes:
        raise OSError(errno.EIO, "Input/output error")  # as a remote store raises it: no file name

    monkeypatch.setattr(LocalStore, "read", read)
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0]))
    assert _issues(checks) == [Issue("FILE_UNREADABLE", "cannot read the file: Input/output error", "d.idx")]
