"""Fast structural scan of a .rec file: framing, headers and labels, vectorised with numpy.

dmlc's writer guarantees that the magic number appears at a 4-byte-aligned offset only where a
record (part) starts, so one ``words == MAGIC`` over a chunk finds every record, and the chain
``next = start + 8 + pad(length)`` is checked for the whole chunk at once. Only unusual records
(multi-part, damaged, crossing the chunk end) take the per-record path. Payloads are never held:
memory is one chunk plus small per-batch arrays, whatever the file size.
"""

from __future__ import annotations

import os
import struct
from array import array
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from .issues import DatasetError, IssueSink
from .recordio import (
    FRAME,
    IR_HEADER_SIZE,
    LENGTH_MASK,
    MAGIC,
    MAGIC_BYTES,
    location,
    padded,
    unpack,
)

ReadAt = Callable[[int, int], bytes]
DEFAULT_CHUNK = 8 << 20
HEADER_WORDS = 2 + IR_HEADER_SIZE // 4  # frame (2 words) + IRHeader (6 words)


class RecordBatch(NamedTuple):
    """Metadata of consecutive records. Row ``i`` describes record ``ordinals[i]``."""

    ordinals: np.ndarray  # int64, record number counted from the scan's start
    offsets: np.ndarray  # int64, byte offset of the record
    flags: np.ndarray  # uint32, IRHeader flag (number of vector labels)
    labels: np.ndarray  # float32, IRHeader scalar label
    ids: np.ndarray  # uint64, IRHeader id
    image_offsets: np.ndarray  # int64, byte offset of the image, -1 if not contiguous
    image_lengths: np.ndarray  # int64
    image_heads: np.ndarray  # uint32, first 4 image bytes little-endian (0 when shorter)
    vectors: Dict[int, Tuple[np.ndarray, np.ndarray]]  # flag -> (rows, float32 labels)
    images: Dict[int, bytes]  # row -> image bytes of records that are not contiguous

    def __len__(self) -> int:
        return len(self.ordinals)


class _Rows:
    """Accumulates per-record rows from the vector path and the slow path into batches."""

    def __init__(self) -> None:
        self.parts: List[RecordBatch] = []

    def add(self, batch: RecordBatch) -> None:
        if len(batch):
            self.parts.append(batch)

    def take(self) -> Optional[RecordBatch]:
        parts, self.parts = self.parts, []
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        vectors: Dict[int, Tuple[List[np.ndarray], List[np.ndarray]]] = {}
        images: Dict[int, bytes] = {}
        base = 0
        for p in parts:
            for flag, (rows, vals) in p.vectors.items():
                lists = vectors.setdefault(flag, ([], []))
                lists[0].append(rows + base)
                lists[1].append(vals)
            for row, data in p.images.items():
                images[row + base] = data
            base += len(p)
        columns = [np.concatenate([p[i] for p in parts]) for i in range(8)]
        merged = {k: (np.concatenate(r), np.concatenate(v)) for k, (r, v) in vectors.items()}
        c = columns
        return RecordBatch(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], merged, images)


def _one_record(ordinal: int, offset: int, record: bytes, where: str) -> RecordBatch:
    """A batch of one record that was read whole (multi-part records)."""
    header, image = unpack(record, where)
    vectors: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    if header.flag:
        vectors[header.flag] = (
            np.zeros(1, np.int64),
            np.array([header.label], np.float32).reshape(1, header.flag),
        )
    head = struct.unpack("<I", image[:4])[0] if len(image) >= 4 else 0
    return RecordBatch(
        np.array([ordinal], np.int64),
        np.array([offset], np.int64),
        np.array([header.flag], np.uint32),
        np.array([0.0 if header.flag else header.label], np.float32),
        np.array([header.id], np.uint64),
        np.array([-1], np.int64),
        np.array([len(image)], np.int64),
        np.array([head], np.uint32),
        vectors,
        {0: image},
    )


class RecordIOScanner:
    """Scans ``[start, end)`` of a .rec; ``start`` must be a record start (0, or see
    :func:`find_record_start`). Problems go to ``sink``; batches of good records are yielded."""

    def __init__(
        self,
        read_at: ReadAt,
        size: int,
        name: str,
        sink: IssueSink,
        chunk_size: int = DEFAULT_CHUNK,
        read_chunk: Optional[ReadAt] = None,
    ) -> None:
        self.read_at = read_at
        # reads whole chunks; may return a view of a buffer that the next call reuses
        self.read_chunk = read_chunk or read_at
        self.walk = False  # follow lengths in Python instead of scanning (large records)
        self.size = size
        self.name = name
        self.sink = sink
        self.chunk_size = max(64, chunk_size & ~3)
        self.records = 0
        self.unescaped_magic = 0
        self.nonzero_padding = 0
        self.stopped_at = 0

    # -- problems -------------------------------------------------------------------------
    def _report(self, code: str, message: str, record: int, offset: int) -> None:
        self.sink.report(code, message, location(self.name, record, offset))

    # -- the slow path --------------------------------------------------------------------
    def _read_parts(self, offset: int) -> Tuple[bytes, int]:
        """Read the logical record at ``offset`` part by part; returns (data, end offset)."""
        parts: List[bytes] = []
        pos = offset
        first = True
        while True:
            head = self.read_at(pos, 8)
            if len(head) < 8:
                raise DatasetError(
                    "REC_TRUNCATED",
                    "file ends inside a multi-part record",
                    location(self.name, self.records, offset),
                )
            magic, lrec = FRAME.unpack(head)
            cflag, length = lrec >> 29, lrec & LENGTH_MASK
            if magic != MAGIC or cflag > 3 or (first and cflag not in (0, 1)) or (not first and cflag not in (2, 3)):
                raise DatasetError(
                    "REC_BAD_CONTINUATION",
                    f"multi-part record starting at byte {offset} is broken at byte {pos} "
                    f"(magic 0x{magic:08x}, flag {cflag})",
                    location(self.name, self.records, offset),
                )
            body = self.read_at(pos + 8, length)
            if len(body) < length or pos + 8 + padded(length) > self.size:
                raise DatasetError(
                    "REC_TRUNCATED",
                    f"part at byte {pos} announces {length} bytes, the file ends first",
                    location(self.name, self.records, offset),
                )
            parts.append(body)
            pos += 8 + padded(length)
            if cflag in (0, 3):
                return b"".join(parts), pos
            parts.append(MAGIC_BYTES)
            first = False

    # -- the vector path ------------------------------------------------------------------
    def _plain_rows(self, words: np.ndarray, cand: np.ndarray, lengths: np.ndarray, base: int) -> RecordBatch:
        """Headers of whole, single-part records starting at word indices ``cand``."""
        n = len(cand)
        ordinals = np.arange(self.records, self.records + n, dtype=np.int64)
        offsets = base + cand.astype(np.int64) * 4
        lengths = lengths.astype(np.int64)

        rem = lengths & 3
        tails = np.flatnonzero(rem)
        tails = tails[cand[tails] + 2 + (lengths[tails] >> 2) < len(words)]  # padding inside this chunk
        if len(tails):
            last = words[cand[tails] + 2 + (lengths[tails] >> 2)].astype(np.uint64)
            keep_bits = (np.uint64(1) << (rem[tails].astype(np.uint64) * np.uint64(8))) - np.uint64(1)
            dirty = np.flatnonzero(last & ~keep_bits & np.uint64(0xFFFFFFFF))
            if len(dirty):
                self.nonzero_padding += len(dirty)
                r = tails[dirty[0]]
                if self.nonzero_padding == len(dirty):  # the file's first: the total comes at the end
                    self._report(
                        "REC_PADDING_NONZERO",
                        f"padding after the {lengths[r]} data bytes is not zero",
                        int(ordinals[r]),
                        int(offsets[r]),
                    )

        short = lengths < IR_HEADER_SIZE
        good = ~short
        flags = np.zeros(n, np.uint32)
        flags[good] = words[cand[good] + 2]
        too_many = good & (IR_HEADER_SIZE + flags.astype(np.int64) * 4 > lengths)
        for r in np.flatnonzero(short | too_many)[:50]:
            self._report(
                "REC_BAD_HEADER",
                "record of {} bytes cannot hold the 24-byte header{}".format(
                    lengths[r],
                    "" if short[r] else f" and the {flags[r]} labels it announces",
                ),
                int(ordinals[r]),
                int(offsets[r]),
            )
        self.records += n
        ok = np.flatnonzero(good & ~too_many)
        c = cand[ok]
        flags = flags[ok]
        label = words[c + 3].view(np.float32)
        ids = words[c + 4].astype(np.uint64) | (words[c + 5].astype(np.uint64) << np.uint64(32))
        image_word = c.astype(np.int64) + HEADER_WORDS + flags
        image_len = lengths[ok] - IR_HEADER_SIZE - flags.astype(np.int64) * 4
        heads = np.zeros(len(ok), np.uint32)
        has_head = (image_len >= 4) & (image_word < len(words))
        heads[has_head] = words[image_word[has_head]]
        vectors: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        if flags.any():
            for flag in np.unique(flags[flags > 0]):
                rows = np.flatnonzero(flags == flag)
                cols = (c[rows].astype(np.int64) + HEADER_WORDS)[:, None] + np.arange(int(flag))
                vectors[int(flag)] = (rows, words[cols].view(np.float32))
        return RecordBatch(
            ordinals[ok],
            offsets[ok],
            flags,
            label.copy(),
            ids,
            base + image_word * 4,
            image_len,
            heads,
            vectors,
            {},
        )

    # -- the main loop --------------------------------------------------------------------
    def scan(
        self, start: int = 0, end: Optional[int] = None, batch_records: int = 65536, summarize: bool = True
    ) -> Iterator[RecordBatch]:
        """Yield batches for the records that start in ``[start, end)``. Afterwards
        ``stopped_at`` is where the scan stopped: the end of the last record it read (the start
        of the next one), or the file's size. ``summarize=False`` leaves the totals of repeated
        warnings to the caller (a shard of a file; see :func:`report_repeats`)."""
        end = self.size if end is None else min(end, self.size)
        rows = _Rows()
        pos = start
        damage: Optional[Tuple[str, str, int, int]] = None  # code, message, record, offset
        while pos < end or (damage is not None and pos < self.size):
            data = self.read_chunk(pos, min(self.chunk_size, self.size - pos))
            n_words = len(data) // 4
            words = np.frombuffer(data, "<u4", n_words)
            if damage is None and self.walk and pos < end:
                walked = self._walk(data, words, pos, end)
                if walked:
                    rows.add(self._plain_rows(words, walked[0], walked[1], pos))
                    pos += walked[2]
                    if sum(len(p) for p in rows.parts) >= batch_records or pos >= end:
                        batch = rows.take()
                        if batch is not None:
                            yield batch
                    continue
            cand = np.flatnonzero(words[: max(n_words - 1, 0)] == MAGIC)
            self.walk = len(cand) * 4096 < len(data)
            if damage is not None:
                pos, damage = self._resync(pos, len(data), words, cand, damage)
                continue
            if n_words < 2:
                self._report(
                    "REC_TRUNCATED",
                    f"{self.size - pos} stray bytes at the end of the file",
                    self.records,
                    pos,
                )
                pos = self.size
                break
            if not len(cand) or cand[0] != 0:
                damage = (
                    "REC_BAD_MAGIC",
                    f"expected a record (magic 0x{MAGIC:08x}) at byte {pos}, found 0x{int(words[0]):08x}",
                    self.records,
                    pos,
                )
                pos += 4
                continue
            lrec = words[cand + 1]
            cflags = lrec >> 29
            lengths = (lrec & LENGTH_MASK).astype(np.int64)
            nxt = cand.astype(np.int64) + 2 + ((lengths + 3) >> 2)
            special = cflags != 0
            special[:-1] |= nxt[:-1] != cand[1:]
            special[-1] = True
            in_range = int(np.searchsorted(cand, (end - pos + 3) // 4))
            if in_range < len(cand):
                special[in_range] = True
            s = int(np.argmax(special))
            if s:  # records [0, s) are whole, single-part, and followed by the next record
                rows.add(self._plain_rows(words, cand[:s], lengths[:s], pos))
            if s >= in_range:  # record s - 1 ends where candidate s (at or after end) starts
                pos += int(cand[s]) * 4
            else:
                pos, damage = self._special(pos, words, cand, s, rows)
            if sum(len(p) for p in rows.parts) >= batch_records or pos >= end:
                batch = rows.take()
                if batch is not None:
                    yield batch
        if damage is not None:
            code, message, record, offset = damage
            self._report(code, message + "; no further record in the file", record, offset)
        self.stopped_at = min(pos, self.size)
        batch = rows.take()
        if batch is not None:
            yield batch
        if summarize:
            report_repeats(self.sink, self.name, self.unescaped_magic, self.nonzero_padding)

    def _walk(self, data: bytes, words: np.ndarray, pos: int, end: int) -> Optional[Tuple[np.ndarray, np.ndarray, int]]:
        """Follow record lengths through the chunk while every record is plain (whole, with a
        header) and the next header lies inside the chunk. Cheaper than scanning every word
        when records are large. Returns (start words, lengths, bytes consumed) or None."""
        starts = array("q")
        append = starts.append
        limit = min(len(data) - 8, end - pos - 1)  # a record's header must fit; it must start before end
        unpack = FRAME.unpack_from
        at = 0
        while at <= limit:
            magic, lrec = unpack(data, at)
            if magic != MAGIC or not IR_HEADER_SIZE <= lrec <= LENGTH_MASK:  # flag 0, room for the header
                break
            nxt = at + 8 + ((lrec + 3) & ~3)
            if nxt > limit:
                break
            append(at)
            at = nxt
        if not starts:
            return None
        cand = np.frombuffer(starts, np.int64) >> 2
        return cand, (words[cand + 1] & LENGTH_MASK).astype(np.int64), at

    def _resync(
        self, pos: int, n_bytes: int, words: np.ndarray, cand: np.ndarray, damage: Tuple[str, str, int, int]
    ) -> Tuple[int, Optional[Tuple[str, str, int, int]]]:
        """After damage, move to the next aligned magic whose flag starts a record."""
        starts = cand[(words[cand + 1] >> 29) <= 1] if len(cand) else cand
        if not len(starts):
            if pos + n_bytes >= self.size:
                return self.size, damage
            return pos + max(len(words) - 1, 1) * 4, damage
        new_pos = pos + int(starts[0]) * 4
        code, message, record, offset = damage
        self._report(
            code,
            f"{message}; skipped {new_pos - offset} bytes to the next record at byte {new_pos}",
            record,
            offset,
        )
        return new_pos, None

    def _special(
        self, pos: int, words: np.ndarray, cand: np.ndarray, s: int, rows: _Rows
    ) -> Tuple[int, Optional[Tuple[str, str, int, int]]]:
        """Handle the record at candidate ``s`` that the vector path could not take.
        Returns the next position and, if the file is damaged there, the damage."""
        lrec = int(words[cand[s] + 1])
        cflag, length = lrec >> 29, lrec & LENGTH_MASK
        s_off = pos + int(cand[s]) * 4
        record_end = s_off + 8 + padded(length)
        next_word = int(cand[s]) + 2 + (padded(length) >> 2)
        if cflag > 3:
            damage = (
                "REC_BAD_FLAG",
                f"length word 0x{lrec:08x} has continuation flag {cflag}",
                self.records,
                s_off,
            )
            return s_off + 4, damage
        if cflag in (2, 3):
            self._report(
                "REC_BAD_CONTINUATION",
                f"a continuation part (flag {cflag}) with no first part",
                self.records,
                s_off,
            )
            if record_end > self.size:
                self._report("REC_TRUNCATED", "part runs past the end of the file", self.records, s_off)
                return self.size, None
            return record_end, None
        if record_end > self.size and cflag == 0:
            if s_off + 8 + length == self.size:
                self._report(
                    "REC_BAD_PADDING",
                    f"the last record ({length} bytes) is not padded to a multiple of 4",
                    self.records,
                    s_off,
                )
            else:
                self._report(
                    "REC_TRUNCATED",
                    f"record announces {length} bytes, the file ends after {self.size - s_off - 8}",
                    self.records,
                    s_off,
                )
            self.records += 1
            return self.size, None
        flag = int(words[cand[s] + 2]) if int(cand[s]) + 2 < len(words) else 0
        header_fits = int(cand[s]) + HEADER_WORDS + min(flag, length // 4) + 1 <= len(words)
        if cflag == 0 and not header_fits and s > 0:
            return s_off, None  # read the next chunk from this record on
        if cflag == 1 or not header_fits:
            try:
                record, new_pos = self._read_parts(s_off)
                rows.add(_one_record(self.records, s_off, record, location(self.name, self.records, s_off)))
            except DatasetError as err:
                self.sink.report(err.issue.code, err.issue.message, err.issue.location)
                new_pos = find_record_start(self.read_at, self.size, s_off + 4)
            self.records += 1
            return new_pos, None
        later = cand[s + 1 :]
        crosses_chunk = next_word >= len(words) - 1
        lands_on_record = (
            bool(len(later)) and int(later[min(int(np.searchsorted(later, next_word)), len(later) - 1)]) == next_word
        )
        if crosses_chunk or lands_on_record:
            if len(later) and int(later[0]) < next_word:
                self.unescaped_magic += 1
                if self.unescaped_magic == 1:
                    self._report(
                        "REC_UNESCAPED_MAGIC",
                        f"payload holds the magic number at byte {pos + int(later[0]) * 4}",
                        self.records,
                        s_off,
                    )
            rows.add(self._plain_rows(words, cand[s : s + 1], np.array([length], np.int64), pos))
            return record_end, None
        # the record is followed by something that is not a record
        rows.add(self._plain_rows(words, cand[s : s + 1], np.array([length], np.int64), pos))
        unpadded_end = s_off + 8 + length
        if unpadded_end % 4 and self.read_at(unpadded_end, 4) == MAGIC_BYTES:
            return record_end, (
                "REC_BAD_PADDING",
                f"the {length}-byte record at byte {s_off} is not padded to a multiple of 4: the next magic "
                f"number follows at byte {unpadded_end}",
                self.records - 1,
                s_off,
            )
        found = struct.unpack("<I", self.read_at(record_end, 4).ljust(4, b"\0"))[0]
        return record_end, (
            "REC_BAD_MAGIC",
            f"expected the next record (magic 0x{MAGIC:08x}) at byte {record_end}, after the {length}-byte record at "
            f"byte {s_off}, found 0x{found:08x}",
            self.records,
            record_end,
        )


REPEATED = {"REC_UNESCAPED_MAGIC": "hold an unsplit magic number", "REC_PADDING_NONZERO": "have non-zero padding"}


def report_repeats(sink: IssueSink, name: str, unescaped_magic: int, nonzero_padding: int) -> None:
    """The totals of the warnings a scan reports once per file (its first case in detail)."""
    for count, (code, what) in zip((unescaped_magic, nonzero_padding), REPEATED.items()):
        if count > 1:
            sink.report(code, f"{count} records in all {what}", name)


class ChunkReader:
    """Reads chunks of an open local file (the caller's descriptor, which it closes) into one
    reused buffer (no allocation per chunk). The returned view is valid until the next call."""

    def __init__(self, fd: int, chunk_size: int = DEFAULT_CHUNK) -> None:
        self._fd = fd
        self._buffer = memoryview(bytearray(chunk_size))

    def __call__(self, offset: int, length: int) -> memoryview:
        view = self._buffer[:length]
        return view[: os.preadv(self._fd, [view], offset)]


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
