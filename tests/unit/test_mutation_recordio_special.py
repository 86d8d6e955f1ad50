"""recordio_special: the per-record path of the scan with its exact findings (code, message,
location), where the scan goes on after each, and the count of records it has seen: orphan
continuation parts, cut-off last records, records not followed by a record, parts read one by
one, and the search for the next record start.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``_whole_record``: ``find_record_start(..., s_off + 5)`` for ``s_off + 4`` (both round up to
  ``s_off + 4`` or ``s_off + 8``; a record start at ``s_off + 4`` would need the length word of
  the broken record to be the magic number, whose flag 6 is taken as REC_BAD_FLAG before).
- ``_not_a_record_after``: ``unpadded_end / 4`` for ``% 4`` when the end is aligned (then it is
  the padded end, where no magic number follows, or the record would have been taken as
  followed by a record), so only ends that are not aligned differ, and ``/ 4`` is true for them
  as ``% 4`` is. (``% 5`` is not equivalent: see the test with a 37-byte record.)
  ``ljust(4)`` without its fill byte, or ``rjust``: the word after a record is read there only
  when at least 4 bytes follow it (fewer are "stray bytes at the end of the file"), so the fill
  is never used.
- ``read_parts``: ``cflag > 3 and (first and ...)`` or ``cflag > 4`` (a first part never has a
  flag above 3 there: the scan reports REC_BAD_FLAG before; a later part with flag 4 or more is
  refused as "not 2 or 3" anyway); ``first = None`` (as false as False).
- ``find_record_start``: ``pos <= size`` (at ``size`` nothing is read and the search ends with
  ``size`` either way); ``min(window, size + pos)`` (a read past the end returns what is
  there); ``if len(cand) or True`` (indexing with no candidates gives none).
"""

from __future__ import annotations

import struct
from typing import List, Tuple

import numpy as np

from image_dataset.issues import CollectingSink, Issue
from image_dataset.recordio import MAGIC, frame, pack
from image_dataset.recordio_scan import RecordIOScanner
from image_dataset.recordio_special import find_record_start


def _part(cflag: int, data: bytes) -> bytes:
    return struct.pack("<II", MAGIC, (cflag << 29) | len(data)) + data + b"\0" * (-len(data) % 4)


def _scan(data: bytes) -> Tuple[List[Issue], List[int], List[int], RecordIOScanner]:
    """Errors and warnings, the (ordinal, offset) of the good records, and the scanner."""
    sink = CollectingSink()
    scanner = RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x.rec", sink)
    ordinals: List[int] = []
    offsets: List[int] = []
    for batch in scanner.scan():
        ordinals += batch.ordinals.tolist()
        offsets += batch.offsets.tolist()
    return sink.errors + sink.warnings, ordinals, offsets, scanner


FIRST = frame(pack(0, b"abcd", id=0))  # 36 bytes
SECOND = frame(pack(1, b"abcd", id=1))


# -- orphan continuation parts -------------------------------------------------------------


def test_an_orphan_part_is_skipped_and_the_scan_goes_on_after_it() -> None:
    for cflag in (2, 3):
        issues, ordinals, offsets, _ = _scan(FIRST + _part(cflag, b"zzzzz") + SECOND)
        assert issues == [
            Issue(
                "REC_BAD_CONTINUATION",
                f"a continuation part (flag {cflag}) with no first part",
                "x.rec#record 1 @byte 36",
            )
        ]
        assert ordinals == [0, 1] and offsets == [0, 52]


def test_an_orphan_part_that_ends_the_file_exactly() -> None:
    issues, ordinals, _, scanner = _scan(FIRST + _part(3, b"zzzz"))
    assert issues == [
        Issue("REC_BAD_CONTINUATION", "a continuation part (flag 3) with no first part", "x.rec#record 1 @byte 36")
    ]
    assert ordinals == [0] and scanner.stopped_at == 48


def test_an_orphan_part_that_runs_past_the_end() -> None:
    data = FIRST + SECOND + struct.pack("<II", MAGIC, (2 << 29) | 40) + b"short"
    issues, ordinals, _, scanner = _scan(data)
    assert issues == [
        Issue("REC_BAD_CONTINUATION", "a continuation part (flag 2) with no first part", "x.rec#record 2 @byte 72"),
        Issue("REC_TRUNCATED", "part runs past the end of the file", "x.rec#record 2 @byte 72"),
    ]
    assert ordinals == [0, 1] and scanner.stopped_at == len(data)


# -- the last record cut off ---------------------------------------------------------------


def test_a_last_record_without_its_padding() -> None:
    last = frame(pack(2, b"abcde", id=2))  # 29 bytes, 3 of padding
    data = FIRST + SECOND + last[:-3]
    issues, ordinals, _, scanner = _scan(data)
    assert issues == [
        Issue(
            "REC_BAD_PADDING", "the last record (29 bytes) is not padded to a multiple of 4", "x.rec#record 2 @byte 72"
        )
    ]
    assert ordinals == [0, 1] and scanner.records == 3 and scanner.stopped_at == len(data)


def test_a_last_record_that_is_cut_short() -> None:
    last = frame(pack(2, b"abcde", id=2))
    for cut, left in ((4, 28), (12, 20)):
        data = FIRST + SECOND + last[:-cut]
        issues, ordinals, _, scanner = _scan(data)
        assert issues == [
            Issue("REC_TRUNCATED", f"record announces 29 bytes, the file ends after {left}", "x.rec#record 2 @byte 72")
        ]
        assert ordinals == [0, 1] and scanner.records == 3


# -- a record not followed by a record -----------------------------------------------------


def test_an_unpadded_record_followed_by_the_next_one() -> None:
    record = frame(pack(0, b"x" * 13, id=0))  # 37 bytes: ends at byte 45 (a multiple of 5, not of 4)
    data = record[:45] + FIRST + FIRST
    issue = _scan(data)[0][0]
    assert (issue.code, issue.location) == ("REC_BAD_PADDING", "x.rec#record 0 @byte 0")
    assert issue.message.startswith(
        "the 37-byte record at byte 0 is not padded to a multiple of 4: the next magic number follows at byte 45"
    )


def test_what_follows_a_record_is_shown_as_an_unsigned_word() -> None:
    for tail, shown in ((b"\xde\xad\xbe\xef", "0xefbeadde"), (b"\x01\x02\0\0", "0x00000201")):
        data = FIRST + tail + b"\0" * 60 + SECOND
        issue = _scan(data)[0][0]
        assert (issue.code, issue.location) == ("REC_BAD_MAGIC", "x.rec#record 1 @byte 36")
        assert issue.message.startswith(
            f"expected the next record (magic 0x{MAGIC:08x}) at byte 36, after the 28-byte record at byte 0, "
            f"found {shown};"
        )


# -- parts read one by one -----------------------------------------------------------------


def test_a_first_part_with_a_flag_beyond_3_breaks_the_record() -> None:
    head = _part(1, pack(1, b"ab"))  # the next part is at byte 72
    for flag in (4, 5):
        bad = struct.pack("<II", MAGIC, (flag << 29) | 2) + b"zz\0\0"
        issues = _scan(FIRST + head + bad + SECOND)[0]
        assert issues[0] == Issue(
            "REC_BAD_CONTINUATION",
            f"multi-part record starting at byte 36 is broken at byte 72 (magic 0x{MAGIC:08x}, flag {flag})",
            "x.rec#record 1 @byte 36",
        )


# -- where records start again -------------------------------------------------------------


def test_find_record_start_takes_aligned_starts_of_records_only() -> None:
    data = b"\0" * 8 + struct.pack("<II", MAGIC, (2 << 29) | 4) + b"\0" * 4 + FIRST
    read = lambda o, n: data[o : o + n]  # noqa: E731
    assert find_record_start(read, len(data), 0) == 20
    assert find_record_start(read, len(data), 17) == 20
    assert find_record_start(read, len(data), 20) == 20
    assert find_record_start(read, len(data), 21) == len(data)
    assert find_record_start(read, 0, 0) == 0


def test_find_record_start_reads_on_in_windows_that_overlap_by_a_word() -> None:
    data = b"\0" * 60 + FIRST
    read = lambda o, n: data[o : o + n]  # noqa: E731
    for window in (8, 12, 16, 60, 64, 68):
        assert find_record_start(read, len(data), 0, window) == 60
    data = b"\0" * 64 + struct.pack("<I", MAGIC)  # a magic word with nothing after it
    assert find_record_start(lambda o, n: data[o : o + n], len(data), 0, 8) == len(data)
    assert np.frombuffer(data, "<u4")[-1] == MAGIC


def test_find_record_start_takes_the_first_part_of_a_multi_part_record() -> None:
    data = b"\0" * 8 + _part(2, b"ab") + _part(1, b"abcd") + _part(3, b"ab")
    assert find_record_start(lambda o, n: data[o : o + n], len(data), 0) == 20
