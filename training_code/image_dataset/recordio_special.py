"""The scan's per-record path: the records that the vectorised scan of :mod:`recordio_scan`
cannot take (multi-part, damaged, crossing the chunk's end, not followed by a record), and
where records start again after a broken one (also how a file is cut into shards)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

import numpy as np

from .issues import DatasetError
from .recordio import FRAME, IR_HEADER_SIZE, LENGTH_MASK, MAGIC, MAGIC_BYTES, location, padded
from .recordio_batch import Rows, one_record

if TYPE_CHECKING:
    from .recordio_scan import RecordIOScanner

ReadAt = Callable[[int, int], bytes]
HEADER_WORDS = 2 + IR_HEADER_SIZE // 4  # frame (2 words) + IRHeader (6 words)
Damage = Tuple[str, str, int, int]  # code, message, record, offset
Step = Tuple[int, Optional[Damage]]  # where the scan goes on, and the damage found there


def special_record(scanner: RecordIOScanner, pos: int, words: np.ndarray, cand: np.ndarray, s: int, rows: Rows) -> Step:
    """Handle the record at candidate ``s`` (of the chunk at byte ``pos``) that the vector path
    could not take. Returns the next position and, if the file is damaged there, the damage."""
    lrec = int(words[cand[s] + 1])
    cflag, length = lrec >> 29, lrec & LENGTH_MASK
    s_off = pos + int(cand[s]) * 4
    if cflag > 3:
        damage = (
            "REC_BAD_FLAG",
            f"length word 0x{lrec:08x} has continuation flag {cflag}",
            scanner.records,
            s_off,
        )
        return s_off + 4, damage
    if cflag in (2, 3):
        return _orphan_part(scanner, cflag, length, s_off), None
    if s_off + 8 + padded(length) > scanner.size and cflag == 0:
        return _cut_off_record(scanner, length, s_off), None
    flag = int(words[cand[s] + 2]) if int(cand[s]) + 2 < len(words) else 0
    header_fits = int(cand[s]) + HEADER_WORDS + min(flag, length // 4) + 1 <= len(words)
    if cflag == 0 and not header_fits and s > 0:
        return s_off, None  # read the next chunk from this record on
    if cflag == 1 or not header_fits:
        return _whole_record(scanner, s_off, rows), None
    return _single_part(scanner, pos, words, cand, s, length, rows)


def _orphan_part(scanner: RecordIOScanner, cflag: int, length: int, s_off: int) -> int:
    """A continuation part (flag 2 or 3) with no first part: skipped. Returns its end."""
    record_end = s_off + 8 + padded(length)
    scanner._report(
        "REC_BAD_CONTINUATION",
        f"a continuation part (flag {cflag}) with no first part",
        scanner.records,
        s_off,
    )
    if record_end > scanner.size:
        scanner._report("REC_TRUNCATED", "part runs past the end of the file", scanner.records, s_off)
        return scanner.size
    return record_end


def _cut_off_record(scanner: RecordIOScanner, length: int, s_off: int) -> int:
    """A single-part record that runs past the end of the file: unpadded, or truncated, or
    with a damaged length word when a record starts after it (the scan goes on there, so one
    bad word does not hide the rest of the file)."""
    scanner.records += 1
    if s_off + 8 + length == scanner.size:
        scanner._report(
            "REC_BAD_PADDING",
            f"the last record ({length} bytes) is not padded to a multiple of 4",
            scanner.records - 1,
            s_off,
        )
        return scanner.size
    message = f"record announces {length} bytes, the file ends after {scanner.size - s_off - 8}"
    next_start = find_record_start(scanner.read_at, scanner.size, s_off + 8)
    if next_start < scanner.size:
        message += f"; skipped {next_start - s_off} bytes to the next record at byte {next_start}"
    scanner._report("REC_TRUNCATED", message, scanner.records - 1, s_off)
    return next_start


def _whole_record(scanner: RecordIOScanner, s_off: int, rows: Rows) -> int:
    """A multi-part record (or one whose header crosses the chunk's end), read part by part.
    A broken one is reported and the scan goes on at the next record start."""
    try:
        record, new_pos = read_parts(scanner, s_off)
        rows.add(one_record(scanner.records, s_off, record, location(scanner.name, scanner.records, s_off)))
    except DatasetError as err:
        scanner.sink.report(err.issue.code, err.issue.message, err.issue.location)
        new_pos = find_record_start(scanner.read_at, scanner.size, s_off + 4)
    scanner.records += 1
    return new_pos


def _single_part(
    scanner: RecordIOScanner, pos: int, words: np.ndarray, cand: np.ndarray, s: int, length: int, rows: Rows
) -> Step:
    """A whole single-part record of ``length`` bytes that ends at the chunk's end, or that
    holds an unescaped magic number, or that is followed by something that is not a record
    (the damage)."""
    s_off = pos + int(cand[s]) * 4
    record_end = s_off + 8 + padded(length)
    next_word = int(cand[s]) + 2 + (padded(length) >> 2)
    later = cand[s + 1 :]
    crosses_chunk = next_word >= len(words) - 1
    lands_on_record = (
        bool(len(later)) and int(later[min(int(np.searchsorted(later, next_word)), len(later) - 1)]) == next_word
    )
    inside = later[: int(np.searchsorted(later, next_word))]  # never the chunk's last word: +1 is in it
    magic_at = pos + int(inside[0]) * 4 if len(inside) else None
    starts = np.flatnonzero((words[inside + 1] >> 29 <= 1) & (inside + 1 < next_word))
    false_start = (pos + int(inside[starts[0]]) * 4, int(words[inside[starts[0]] + 1])) if len(starts) else None
    chunk_end = pos + len(words) * 4
    dirty = False
    if record_end >= chunk_end:  # the chunk's last word is no candidate: it is read again
        magic_at, dirty, beyond = _beyond_the_chunk(scanner, chunk_end, s_off, length, magic_at, false_start is None)
        false_start = false_start or beyond
    if magic_at is not None:
        scanner.unescaped_magic += 1
        if scanner.unescaped_magic == 1:
            scanner._report(
                "REC_UNESCAPED_MAGIC", f"payload holds the magic number at byte {magic_at}", scanner.records, s_off
            )
    if false_start is not None:
        scanner._report("REC_FALSE_START", false_start_message(*false_start), scanner.records, s_off)
    if dirty:  # the padding beyond the chunk, which the vector path does not see
        scanner.nonzero_padding += 1
        if scanner.nonzero_padding == 1:
            message = f"padding after the {length} data bytes is not zero"
            scanner._report("REC_PADDING_NONZERO", message, scanner.records, s_off)
    rows.add(scanner._plain_rows(words, cand[s : s + 1], np.array([length], np.int64), pos))
    if lands_on_record or record_end + 8 > scanner.size:  # too few bytes left for a header: the scan's stray tail
        return record_end, None
    if crosses_chunk and scanner.read_at(record_end, 4) == MAGIC_BYTES:  # what follows is beyond the chunk
        return record_end, None
    return record_end, _not_a_record_after(scanner, length, s_off, record_end)


def false_start_message(at: int, word: int) -> str:
    """REC_FALSE_START's message for the magic number at byte ``at``, followed by ``word``."""
    return (
        f"payload holds the magic number at byte {at} followed by length word 0x{word:08x}"
        f" (continuation flag {word >> 29}), which MXNet's chunked readers take for a record start"
    )


def _beyond_the_chunk(
    scanner: RecordIOScanner, chunk_end: int, s_off: int, length: int, magic_at: Optional[int], find_start: bool
) -> Tuple[Optional[int], bool, Optional[Tuple[int, int]]]:
    """Read the part of the record at ``s_off`` that the chunk's candidates do not cover (its
    last word on), a chunk at a time, for what the vector path checks inside a chunk. Returns
    (where the payload's first aligned magic number is, given ``magic_at`` found before; whether
    the padding beyond the chunk is not zero; with ``find_start``, the first magic number there
    that a length word with flag 0 or 1 follows, and that word)."""
    record_end = s_off + 8 + padded(length)
    last_word = s_off + 8 + (length & ~3)  # the data's last bytes and their padding
    dirty = False
    start: Optional[Tuple[int, int]] = None
    at = max(chunk_end - 4, s_off + 8)
    while at < record_end and (
        magic_at is None or (find_start and start is None) or (length & 3 and last_word >= max(at, chunk_end))
    ):
        data = scanner.read_at(at, min(scanner.chunk_size, record_end - at))
        if not data:
            break
        block = np.frombuffer(data, "<u4", len(data) // 4)
        hits = np.flatnonzero(block == MAGIC)
        if magic_at is None and len(hits):
            magic_at = at + int(hits[0]) * 4
        for hit in hits if find_start and start is None else ():
            if at + int(hit) * 4 + 4 >= record_end:  # what follows is the next record's
                break
            follow = scanner.read_at(at + int(hit) * 4 + 4, 4)  # the next word may be past the block
            word = struct.unpack("<I", follow)[0]
            if word >> 29 <= 1:
                start = (at + int(hit) * 4, word)
                break
        if length & 3 and max(at, chunk_end) <= last_word < at + len(data):
            dirty = any(data[last_word - at + (length & 3) : last_word - at + 4])
        at += len(data)
    return magic_at, dirty, start


def _not_a_record_after(scanner: RecordIOScanner, length: int, s_off: int, record_end: int) -> Damage:
    """The damage after the record at ``s_off``: it lacks its padding, or no magic follows."""
    unpadded_end = s_off + 8 + length
    if unpadded_end % 4 and scanner.read_at(unpadded_end, 4) == MAGIC_BYTES:
        return (
            "REC_BAD_PADDING",
            f"the {length}-byte record at byte {s_off} is not padded to a multiple of 4: the next magic "
            f"number follows at byte {unpadded_end}",
            scanner.records - 1,
            s_off,
        )
    found = struct.unpack("<I", scanner.read_at(record_end, 4).ljust(4, b"\0"))[0]
    return (
        "REC_BAD_MAGIC",
        f"expected the next record (magic 0x{MAGIC:08x}) at byte {record_end}, after the {length}-byte record at "
        f"byte {s_off}, found 0x{found:08x}",
        scanner.records,
        record_end,
    )


def read_parts(scanner: RecordIOScanner, offset: int) -> Tuple[bytes, int]:
    """Read the logical record at ``offset`` part by part; returns (data, end offset)."""
    parts: List[bytes] = []
    pos = offset
    first = True
    while True:
        head = scanner.read_at(pos, 8)
        if len(head) < 8:
            raise DatasetError(
                "REC_TRUNCATED",
                "file ends inside a multi-part record",
                location(scanner.name, scanner.records, offset),
            )
        magic, lrec = FRAME.unpack(head)
        cflag, length = lrec >> 29, lrec & LENGTH_MASK
        if magic != MAGIC or cflag > 3 or (first and cflag not in (0, 1)) or (not first and cflag not in (2, 3)):
            raise DatasetError(
                "REC_BAD_CONTINUATION",
                f"multi-part record starting at byte {offset} is broken at byte {pos} "
                f"(magic 0x{magic:08x}, flag {cflag})",
                location(scanner.name, scanner.records, offset),
            )
        body = scanner.read_at(pos + 8, length)
        if len(body) < length or pos + 8 + padded(length) > scanner.size:
            raise DatasetError(
                "REC_TRUNCATED",
                f"part at byte {pos} announces {length} bytes, the file ends first",
                location(scanner.name, scanner.records, offset),
            )
        parts.append(body)
        pos += 8 + padded(length)
        if cflag in (0, 3):
            return b"".join(parts), pos
        parts.append(MAGIC_BYTES)
        first = False


def find_record_start(read_at: ReadAt, size: int, offset: int, window: int = 1 << 20) -> int:
    """The first record start at or after ``offset`` (for splitting a file into shards):
    an aligned magic number whose flag begins a record. Returns ``size`` if there is none."""
    pos = (offset + 3) & ~3
    while pos < size:
        data = read_at(pos, min(window, size - pos))
        words = np.frombuffer(data, "<u4", len(data) // 4)
        cand = np.flatnonzero(words[:-1] == MAGIC)
        ok = cand[(words[cand + 1] >> 29) <= 1] if len(cand) else cand
        if len(ok):
            return pos + int(ok[0]) * 4
        if len(words) < 2:
            break
        pos += (len(words) - 1) * 4
    return size
