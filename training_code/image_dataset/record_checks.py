"""The RecordIO checks: each record's framing, label and image, then, over a whole .rec, its
.idx and the uniqueness of the record ids. A scan keeps 24 bytes per good record
(:class:`Records`), never the payloads."""

from __future__ import annotations

import os
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .channel_stats import ChannelStats
from .context import Context, ValidationOptions
from .decode_queue import DECODE_BATCH, DecodeQueue
from .images import RangeJob, check_blobs, check_image, check_ranges
from .issues import IssueSink
from .label_rules import LabelRules
from .layout import Channel
from .recordio import UINT64_MAX, parse_idx, parse_idx_fast
from .recordio import location as record_location
from .recordio_scan import ChunkReader, RecordBatch, RecordIOScanner, report_repeats
from .store import Store, open_fd


class Records(NamedTuple):
    """The good records of a .rec, in file order: number, byte offset and header id."""

    ordinals: np.ndarray  # int64
    offsets: np.ndarray  # int64
    ids: np.ndarray  # uint64


class RecordTable:
    """Collects :class:`Records` batch by batch (24 bytes per record)."""

    def __init__(self) -> None:
        self.parts: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, batch: RecordBatch) -> None:
        self.parts.append((batch.ordinals, batch.offsets, batch.ids))

    def arrays(self) -> Records:
        if not self.parts:
            return Records(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint64))
        columns = [np.concatenate(column) for column in zip(*self.parts)]
        self.parts = []
        return Records(*(c.astype(t, copy=False) for c, t in zip(columns, (np.int64, np.int64, np.uint64))))


class RecordScan(NamedTuple):
    """What a scan of (part of) a .rec leaves for the checks over the whole file."""

    records: Records
    seen: int  # records seen, good or not (the next part's ordinals start here)
    stopped_at: int  # where the scan stopped: the next part must start there
    unescaped_magic: int
    nonzero_padding: int
    failed: bool = False  # the file could not be read to the end (reported)


class RecordChecks:
    """Checks the .rec files of a RecordIO channel, whole or a byte range at a time."""

    def __init__(self, context: Context, decodes: DecodeQueue) -> None:
        self.context = context
        self.decodes = decodes

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def options(self) -> ValidationOptions:
        return self.context.options

    @property
    def sink(self) -> IssueSink:
        return self.context.sink

    def check_channel(self, channel: Channel, stats: ChannelStats) -> None:
        """Check every .rec of a channel, each whole."""
        for rec in channel.files:
            size = self.size(rec, stats)
            if size:
                scan = self.scan(rec, size, stats)
                if not scan.failed:
                    self.check_file(rec, scan.records)

    def size(self, rec: str, stats: ChannelStats) -> int:
        """The size of a .rec (counted in the channel's bytes); 0, reported, when it is empty
        or cannot be read."""
        try:
            size = self.store.size(rec)
        except OSError as err:
            self.context.unreadable(err, rec)
            return 0
        stats.bytes += size
        if size == 0:
            self.sink.report("REC_EMPTY_FILE", "the file is empty", rec)
        return size

    def scan(self, rec: str, size: int, stats: ChannelStats, start: int = 0, end: Optional[int] = None) -> RecordScan:
        """Check the records that start in ``[start, end)`` of a .rec: framing, labels and
        images. A part of a file (``start > 0`` or ``end``) leaves the file's totals to the caller."""
        context = self.context
        rules = LabelRules(context.options, context.sink, stats)  # its state lives in stats
        local = context.store.local_path(rec)
        table = RecordTable()
        stop = size if end is None else end
        try:
            fd = open_fd(local) if local else None
        except OSError as err:
            context.unreadable(err, rec)
            return RecordScan(table.arrays(), 0, stop, 0, 0, failed=True)

        def read_at(offset: int, length: int) -> bytes:
            if fd is not None:
                return os.pread(fd, length, offset)
            return context.store.read_at(rec, offset, length)

        chunks = ChunkReader(fd) if fd is not None and hasattr(os, "preadv") else None
        scanner = RecordIOScanner(read_at, size, rec, context.sink, read_chunk=chunks)  # type: ignore[arg-type]
        failed = False
        try:
            for batch in scanner.scan(start, end, summarize=start == 0 and end is None):
                good = rules.records(batch, rec)
                good &= self._images(rec, local, batch, good, stats)
                stats.samples += int(good.sum())
                table.add(batch)
                context.progress(rec, int(batch.offsets[-1]) if len(batch) else 0, size)
            self.decodes.drain(stats)
        except OSError as err:
            context.unreadable(err, rec)
            failed = True
        finally:
            if fd is not None:
                os.close(fd)
        return RecordScan(
            table.arrays(),
            scanner.records,
            stop if failed else scanner.stopped_at,
            scanner.unescaped_magic,
            scanner.nonzero_padding,
            failed,
        )

    def check_parts(self, rec: str, records: Records, repeated: Sequence[int]) -> None:
        """The checks over a .rec scanned in parts: the totals of the warnings each part
        reported once (``repeated``: unescaped magic numbers, non-zero padding), then
        :meth:`check_file`."""
        report_repeats(self.sink, rec, *repeated)
        self.check_file(rec, records)

    def check_file(self, rec: str, records: Records) -> None:
        """The checks over all records of a .rec: its .idx, when there is one, and unique ids."""
        idx_path = rec[: -len(".rec")] + ".idx"
        if self.store.exists(idx_path):
            try:
                self._check_index(rec, idx_path, records)
            except OSError as err:
                self.context.unreadable(err, idx_path)
        self._duplicate_ids(rec, records)

    def _read_idx(self, idx_path: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, keys as uint64, line numbers) of a .idx, sorted by offset."""
        data = self.store.read(idx_path)
        fast = parse_idx_fast(data)
        if fast is not None:
            keys, offsets = fast
            lines = np.arange(1, len(keys) + 1, dtype=np.int64)
        else:
            entries = parse_idx(data, idx_path, self.sink)
            keys = np.array([e.key & UINT64_MAX for e in entries], np.uint64)  # -1 reads as 2**64 - 1 in C++
            offsets = np.array([e.offset for e in entries], np.int64)
            lines = np.array([e.line for e in entries], np.int64)
        order = np.argsort(offsets, kind="stable")
        return offsets[order], keys[order], lines[order]

    def _check_index(self, rec: str, idx_path: str, records: Records) -> None:
        offsets, keys, lines = self._read_idx(idx_path)
        if not len(offsets):
            if len(records.offsets):
                message = f"no entry for any of the {len(records.offsets)} records: delete the .idx or rebuild it"
                self.sink.report("IDX_EMPTY", message, idx_path)
            return
        pos = np.minimum(np.searchsorted(offsets, records.offsets), len(offsets) - 1)
        hit = offsets[pos] == records.offsets
        matched = np.zeros(len(offsets), bool)
        matched[pos[hit]] = True
        mismatch = np.flatnonzero(hit & (keys[pos] != records.ids))
        for n, r in enumerate(mismatch):  # the sink keeps 50 of a code and counts the rest
            self.sink.report(
                "IDX_KEY_MISMATCH",
                f"the .idx key is {int(keys[pos[r]])}, the record's header id {int(records.ids[r])}" if n < 50 else "",
                record_location(rec, int(records.ordinals[r]), int(records.offsets[r])),
            )
        bad = np.flatnonzero(~matched)
        size = self._size(rec) if len(bad) else None  # once: a remote store asks the service for it
        for n, i in enumerate(bad):
            self.sink.report(
                "IDX_BAD_OFFSET",
                _bad_offset(records, int(keys[i]), int(offsets[i]), offsets, keys, size) if n < 50 else "",
                f"{idx_path}:line {int(lines[i])}",
            )
        unindexed = int((~hit).sum())
        if unindexed:
            self.sink.report("IDX_MISSING_RECORD", f"{unindexed} records have no .idx entry", rec)

    def _size(self, rec: str) -> Optional[int]:
        """The .rec's size, or None when it is gone since its records were read (reported where
        it is read)."""
        try:
            return self.store.size(rec)
        except OSError:
            return None

    def _duplicate_ids(self, rec: str, records: Records) -> None:
        ids = records.ids
        if not len(ids):
            return
        if len(ids) > 1 and (ids == ids[0]).all():
            self.sink.report("IDS_NOT_SET", f"all {len(ids)} records have id {int(ids[0])}", rec)
            return
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1]) + 1
        for i in dup[:50]:
            first, again = int(order[i - 1]), int(order[i])
            self.sink.report(
                "DUPLICATE_ID",
                f"id {int(sorted_ids[i])} is also the id of record {int(records.ordinals[first])}",
                record_location(rec, int(records.ordinals[again]), int(records.offsets[again])),
            )
        for _ in range(max(0, len(dup) - 50)):
            self.sink.report("DUPLICATE_ID", "", rec)

    def _images(
        self, rec: str, local: Optional[str], batch: RecordBatch, good: np.ndarray, stats: ChannelStats
    ) -> np.ndarray:
        """Check image signatures now and queue full decodes; returns the rows whose image
        signature is JPEG or PNG."""
        heads = batch.image_heads
        jpeg = (heads & 0xFFFFFF) == 0xFFD8FF
        png = heads == 0x474E5089
        known = jpeg | png | (batch.image_offsets < 0)
        for r in np.flatnonzero(good & ~known)[:50]:
            where = record_location(rec, int(batch.ordinals[r]), int(batch.offsets[r]))
            if int(batch.image_lengths[r]) == 0:
                self.sink.report("IMG_EMPTY", "the record holds no image bytes", where)
            elif int(batch.image_offsets[r]) >= 0:
                head = self.store.read_at(rec, int(batch.image_offsets[r]), min(16, int(batch.image_lengths[r])))
                result = check_image(0, head, self.options.max_pixels)
                self.sink.report(result.code or "IMG_CORRUPT", result.message, where)
        if not self.options.decode_images:
            return known
        rows = np.flatnonzero(good & known)
        limits = self.decodes.limits()
        blobs = [
            (record_location(rec, int(batch.ordinals[r]), int(batch.offsets[r])), batch.images[r])
            for r in rows.tolist()
            if r in batch.images
        ]
        rows = rows[batch.image_offsets[rows] >= 0]
        for i in range(0, len(rows), DECODE_BATCH):
            part = rows[i : i + DECODE_BATCH]
            job = RangeJob(
                local or "",
                rec,
                batch.ordinals[part],
                batch.offsets[part],
                batch.image_offsets[part],
                batch.image_lengths[part],
                limits,
            )
            if local:
                self.decodes.submit(check_ranges, job, stats)
            else:
                data = [
                    (record_location(rec, int(t), int(r)), self.store.read_at(rec, int(o), int(n)))
                    for t, r, o, n in zip(job.records, job.record_offsets, job.offsets, job.lengths)
                ]
                self.decodes.submit(check_blobs, (data, limits), stats)
        if blobs:
            self.decodes.submit(check_blobs, (blobs, limits), stats)
        return known


def _bad_offset(
    records: Records, key: int, offset: int, offsets: np.ndarray, keys: np.ndarray, size: Optional[int]
) -> str:
    """What is at the byte a .idx entry points at, which is not a record of its own (``size``:
    the .rec's, when known)."""
    starts = records.offsets
    r = int(np.searchsorted(starts, offset, side="right")) - 1
    if r >= 0 and int(starts[r]) == offset:  # an earlier line indexes this record
        first = int(keys[int(np.searchsorted(offsets, offset))])
        return (
            f"key {key} points at byte {offset}, record {int(records.ordinals[r])}, which key {first} indexes already"
        )
    if size is not None and offset >= size:
        return f"key {key} points at byte {offset}, past the end of the .rec ({size} bytes)"
    if r < 0:
        return f"key {key} points at byte {offset}, where no record starts"
    inside = offset - int(starts[r])
    return (
        f"key {key} points at byte {offset}, where no record starts"
        f" ({inside} bytes after the start of record {int(records.ordinals[r])})"
    )
