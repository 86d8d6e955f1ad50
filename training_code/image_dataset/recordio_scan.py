"""Fast structural scan of a .rec file: framing, headers and labels, vectorised with numpy.

dmlc's writer guarantees that the magic number appears at a 4-byte-aligned offset only where a
record (part) starts, so one ``words == MAGIC`` over a chunk finds every record, and the chain
``next = start + 8 + pad(length)`` is checked for the whole chunk at once. Only unusual records
(multi-part, damaged, crossing the chunk end) take the per-record path. Payloads are never held:
memory is one chunk plus small per-batch arrays, whatever the file size.
"""

from __future__ import annotations

import os
from array import array
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from .issues import IssueSink
from .recordio import FRAME, IR_HEADER_SIZE, LENGTH_MASK, MAGIC, location
from .recordio_batch import RecordBatch, Rows
from .recordio_special import HEADER_WORDS, Damage, ReadAt, false_start_message, special_record
from .recordio_special import find_record_start as find_record_start  # its home before; shards and tests import it here

DEFAULT_CHUNK = 8 << 20


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
        self._hits = np.empty(0, bool)

    # -- problems -------------------------------------------------------------------------
    def _report(self, code: str, message: str, record: int, offset: int) -> None:
        self.sink.report(code, message, location(self.name, record, offset))

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
        for r in np.flatnonzero(short | too_many):  # every one: the sink keeps a few and counts all
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
        rows = Rows()
        pos = start
        damage: Optional[Damage] = None
        while pos < end or (damage is not None and pos < self.size):
            data = self.read_chunk(pos, min(self.chunk_size, self.size - pos))
            n_words = len(data) // 4
            words = np.frombuffer(data, "<u4", n_words)
            if damage is None and self.walk and pos < end:
                walked = self._walk(data, words, pos, end)
                if walked:
                    self._magic_in_payloads(words, walked[0], walked[2], pos)  # before the rows number them
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
            lengths, s, in_range = _first_special(words, cand, end - pos)
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
            if magic != MAGIC and starts:  # damage: the word scan reports it after the last record
                at = starts.pop()
                break
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

    def _magic_in_payloads(self, words: np.ndarray, starts: np.ndarray, consumed: int, pos: int) -> None:
        """The walked records (``starts``, in words, over the chunk's first ``consumed`` bytes)
        whose payload holds an aligned magic number: the walk reads none of their payload."""
        n = consumed >> 2
        if len(self._hits) < n:
            self._hits = np.empty(n, bool)
        hits = np.equal(words[:n], MAGIC, out=self._hits[:n])  # a reused buffer: no page faults per chunk
        if np.count_nonzero(hits) == len(starts):  # the walk's record starts only (nonzero costs 4x more)
            return
        inside = np.setdiff1d(np.flatnonzero(hits), starts, assume_unique=True)
        owner = np.searchsorted(starts, inside, side="right") - 1
        owners, first = np.unique(owner, return_index=True)
        follows = words[inside + 1]  # the walk stops 8 bytes before the chunk's end: in the chunk
        ends = np.append(starts[1:], n)  # the walked records follow each other
        false = np.flatnonzero((follows >> 29 <= 1) & (inside + 1 < ends[owner]))  # a length word in the record
        for k in false[np.unique(owner[false], return_index=True)[1]]:  # the first of each record
            r = int(owner[k])
            message = false_start_message(pos + int(inside[k]) * 4, int(follows[k]))
            self._report("REC_FALSE_START", message, self.records + r, pos + int(starts[r]) * 4)
        if not self.unescaped_magic:
            r = int(owners[0])
            self._report(
                "REC_UNESCAPED_MAGIC",
                f"payload holds the magic number at byte {pos + int(inside[first[0]]) * 4}",
                self.records + r,
                pos + int(starts[r]) * 4,
            )
        self.unescaped_magic += len(owners)

    def _resync(
        self, pos: int, n_bytes: int, words: np.ndarray, cand: np.ndarray, damage: Damage
    ) -> Tuple[int, Optional[Damage]]:
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
        self, pos: int, words: np.ndarray, cand: np.ndarray, s: int, rows: Rows
    ) -> Tuple[int, Optional[Damage]]:
        """Handle the record at candidate ``s`` that the vector path could not take (the
        per-record path of :mod:`recordio_special`). Returns the next position and, if the
        file is damaged there, the damage."""
        return special_record(self, pos, words, cand, s, rows)


def _first_special(words: np.ndarray, cand: np.ndarray, before: int) -> Tuple[np.ndarray, int, int]:
    """(lengths, s, in_range) for a chunk's candidates ``cand``: records [0, s) are whole,
    single-part and followed by the next record; candidates [0, in_range) start in the chunk's
    first ``before`` bytes (before the scan's end). Candidate s is the first special one."""
    lrec = words[cand + 1]
    cflags = lrec >> 29
    lengths = (lrec & LENGTH_MASK).astype(np.int64)
    nxt = cand.astype(np.int64) + 2 + ((lengths + 3) >> 2)
    special = cflags != 0
    special[:-1] |= nxt[:-1] != cand[1:]
    special[-1] = True
    in_range = int(np.searchsorted(cand, (before + 3) // 4))
    if in_range < len(cand):
        special[in_range] = True
    return lengths, int(np.argmax(special)), in_range


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
