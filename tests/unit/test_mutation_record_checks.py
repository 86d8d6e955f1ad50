"""record_checks: the checks over a whole .rec (its .idx, the record ids) with their exact
findings and the 50 written out per code, the ranges a scan reports when it cannot read on, and
the documented types of :class:`Records`. The whole-file checks take :class:`Records` built
here, as a merge of shards hands them over: a key of -1 is the largest id, key mismatches past
50 are only counted, the offsets of a .rec gone since its scan are placed among its records.
Also a channel's files (bytes summed over them, a file that cannot be read reported once at its
path) and the images inside records (no image bytes, a signature too short or unknown, decodes
through a remote store and of multi-part records, counted in the channel's stats).

Survivors judged EQUIVALENT (no test can tell them apart):

- ``RecordTable.arrays``: ``copy=None``/``True``/left out in ``astype`` (speed only);
  ``self.parts = None`` after the arrays are taken (a table is read once per scan, and its
  parts are dropped either way; only an ``add`` after ``arrays``, which no code does, differs).
- ``scan``: ``local = None``, ``fd = None``, ``_images(rec, None, ...)`` (the file and its
  images are then read through the store, which reads the same bytes: speed only); the chunk
  reader left out or ``read_chunk=None`` (chunks are then read with ``read_at``: speed only);
  ``if len(batch) or True`` and ``else 1`` in the progress call (a scan never yields an empty
  batch); ``context.unreadable(err, None)`` when the file cannot be opened (``os.open`` names
  the file in its error, and the store reports that path).
- ``_read_idx``: ``fast = None`` (the slow parser gives the same entries for any .idx the fast
  one takes: speed only); a dtype of None or left out in ``np.array``/``np.arange`` for the
  offsets and line numbers (int64 either way here; an empty .idx returns before its arrays are
  used); ``len(keys) + 2`` in the line numbers' ``arange`` (one more number, never indexed);
  ``kind="STABLE"`` (numpy reads the kind case-insensitively). (The keys' dtype mutants of the
  int64 keys are obsolete: the keys are now ``e.key & UINT64_MAX`` as uint64, whose dtype and
  mask a key of -1 tests.)
- ``_duplicate_ids``: ``ids == ids[1]`` and ``int(ids[1])`` when every id is the same (the
  same test and value); ``kind="STABLE"`` (as above).
- ``_images``: ``image_offsets < 1``/``<= 0`` in ``known``, ``>= 1``/``> 0`` in the ``elif`` and
  in the rows queued for range decodes (a contiguous image starts after the 8-byte frame and
  the 24-byte header, so its offset is never 0; a multi-part image's is -1); ``min(17, ...)``
  in the head read, ``check_image(..., None)`` and ``result.code or "XXIMG_CORRUPTXX"``/
  ``"img_corrupt"`` (a row gets there only when its first 4 bytes are no JPEG/PNG signature —
  the scanner reads them whenever the image has 4 bytes — or the image is shorter than 4 bytes:
  ``check_image`` then only sniffs ``data[:16]``, shows ``data[:8]`` and fails to open 3 bytes
  before the pixel cap, so it always returns a code); ``check_image(None | 1, ...)`` (the token
  is only echoed in the result, never read here); ``local or "XXXX"`` (the job's path is read
  only by ``check_ranges``, queued only when ``local`` is set).

The mutmut 3.8.1 run after the uint64 keys, IDX_EMPTY and the per-record IDX_KEY_MISMATCH left
these same survivors again, besides those the tests under ".idx, continued" kill (the messages
past 50 key mismatches, what a bad offset is inside a record when the .rec is gone) and two
obsolete ones (the int64 keys' dtype, see ``_read_idx``).
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
from tests.builders import jpeg, magic_payload, write_file, write_rec

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


def test_an_idx_without_entries_is_an_error(tmp_path) -> None:
    """MXNet's ImageRecordIter with path_imgidx crashes (segmentation fault) on it."""
    message = "no entry for any of the 3 records: delete the .idx or rebuild it"
    for text in ("", "\n\n"):
        write_file(os.path.join(tmp_path, "d.idx"), text)
        checks = _checks(str(tmp_path))
        checks.check_file("d.rec", _records([0, 1, 2]))
        assert [i for i in _issues(checks) if i.code != "IDX_BLANK_LINE"] == [Issue("IDX_EMPTY", message, "d.idx")]


def test_blank_lines_in_an_idx_are_a_warning_at_the_first(tmp_path) -> None:
    """mxnet.recordio.MXIndexedRecordIO fails on them (int('')); ImageRecordIter skips them."""
    write_file(os.path.join(tmp_path, "d.idx"), "0\t0\n\n1\t36\n  \n")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0, 1]))
    assert _issues(checks) == [Issue("IDX_BLANK_LINE", "2 blank line(s), from line 2", "d.idx:line 2")]


def test_an_idx_key_that_is_not_the_records_id(tmp_path) -> None:
    # record 1 (byte 36) has no entry; record 2's key is not its id; record 3's is not either
    write_file(os.path.join(tmp_path, "d.idx"), "0\t0\n9\t72\n8\t108\n")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0, 1, 2, 3]))
    assert _issues(checks) == [
        Issue("IDX_KEY_MISMATCH", "the .idx key is 9, the record's header id 2", _at(2)),
        Issue("IDX_KEY_MISMATCH", "the .idx key is 8, the record's header id 3", _at(3)),
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


def test_fifty_bad_idx_offsets_are_written_out_and_the_rest_counted(tmp_path) -> None:
    write_file(os.path.join(tmp_path, "d.rec"), "x" * 36 * 60)
    for count, written in ((50, 50), (51, 50)):
        write_file(
            os.path.join(tmp_path, "d.idx"), "0\t0\n" + "".join(f"{k}\t{k * 36 + 4}\n" for k in range(1, count + 1))
        )
        checks = _checks(str(tmp_path))
        checks.check_file("d.rec", _records([0]))
        issues = _issues(checks)
        assert len([i for i in issues if i.message]) == written and len(issues) == count
        assert checks.context.issues.counts == {"IDX_BAD_OFFSET": count}
        assert issues[0] == Issue(
            "IDX_BAD_OFFSET",
            "key 1 points at byte 40, where no record starts (40 bytes after the start of record 0)",
            "d.idx:line 2",
        )


def test_a_bad_idx_offset_says_what_is_at_the_byte(tmp_path) -> None:
    write_file(os.path.join(tmp_path, "d.rec"), "x" * 108)
    write_file(os.path.join(tmp_path, "d.idx"), "0\t0\n1\t36\n5\t0\n6\t50\n7\t108\n8\t9999\n")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", Records(np.array([0, 1]), np.array([0, 72]), np.array([0, 1], np.uint64)))

    def after(inside: int) -> str:
        return f"where no record starts ({inside} bytes after the start of record 0)"

    assert [(i.code, i.message, i.location) for i in _issues(checks)] == [
        ("IDX_BAD_OFFSET", "key 5 points at byte 0, record 0, which key 0 indexes already", "d.idx:line 3"),
        ("IDX_BAD_OFFSET", f"key 1 points at byte 36, {after(36)}", "d.idx:line 2"),
        ("IDX_BAD_OFFSET", f"key 6 points at byte 50, {after(50)}", "d.idx:line 4"),
        ("IDX_BAD_OFFSET", "key 7 points at byte 108, past the end of the .rec (108 bytes)", "d.idx:line 5"),
        ("IDX_BAD_OFFSET", "key 8 points at byte 9999, past the end of the .rec (108 bytes)", "d.idx:line 6"),
        ("IDX_MISSING_RECORD", "1 records have no .idx entry", "d.rec"),
    ]


def test_idx_key_mismatches_are_each_reported_and_counted(tmp_path) -> None:
    write_file(os.path.join(tmp_path, "d.idx"), "".join(f"{k + 100}\t{k * 36}\n" for k in range(60)))
    checks = _checks(str(tmp_path))
    checks.context.issues.limit_per_code = 50
    checks.check_file("d.rec", _records(list(range(60))))
    issues = _issues(checks)
    assert checks.context.issues.counts == {"IDX_KEY_MISMATCH": 60}
    assert issues == [
        Issue("IDX_KEY_MISMATCH", f"the .idx key is {k + 100}, the record's header id {k}", _at(k)) for k in range(50)
    ]


def test_idx_lines_with_the_same_offset_keep_their_order(tmp_path) -> None:
    lines = [f"{k}\t{(k % 2) * 36}\n" for k in range(40)]  # keys 0, 2, 4... at byte 0; 1, 3... at 36
    write_file(os.path.join(tmp_path, "d.idx"), "".join(lines))
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([0, 1]))
    expected = [
        Issue(
            "IDX_BAD_OFFSET",
            f"key {k} points at byte {(k % 2) * 36}, record {k % 2}, which key {k % 2} indexes already",
            f"d.idx:line {k + 1}",
        )
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


# -- the channel's files ----------------------------------------------------------------------


def _channel(*files: str) -> Tuple[Channel, ChannelStats]:
    channel = Channel("train", RECORDIO, "", tuple(files))
    return channel, ChannelStats(channel)


def test_the_bytes_of_a_channel_are_summed_over_its_files(tmp_path) -> None:
    first = write_rec(os.path.join(tmp_path, "a.rec"), [(0, jpeg())], with_idx=False)
    second = write_rec(os.path.join(tmp_path, "b.rec"), [(1, jpeg(16, 16)), (0, jpeg())], with_idx=False)
    write_file(os.path.join(tmp_path, "c.rec"), b"")
    channel, stats = _channel("a.rec", "b.rec", "c.rec")
    checks = _checks(str(tmp_path))
    checks.check_channel(channel, stats)
    assert stats.bytes == os.path.getsize(first) + os.path.getsize(second) and stats.samples == 3
    assert _issues(checks) == [Issue("REC_EMPTY_FILE", "the file is empty", "c.rec")]


def test_a_missing_file_of_a_channel_is_reported_once(tmp_path) -> None:
    path = write_rec(os.path.join(tmp_path, "b.rec"), [(0, jpeg())], with_idx=False)
    channel, stats = _channel("a.rec", "b.rec")
    checks = _checks(str(tmp_path))
    checks.check_channel(channel, stats)
    assert [(i.code, i.location) for i in _issues(checks)] == [("FILE_MISSING", "a.rec")]
    assert stats.bytes == os.path.getsize(path) and stats.samples == 1


def test_a_file_whose_size_cannot_be_read_is_reported_at_its_path(tmp_path, monkeypatch) -> None:
    write_rec(os.path.join(tmp_path, "d.rec"), [(0, jpeg())], with_idx=False)

    def size(self: LocalStore, path: str) -> int:
        raise OSError(errno.EIO, "Input/output error")  # as a remote store raises it: no file name

    monkeypatch.setattr(LocalStore, "size", size)
    channel, stats = _channel("d.rec")
    checks = _checks(str(tmp_path))
    checks.check_channel(channel, stats)
    assert _issues(checks) == [Issue("FILE_UNREADABLE", "cannot read the file: Input/output error", "d.rec")]
    assert stats.bytes == 0 and stats.samples == 0


# -- images inside records --------------------------------------------------------------------


class RemoteStore(LocalStore):
    """A store without local paths: records and images are read through ``read_at``."""

    def local_path(self, path: str) -> None:  # type: ignore[override]
        return None


def _decoding(store: LocalStore) -> Tuple[RecordChecks, DecodeQueue]:
    context = Context(store, ValidationOptions(workers=1))
    context.issues = CollectingSink(limit_per_code=1000)
    context.sink = context.issues
    decodes = DecodeQueue(context)
    return RecordChecks(context, decodes), decodes


def _offsets(path: str) -> List[int]:
    with open(path, "rb") as f:
        return [off for off, _ in RecordIOReader(f)]


def test_a_record_without_image_bytes_and_one_too_short_for_a_signature(tmp_path) -> None:
    path = write_rec(os.path.join(tmp_path, "d.rec"), [(0, b""), (0, b"a"), (0, b"ab"), (0, jpeg())], with_idx=False)
    offsets = _offsets(path)
    checks = _checks(str(tmp_path))
    _, stats = _channel("d.rec")
    checks.scan("d.rec", os.path.getsize(path), stats)
    assert _issues(checks) == [
        Issue("IMG_EMPTY", "the record holds no image bytes", f"d.rec#record 0 @byte {offsets[0]}"),
        Issue("IMG_UNKNOWN_FORMAT", "first bytes 61 are no image signature", f"d.rec#record 1 @byte {offsets[1]}"),
        Issue("IMG_UNKNOWN_FORMAT", "first bytes 6162 are no image signature", f"d.rec#record 2 @byte {offsets[2]}"),
    ]
    assert stats.samples == 1


def test_fifty_images_of_unknown_format_are_written_out_per_batch(tmp_path) -> None:
    path = write_rec(os.path.join(tmp_path, "d.rec"), [(0, b"GIF89a%02d" % n) for n in range(52)], with_idx=False)
    offsets = _offsets(path)
    checks = _checks(str(tmp_path))
    _, stats = _channel("d.rec")
    checks.scan("d.rec", os.path.getsize(path), stats)
    issues = _issues(checks)
    assert len(issues) == 50 and stats.samples == 0
    assert issues[0] == Issue(
        "IMG_UNSUPPORTED_FORMAT", "GIF image; JPEG or PNG is required", f"d.rec#record 0 @byte {offsets[0]}"
    )
    assert issues[-1].location == f"d.rec#record 49 @byte {offsets[49]}"


def test_the_image_of_a_record_with_a_bad_label_is_not_decoded(tmp_path) -> None:
    broken = jpeg()[:40]  # a JPEG signature, then the file ends
    path = write_rec(os.path.join(tmp_path, "d.rec"), [(-1, broken), (0, jpeg()), (0.5, jpeg())], with_idx=False)
    checks, decodes = _decoding(LocalStore(str(tmp_path)))
    _, stats = _channel("d.rec")
    with decodes.running():
        checks.scan("d.rec", os.path.getsize(path), stats)
    assert [i.code for i in _issues(checks)] == ["LABEL_INVALID", "LABEL_INVALID"]
    assert stats.images_checked == 1 and stats.samples == 1


def test_images_read_through_a_remote_store_are_decoded_and_located(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(record_checks, "DECODE_BATCH", 1)  # one job per image: results come back while queuing
    broken = jpeg()[:40]
    images = [jpeg(8 + n, 8) for n in range(5)]
    records = [(0, image) for image in images[:2] + [broken] + images[2:]]
    path = write_rec(os.path.join(tmp_path, "d.rec"), records, with_idx=False)
    offsets = _offsets(path)
    checks, decodes = _decoding(RemoteStore(str(tmp_path)))
    _, stats = _channel("d.rec")
    with decodes.running():
        checks.scan("d.rec", os.path.getsize(path), stats)
    assert _issues(checks) == [
        Issue("IMG_TRUNCATED", "cannot decode the JPEG: Truncated File Read", f"d.rec#record 2 @byte {offsets[2]}")
    ]
    assert stats.images_checked == 5 and stats.samples == 5  # a broken image stops counting as a sample
    assert stats.min_size == (8, 8) and stats.max_size == (12, 8)


def test_an_image_split_over_record_parts_is_decoded_and_counted(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(record_checks, "DECODE_BATCH", 1)
    records = [(0, jpeg(8 + n, 8)) for n in range(4)] + [(0, magic_payload(jpeg(20, 8)))]
    path = write_rec(os.path.join(tmp_path, "d.rec"), records, with_idx=False)
    for store in (LocalStore(str(tmp_path)), RemoteStore(str(tmp_path))):
        checks, decodes = _decoding(store)
        _, stats = _channel("d.rec")
        with decodes.running():
            checks.scan("d.rec", os.path.getsize(path), stats)
        assert _issues(checks) == []
        assert stats.images_checked == 5 and stats.samples == 5
        assert stats.min_size == (8, 8) and stats.max_size == (20, 8)


# -- the .idx, continued ----------------------------------------------------------------------


def test_fifty_idx_key_mismatches_are_written_out_and_the_rest_only_counted(tmp_path) -> None:
    for count in (50, 51, 52):
        write_file(os.path.join(tmp_path, "d.idx"), "".join(f"{k + 100}\t{k * 36}\n" for k in range(count)))
        checks = _checks(str(tmp_path))  # the sink keeps them all: the messages past 50 are left empty here
        checks.check_file("d.rec", _records(list(range(count))))
        issues = _issues(checks)
        assert issues[:50] == [
            Issue("IDX_KEY_MISMATCH", f"the .idx key is {k + 100}, the record's header id {k}", _at(k))
            for k in range(50)
        ]
        assert issues[50:] == [Issue("IDX_KEY_MISMATCH", "", _at(k)) for k in range(50, count)]


def test_an_idx_key_of_minus_one_is_the_largest_id(tmp_path) -> None:
    """MXNet reads the key as size_t: -1 is 2**64 - 1 (and the line goes to the slow parser)."""
    write_file(os.path.join(tmp_path, "d.idx"), "-1\t0\n1\t36\n")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([2**64 - 1, 1]))
    assert _issues(checks) == []
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([2**64 - 2, 1]))  # as a float, 2**64 - 1 would equal it
    assert _issues(checks) == [
        Issue("IDX_KEY_MISMATCH", f"the .idx key is {2**64 - 1}, the record's header id {2**64 - 2}", _at(0))
    ]


def test_an_empty_idx_of_a_file_without_good_records_is_not_reported(tmp_path) -> None:
    write_file(os.path.join(tmp_path, "d.idx"), "")
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", _records([]))
    assert _issues(checks) == []
    checks.check_file("d.rec", _records([5]))
    message = "no entry for any of the 1 records: delete the .idx or rebuild it"
    assert _issues(checks) == [Issue("IDX_EMPTY", message, "d.idx")]


def test_bad_idx_offsets_of_a_rec_gone_since_its_scan_are_placed_among_its_records(tmp_path) -> None:
    """No size to compare with: an offset is described by the records around it."""
    write_file(os.path.join(tmp_path, "d.idx"), "0\t8\n1\t44\n2\t50\n3\t4\n4\t9999\n")  # and no d.rec
    checks = _checks(str(tmp_path))
    checks.check_file("d.rec", Records(np.array([0, 1]), np.array([8, 44]), np.array([0, 1], np.uint64)))
    assert _issues(checks) == [
        Issue("IDX_BAD_OFFSET", "key 3 points at byte 4, where no record starts", "d.idx:line 4"),
        Issue(
            "IDX_BAD_OFFSET",
            "key 2 points at byte 50, where no record starts (6 bytes after the start of record 1)",
            "d.idx:line 3",
        ),
        Issue(
            "IDX_BAD_OFFSET",
            "key 4 points at byte 9999, where no record starts (9955 bytes after the start of record 1)",
            "d.idx:line 5",
        ),
    ]
