"""The validation rules: one pass over every channel, one JSON report.

The same function runs in ``imgclf validate``, in the validator Lambda and as the training
job's pre-flight, so they can never disagree about what a valid dataset is. Memory stays
bounded: payloads are never held; per record 24 bytes (number, offset, id) and, for image
files, paths.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

import numpy as np

from .annotations import AnnotationsFile
from .images import (
    DEFAULT_MAX_PIXELS,
    DecodePool,
    DecodeSummary,
    Limits,
    RangeJob,
    check_blobs,
    check_files,
    check_image,
    check_ranges,
)
from .issues import CollectingSink, DatasetError, IssueSink
from .layout import (
    ANNOTATIONS,
    FOLDERS,
    LABELS_FILE,
    LST,
    MANIFEST,
    RECORDIO,
    Channel,
    discover,
    is_image_file,
    list_folder,
)
from .lst import parse_lst
from .manifest import AUTO, ManifestReader
from .recordio import location as record_location
from .recordio import parse_idx, parse_idx_fast
from .recordio_scan import ChunkReader, RecordBatch, RecordIOScanner
from .samples import CLASS_ID, CLASS_IDS, MULTI_HOT, Sample, is_class_id, printable, utf8_name
from .store import LocalStore, Store, access_problem

REPORT_VERSION = 1
MAX_CLASSES = 100_000  # class ids must be below this
DECODE_BATCH = 256  # images per decode job
Progress = Callable[[str, int, int], None]  # (what, done, total)


class ValidationOptions:
    """What the caller knows about the dataset and how deep to check."""

    def __init__(
        self,
        num_classes: Optional[int] = None,
        multi_label: Optional[bool] = None,
        image_shape: Optional[Tuple[int, int, int]] = None,
        resize: Optional[int] = None,
        mini_batch_size: Optional[int] = None,
        format: Optional[str] = None,
        decode_images: bool = True,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        label_attribute: Optional[str] = None,
        label_format: str = AUTO,
        allowed_buckets: Sequence[str] = (),
        workers: Optional[int] = None,
    ) -> None:
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.image_shape = image_shape
        self.resize = resize
        self.mini_batch_size = mini_batch_size
        self.format = format
        self.decode_images = decode_images
        self.max_pixels = max_pixels
        self.label_attribute = label_attribute
        self.label_format = label_format
        self.allowed_buckets = tuple(allowed_buckets)
        self.workers = workers

    def as_dict(self) -> Dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "multi_label": self.multi_label,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "resize": self.resize,
            "mini_batch_size": self.mini_batch_size,
            "format": self.format,
            "decode_images": self.decode_images,
            "max_pixels": self.max_pixels,
        }


class ChannelStats:
    """What one channel holds: counts, class histogram, image size range."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.samples = 0
        self.class_counts: Dict[int, int] = {}
        self.vector_length: Optional[int] = None  # multi-hot / RecordIO vector labels
        self.multi_label: Optional[bool] = None
        self.bytes = 0
        self.min_size: Optional[Tuple[int, int]] = None
        self.max_size: Optional[Tuple[int, int]] = None
        self.images_checked = 0

    def count(self, classes: np.ndarray, times: Optional[np.ndarray] = None) -> None:
        """Add class ids (or ids with their counts) to the histogram."""
        if times is None:
            times = np.bincount(classes) if len(classes) else np.zeros(0, np.int64)
            classes = np.arange(len(times))
        for value, n in zip(classes.tolist(), times.tolist()):
            if n:
                self.class_counts[int(value)] = self.class_counts.get(int(value), 0) + int(n)

    def add(self, summary: DecodeSummary) -> None:
        """Count a decode job's result: bad images stop counting as samples."""
        self.samples -= len(summary.problems)
        if not summary.checked:
            return
        self.images_checked += summary.checked
        low, high = (summary.min_width, summary.min_height), (summary.max_width, summary.max_height)
        if self.min_size is None or self.max_size is None:
            self.min_size, self.max_size = low, high
            return
        self.min_size = (min(self.min_size[0], low[0]), min(self.min_size[1], low[1]))
        self.max_size = (max(self.max_size[0], high[0]), max(self.max_size[1], high[1]))

    def to_state(self) -> Dict[str, Any]:
        """Everything in the stats, JSON-ready (see :meth:`from_state`)."""
        return {
            "channel": list(self.channel[:3]) + [list(self.channel.files)],
            "samples": self.samples,
            "class_counts": [[k, v] for k, v in sorted(self.class_counts.items())],
            "vector_length": self.vector_length,
            "multi_label": self.multi_label,
            "bytes": self.bytes,
            "min_size": list(self.min_size) if self.min_size else None,
            "max_size": list(self.max_size) if self.max_size else None,
            "images_checked": self.images_checked,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ChannelStats:
        name, format, root, files = state["channel"]
        stats = cls(Channel(name, format, root, tuple(files)))
        stats.samples = int(state["samples"])
        stats.class_counts = {int(k): int(v) for k, v in state["class_counts"]}
        stats.vector_length = state["vector_length"]
        stats.multi_label = state["multi_label"]
        stats.bytes = int(state["bytes"])
        stats.min_size = (state["min_size"][0], state["min_size"][1]) if state["min_size"] else None
        stats.max_size = (state["max_size"][0], state["max_size"][1]) if state["max_size"] else None
        stats.images_checked = int(state["images_checked"])
        return stats

    def merge(self, part: ChannelStats, sink: IssueSink, where: str) -> None:
        """Add the stats of another part of this channel (a shard); label shapes that differ
        between the parts are reported at ``where``, as one scan would have."""
        if part.multi_label is not None and self.multi_label is not None and part.multi_label != self.multi_label:
            sink.report("LABEL_SHAPE", "single-label and multi-label samples are mixed", where)
        elif self.multi_label is None:
            self.multi_label = part.multi_label
        if part.vector_length and self.vector_length and part.vector_length != self.vector_length:
            sink.report(
                "LABEL_SHAPE", f"label vector has {part.vector_length} values, expected {self.vector_length}", where
            )
        self.vector_length = self.vector_length or part.vector_length
        self.samples += part.samples
        self.bytes += part.bytes
        self.count(np.array(list(part.class_counts), np.int64), np.array(list(part.class_counts.values()), np.int64))
        if part.min_size and part.max_size:
            self.add(DecodeSummary(part.images_checked, *part.min_size, *part.max_size, []))

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "format": self.channel.format,
            "files": list(self.channel.files),
            "samples": self.samples,
            "multi_label": bool(self.multi_label),
            "class_counts": {str(k): v for k, v in sorted(self.class_counts.items())},
            "bytes": self.bytes,
            "images_checked": self.images_checked,
        }
        if self.min_size and self.max_size:
            out["image_size"] = {
                "min_width": self.min_size[0],
                "min_height": self.min_size[1],
                "max_width": self.max_size[0],
                "max_height": self.max_size[1],
            }
        return out


class _LabelRules:
    """Label checks shared by every format (scalar per sample, or vectorised for RecordIO)."""

    def __init__(self, options: ValidationOptions, sink: IssueSink, stats: ChannelStats) -> None:
        self.options = options
        self.sink = sink
        self.stats = stats

    def _multi(self, is_multi: bool, where: str) -> bool:
        wanted = self.options.multi_label
        if wanted is not None and wanted != is_multi:
            self.sink.report(
                "LABEL_SHAPE",
                "{} label but multi_label is {}".format("multi-label" if is_multi else "single", int(wanted)),
                where,
            )
            return False
        if self.stats.multi_label is None:
            self.stats.multi_label = is_multi
        elif self.stats.multi_label != is_multi:
            self.sink.report("LABEL_SHAPE", "single-label and multi-label samples are mixed", where)
            return False
        return True

    def _class_ids(self, values: Sequence[float], where: str) -> bool:
        for value in values:
            if not is_class_id(value):
                self.sink.report("LABEL_INVALID", f"label {value!r} is not a class id (an integer >= 0)", where)
                return False
            n = self.options.num_classes
            if n is not None and value >= n:
                self.sink.report("LABEL_OUT_OF_RANGE", f"class id {int(value)} is not below num_classes {n}", where)
                return False
        return True

    def _vector(self, values: Sequence[float], where: str) -> bool:
        if len(values) < 2:
            self.sink.report(
                "LABEL_SHAPE",
                f"a multi-hot vector of {len(values)} value(s): it needs one per class, at least 2 (RecordIO reads "
                "a one-value label as a class id)",
                where,
            )
            return False
        if not all(v in (0.0, 1.0) for v in values):
            self.sink.report("LABEL_NOT_MULTI_HOT", "multi-hot label holds values other than 0 and 1", where)
            return False
        expected = self.options.num_classes or self.stats.vector_length
        if expected is not None and len(values) != expected:
            self.sink.report(
                "LABEL_SHAPE",
                f"label vector has {len(values)} values, expected {expected}",
                where,
            )
            return False
        self.stats.vector_length = len(values)
        return True

    def sample(self, sample: Sample) -> bool:
        """Check one list-format sample and count it in the class histogram."""
        multi = sample.kind != CLASS_ID
        if not self._multi(multi, sample.location):
            return False
        if sample.kind == MULTI_HOT:
            if not self._vector(sample.labels, sample.location):
                return False
            classes = [i for i, v in enumerate(sample.labels) if v]
        else:
            if not sample.labels and sample.kind == CLASS_IDS:
                classes = []
            elif not self._class_ids(sample.labels, sample.location):
                return False
            classes = [int(v) for v in sample.labels]
            if len(set(classes)) != len(classes):
                twice = sorted(c for c, times in Counter(classes).items() if times > 1)
                self.sink.report(
                    "LABEL_INVALID",
                    "class id {} appears twice in the label list (a multi-hot vector? pass --label-format "
                    "multi-hot or --num-classes)".format(", ".join(map(str, twice[:5]))),
                    sample.location,
                )
                return False
        if classes and max(classes) >= MAX_CLASSES:
            self.sink.report(
                "TOO_MANY_CLASSES", f"class id {max(classes)} is not below the limit of {MAX_CLASSES}", sample.location
            )
            return False
        for c in classes:
            self.stats.class_counts[c] = self.stats.class_counts.get(c, 0) + 1
        return True

    def records(self, batch: RecordBatch, name: str) -> np.ndarray:
        """Check the labels of a RecordIO batch; returns the mask of rows that are good."""
        good = np.ones(len(batch), bool)
        single = batch.flags == 0
        one = batch.flags == 1
        values = batch.labels.astype(np.float64)
        if one.any():
            rows, vals = batch.vectors[1]
            values[rows] = vals[:, 0]
            single = single | one
        is_multi = ~single
        for mask, multi in ((single, False), (is_multi, True)):
            if mask.any():
                first = int(np.argmax(mask))
                where = record_location(name, int(batch.ordinals[first]), int(batch.offsets[first]))
                if not self._multi(multi, where):
                    good &= ~mask
        if (single & good).any():
            rows = np.flatnonzero(single & good)
            v = values[rows]
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(v) | (v < 0) | (v != np.floor(v))
            n = self.options.num_classes
            out = np.zeros(len(rows), bool) if n is None else (~bad & (v >= n))
            for r, code, message in (
                *((r, "LABEL_INVALID", "label {} is not a class id (an integer >= 0)") for r in rows[bad][:50]),
                *((r, "LABEL_OUT_OF_RANGE", "class id {} is not below num_classes " + str(n)) for r in rows[out][:50]),
            ):
                value = values[r]
                shown = int(value) if math.isfinite(value) and value == int(value) else value
                self.sink.report(
                    code,
                    message.format(shown),
                    record_location(name, int(batch.ordinals[r]), int(batch.offsets[r])),
                )
            for count_code, extra in (
                ("LABEL_INVALID", int(bad.sum()) - 50),
                ("LABEL_OUT_OF_RANGE", int(out.sum()) - 50),
            ):
                for _ in range(max(0, extra)):
                    self.sink.report(count_code, "", name)
            good[rows[bad | out]] = False
            ok = rows[~(bad | out)]
            classes = values[ok].astype(np.int64)
            if len(classes) and int(classes.max()) >= MAX_CLASSES:
                self.sink.report(
                    "TOO_MANY_CLASSES", f"class id {int(classes.max())} is not below the limit of {MAX_CLASSES}", name
                )
                good[ok] = False
            else:
                self.stats.count(classes)
        for flag, (rows, vals) in batch.vectors.items():
            if flag == 1:
                continue
            keep = good[rows]
            rows, vals = rows[keep], vals[keep]
            if not len(rows):
                continue
            where = record_location(name, int(batch.ordinals[rows[0]]), int(batch.offsets[rows[0]]))
            if not self._vector([0.0] * flag, where):  # length check once per flag value
                good[rows] = False
                continue
            binary = np.all((vals == 0) | (vals == 1), axis=1)
            for r in rows[~binary][:50]:
                self.sink.report(
                    "LABEL_NOT_MULTI_HOT",
                    "multi-hot label holds values other than 0 and 1",
                    record_location(name, int(batch.ordinals[r]), int(batch.offsets[r])),
                )
            good[rows[~binary]] = False
            self.stats.count(np.arange(flag), vals[binary].sum(axis=0).astype(np.int64))
        return good


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


class Validator:
    """Validates one dataset. ``run()`` returns the report (a JSON-ready dict)."""

    def __init__(
        self,
        store: Store,
        options: Optional[ValidationOptions] = None,
        single_file: Optional[str] = None,
        display_name: str = ".",
        progress: Optional[Progress] = None,
    ) -> None:
        self.store = store
        self.options = options or ValidationOptions()
        self.single_file = single_file
        self.display_name = display_name
        self.progress = progress or (lambda what, done, total: None)
        self.issues = CollectingSink()
        self.sink: IssueSink = self.issues
        self.label_names: Optional[List[str]] = None
        self.stats: Dict[str, ChannelStats] = {}
        self.s3_unchecked = 0
        self._current_stats: Optional[ChannelStats] = None
        self.label_names_file: Optional[str] = None  # a RecordIO channel's labels.json, when read
        # when a list: image files are collected here as (location, path) instead of decoded
        self.deferred_images: Optional[List[Tuple[str, str]]] = None
        self.pool = DecodePool(1)  # run() and the shard steps supply theirs
        self.unread_lists: Set[str] = set()  # list files that could not be read (reported)

    # -- entry point ----------------------------------------------------------------------
    def run(self) -> Dict[str, Any]:
        channels = self.channels()
        with DecodePool(self.options.workers) as pool:
            self.pool = pool
            for channel in channels:
                stats = ChannelStats(channel)
                self.stats[channel.name] = stats
                if channel.format == RECORDIO:
                    self._recordio(channel, stats)
                else:
                    self.list_channel(channel, stats)
        return self.finish()

    def channels(self) -> List[Channel]:
        """Find the channels and their class names (the first step of a run)."""
        channels = discover(self.store, self.options.format, self.sink, self.single_file)
        self._label_names(channels)
        return channels

    def finish(self) -> Dict[str, Any]:
        """The checks over whole channels and across them, once every sample is counted; the report."""
        for stats in self.stats.values():
            if stats.samples == 0:
                channel = stats.channel
                self.sink.report(
                    "CHANNEL_EMPTY", f"the {channel.name} channel holds no valid sample", channel.root or "."
                )
        self._cross_channel()
        return self.report()

    # -- state between the steps of a sharded run (see shards.py) ---------------------------
    def to_state(self) -> Dict[str, Any]:
        """What a run found so far, JSON-ready (for :meth:`from_state`)."""
        return {
            "display_name": self.display_name,
            "stats": [s.to_state() for s in self.stats.values()],
            "issues": self.issues.to_state(),
            "label_names": self.label_names,
            "label_names_file": self.label_names_file,
            "s3_unchecked": self.s3_unchecked,
        }

    @classmethod
    def from_state(cls, store: Store, options: ValidationOptions, state: Mapping[str, Any]) -> Validator:
        validator = cls(store, options, display_name=state["display_name"])
        for stats_state in state["stats"]:
            stats = ChannelStats.from_state(stats_state)
            validator.stats[stats.channel.name] = stats
        validator.issues.absorb(state["issues"])
        validator.label_names = state["label_names"]
        validator.label_names_file = state["label_names_file"]
        validator.s3_unchecked = state["s3_unchecked"]
        return validator

    def unreadable(self, err: OSError, path: str, what: str = "file") -> None:
        """Report an OSError met on the dataset's ``path`` (a file, or a folder being listed)
        as FILE_MISSING or FILE_UNREADABLE at the path it is about: never skipped, never raised."""
        code, message = access_problem(err, what)
        self.sink.report(code, message, printable(self.store.error_path(err, path) or "."))

    # -- label names ----------------------------------------------------------------------
    def _label_names(self, channels: List[Channel]) -> None:
        folder_channels = [c for c in channels if c.format == FOLDERS]
        if folder_channels:
            names: Set[str] = set()
            for c in folder_channels:
                names.update(posixpath.basename(d) for d in c.files)
            self.label_names = sorted(names)
        for channel in channels:
            path = posixpath.join(channel.root, LABELS_FILE) if channel.root else LABELS_FILE
            if channel.format != RECORDIO or not self.store.exists(path):
                continue
            listed = self._read_label_names(path)
            if listed is None:
                continue
            if self.label_names is None:
                self.label_names = listed
            elif listed != self.label_names:
                self.sink.report("LABEL_NAMES_INVALID", "differs from the other channel's class names", path)

    def _read_label_names(self, path: str) -> Optional[List[str]]:
        """The class names of a RecordIO channel's labels.json (a JSON list, index = class id)."""
        try:
            names = json.loads(self.store.read(path).decode("utf-8"))
        except OSError as err:
            self.unreadable(err, path)
            return None
        except (UnicodeDecodeError, ValueError) as err:
            self.sink.report("LABEL_NAMES_INVALID", f"not a JSON list of class names: {err}", path)
            return None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            self.sink.report("LABEL_NAMES_INVALID", "must be a non-empty JSON list of non-empty strings", path)
            return None
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})[:5]
            self.sink.report("LABEL_NAMES_INVALID", "names appear twice: " + ", ".join(twice), path)
            return None
        self.label_names_file = path
        return names

    # -- RecordIO -------------------------------------------------------------------------
    def _recordio(self, channel: Channel, stats: ChannelStats) -> None:
        for rec in channel.files:
            size = self.rec_size(rec, stats)
            if size:
                scan = self.scan_records(rec, size, stats)
                if not scan.failed:
                    self.check_records(rec, scan.records)

    def rec_size(self, rec: str, stats: ChannelStats) -> int:
        """The size of a .rec (counted in the channel's bytes); 0, reported, when it is empty
        or cannot be read."""
        try:
            size = self.store.size(rec)
        except OSError as err:
            self.unreadable(err, rec)
            return 0
        stats.bytes += size
        if size == 0:
            self.sink.report("REC_EMPTY_FILE", "the file is empty", rec)
        return size

    def scan_records(
        self, rec: str, size: int, stats: ChannelStats, start: int = 0, end: Optional[int] = None
    ) -> RecordScan:
        """Check the records that start in ``[start, end)`` of a .rec: framing, labels and
        images. A part of a file (``start > 0`` or ``end``) leaves the file's totals to the caller."""
        rules = _LabelRules(self.options, self.sink, stats)  # its state lives in stats
        self._current_stats = stats
        local = self.store.local_path(rec)
        table = RecordTable()
        stop = size if end is None else end
        try:
            fd = os.open(local, os.O_RDONLY) if local else None
        except OSError as err:
            self.unreadable(err, rec)
            return RecordScan(table.arrays(), 0, stop, 0, 0, failed=True)

        def read_at(offset: int, length: int) -> bytes:
            if fd is not None:
                return os.pread(fd, length, offset)
            return self.store.read_at(rec, offset, length)

        chunks = ChunkReader(fd) if fd is not None and hasattr(os, "preadv") else None
        scanner = RecordIOScanner(read_at, size, rec, self.sink, read_chunk=chunks)  # type: ignore[arg-type]
        failed = False
        try:
            for batch in scanner.scan(start, end, summarize=start == 0 and end is None):
                good = rules.records(batch, rec)
                good &= self._record_images(rec, local, batch, good)
                stats.samples += int(good.sum())
                table.add(batch)
                self.progress(rec, int(batch.offsets[-1]) if len(batch) else 0, size)
            self._drain(stats)
        except OSError as err:
            self.unreadable(err, rec)
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

    def check_records(self, rec: str, records: Records) -> None:
        """The checks over all records of a .rec: its .idx, when there is one, and unique ids."""
        idx_path = rec[: -len(".rec")] + ".idx"
        if self.store.exists(idx_path):
            try:
                self._check_index(rec, idx_path, records)
            except OSError as err:
                self.unreadable(err, idx_path)
        self._duplicate_ids(rec, records)

    def _read_idx(self, idx_path: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, keys, line numbers) of a .idx, sorted by offset."""
        data = self.store.read(idx_path)
        fast = parse_idx_fast(data)
        if fast is not None:
            keys, offsets = fast
            lines = np.arange(1, len(keys) + 1, dtype=np.int64)
        else:
            entries = parse_idx(data, idx_path, self.sink)
            keys = np.array([e.key for e in entries], np.int64)
            offsets = np.array([e.offset for e in entries], np.int64)
            lines = np.array([e.line for e in entries], np.int64)
        order = np.argsort(offsets, kind="stable")
        return offsets[order], keys[order], lines[order]

    def _check_index(self, rec: str, idx_path: str, records: Records) -> None:
        offsets, keys, lines = self._read_idx(idx_path)
        if not len(offsets):
            if len(records.offsets):
                self.sink.report("IDX_MISSING_RECORD", f"{len(records.offsets)} records have no .idx entry", rec)
            return
        pos = np.minimum(np.searchsorted(offsets, records.offsets), len(offsets) - 1)
        hit = offsets[pos] == records.offsets
        matched = np.zeros(len(offsets), bool)
        matched[pos[hit]] = True
        mismatch = hit & (keys[pos].astype(np.uint64) != records.ids)
        if mismatch.any():
            r = int(np.argmax(mismatch))
            self.sink.report(
                "IDX_KEY_MISMATCH",
                f"the .idx key is {int(keys[pos[r]])}, the record's header id {int(records.ids[r])}",
                record_location(rec, int(records.ordinals[r]), int(records.offsets[r])),
            )
        for i in np.flatnonzero(~matched)[:50]:
            self.sink.report(
                "IDX_BAD_OFFSET",
                f"key {int(keys[i])} points at byte {int(offsets[i])}, where no record starts",
                f"{idx_path}:line {int(lines[i])}",
            )
        unindexed = int((~hit).sum())
        if unindexed:
            self.sink.report("IDX_MISSING_RECORD", f"{unindexed} records have no .idx entry", rec)

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

    def _record_images(self, rec: str, local: Optional[str], batch: RecordBatch, good: np.ndarray) -> np.ndarray:
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
        limits = self._limits()
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
                self._handle(self.pool.submit(check_ranges, job))
            else:
                data = [
                    (record_location(rec, int(t), int(r)), self.store.read_at(rec, int(o), int(n)))
                    for t, r, o, n in zip(job.records, job.record_offsets, job.offsets, job.lengths)
                ]
                self._handle(self.pool.submit(check_blobs, (data, limits)))
        if blobs:
            self._handle(self.pool.submit(check_blobs, (blobs, limits)))
        return known

    def _limits(self) -> Limits:
        shape = self.options.image_shape
        if shape and not self.options.resize:
            return Limits(self.options.max_pixels, shape[2], shape[1])
        return Limits(self.options.max_pixels)

    # -- decode results -------------------------------------------------------------------
    def _handle(self, summaries: Iterator[DecodeSummary]) -> None:
        stats = self._current_stats
        assert stats is not None
        for summary in summaries:
            stats.add(summary)
            for problem in summary.problems:
                self.sink.report(problem.code, problem.message, problem.location)

    def _drain(self, stats: ChannelStats) -> None:
        self._current_stats = stats
        self._handle(self.pool.drain())

    # -- list formats ---------------------------------------------------------------------
    def samples(self, channel: Channel) -> Iterator[Sample]:
        """The samples a list-format channel declares (problems go to the validator's sink)."""
        o = self.options
        if channel.format == FOLDERS:
            index = {name: i for i, name in enumerate(self.label_names or [])}
            for class_dir in channel.files:
                label = float(index[posixpath.basename(class_dir)])
                try:
                    for path in self.store.walk_files(class_dir):
                        if posixpath.basename(path).startswith(".") or not utf8_name(path, self.sink):
                            continue
                        if is_image_file(path):
                            yield Sample(path, (label,), CLASS_ID, path)
                        else:
                            self.sink.report("FILE_EXTRA", "not a .jpg/.jpeg/.png image; ignored", printable(path))
                except OSError as err:
                    self.unreadable(err, class_dir, "folder")
            return
        for path in channel.files:
            try:
                data = self.store.read(path)
            except OSError as err:
                self.unreadable(err, path)
                self.unread_lists.add(path)
                continue
            self.stats[channel.name].bytes += len(data)
            if channel.format == LST:
                yield from parse_lst(data, path, channel.root, self.sink)
            elif channel.format == MANIFEST:
                reader = ManifestReader(
                    path,
                    posixpath.dirname(path) if self.single_file else channel.root,
                    self.sink,
                    o.label_attribute,
                    o.label_format,
                    o.num_classes,
                    o.allowed_buckets,
                )
                yield from reader.parse(data)
                self.s3_unchecked += reader.s3_references
                self._merge_names(path, self._manifest_names(path, reader))
            elif channel.format == ANNOTATIONS:
                ann = AnnotationsFile(data, path, posixpath.dirname(path), self.sink)
                names = ann.label_names or None
                yield from ann.samples()
                self._merge_names(path, names)

    def _manifest_names(self, path: str, reader: ManifestReader) -> Optional[List[str]]:
        """The class names a manifest's metadata gives, by id, for every class id up to the
        largest one named or used; an id without a ``class-name`` is named by its number, as
        unnamed classes are everywhere. They become labels.json when the dataset is packed, so
        they must be unique there too."""
        named = reader.label_names
        if not named:
            return None
        top = max(max(named), reader.max_class_id)
        names = [named[i] if named.get(i, "").strip() else str(i) for i in range(top + 1)]
        twice = sorted(n for n, times in Counter(names).items() if times > 1)
        if twice:
            self.sink.report(
                "LABEL_NAMES_INVALID",
                "the metadata gives two class ids one class name (or the number of another unnamed id): "
                + ", ".join(twice[:5]),
                path,
            )
            return None
        return names

    def _merge_names(self, path: str, names: Optional[List[str]]) -> None:
        if names is None:
            return
        # the first names, or a channel that names more classes than the others so far
        if self.label_names is None or names[: len(self.label_names)] == self.label_names:
            self.label_names = names
        elif self.label_names[: len(names)] != names:  # not the first classes of the other channel
            self.sink.report(
                "FORMAT_MISMATCH",
                f"label names {names[:10]} differ from the other channel's {self.label_names[:10]}",
                path,
            )

    def list_channel(self, channel: Channel, stats: ChannelStats) -> None:
        """Check a list-format channel: its lists, labels and image files (decoded unless
        ``deferred_images`` collects them)."""
        rules = _LabelRules(self.options, self.sink, stats)
        self._current_stats = stats
        referenced: Set[str] = set()
        keys: Dict[int, str] = {}
        pending: List[Tuple[str, str]] = []
        for sample in self.samples(channel):
            if sample.key is not None:
                if sample.key in keys:
                    self.sink.report(
                        "DUPLICATE_ID", f"index {sample.key} is also used at {keys[sample.key]}", sample.location
                    )
                    continue
                keys[sample.key] = sample.location
            if sample.path.startswith("s3://"):
                if rules.sample(sample):
                    stats.samples += 1
                continue
            if sample.path in referenced:
                self.sink.report("DUPLICATE_PATH", f"{sample.path} is listed again", sample.location)
                continue
            referenced.add(sample.path)
            if not self.store.exists(sample.path) or self.store.is_dir(sample.path):
                self._missing_image(sample)
                continue
            if not self.options.decode_images and not self._openable(sample):
                continue
            if not rules.sample(sample):
                continue
            stats.samples += 1
            if not self.options.decode_images:
                continue
            pending.append((sample.location, sample.path))
            if len(pending) == DECODE_BATCH:
                self._submit_files(pending)
                pending = []
                self.progress(channel.name, stats.samples, 0)
        if pending:
            self._submit_files(pending)
        self._drain(stats)
        if not self.unread_lists & set(channel.files):  # unlisted images say nothing then
            self._extra_files(channel, referenced)

    def _openable(self, sample: Sample) -> bool:
        """Whether a local image file can be opened (what a decode would find out first);
        reported when it cannot. Remote stores are not asked: opening costs a request."""
        local = self.store.local_path(sample.path)
        if local is None:
            return True
        try:
            os.close(os.open(local, os.O_RDONLY))
        except OSError as err:
            code, message = access_problem(err)
            self.sink.report(code, f"image {sample.path}: {message}", sample.location)
            return False
        return True

    def _missing_image(self, sample: Sample) -> None:
        """Say why a listed image cannot be opened: absent, a folder, a broken symbolic link,
        or hidden by a folder's permissions."""
        path = sample.path
        local = self.store.local_path(path)
        if self.store.is_dir(path):
            message = f"image {path} is a folder"
        elif local is not None and os.path.islink(local) and not os.path.exists(local):
            message = f"image {path} is a broken symbolic link (to {os.readlink(local)})"
        else:
            message = f"image {path} does not exist"
            try:
                self.store.size(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                self.sink.report("FILE_UNREADABLE", f"cannot read image {path}: {err.strerror or err}", sample.location)
                return
        self.sink.report("FILE_MISSING", message, sample.location)

    def check_images(self, stats: ChannelStats, files: List[Tuple[str, str]]) -> None:
        """Decode image files, given as (location, path), and count them in ``stats``."""
        self._current_stats = stats
        for first in range(0, len(files), DECODE_BATCH):
            self._submit_files(files[first : first + DECODE_BATCH])
        self._drain(stats)

    def _submit_files(self, files: List[Tuple[str, str]]) -> None:
        if self.deferred_images is not None:
            self.deferred_images.extend(files)
            return
        local = [(where, self.store.local_path(p)) for where, p in files]
        if all(path is not None for _, path in local):
            self._handle(self.pool.submit(check_files, (local, self._limits())))
        else:
            data = list(zip([where for where, _ in files], self.store.read_many([p for _, p in files])))
            self._handle(self.pool.submit(check_blobs, (data, self._limits())))

    def _extra_files(self, channel: Channel, referenced: Set[str]) -> None:
        if channel.format == FOLDERS or self.single_file:
            if channel.format == FOLDERS:
                for name in list_folder(self.store, channel.root, self.sink) or []:
                    path = posixpath.join(channel.root, name) if channel.root else name
                    if not self.store.is_dir(path) and is_image_file(path):
                        self.sink.report("FILE_EXTRA", "image outside any class folder; ignored", printable(path))
            return
        try:
            extra = [
                p
                for p in self.store.walk_files(channel.root)
                if is_image_file(p) and p not in referenced and not posixpath.basename(p).startswith(".")
            ]
        except OSError as err:
            self.unreadable(err, channel.root, "folder")
            return
        for path in map(printable, extra[:20]):
            self.sink.report(
                "FILE_EXTRA", "image not listed in {}; it will not be used".format(", ".join(channel.files)), path
            )
        if len(extra) > 20:
            self.sink.report("FILE_EXTRA", f"{len(extra) - 20} more images not listed", channel.root or ".")

    # -- across channels ------------------------------------------------------------------
    def _num_classes(self) -> Optional[int]:
        if self.options.num_classes is not None:
            return self.options.num_classes
        if self.label_names:
            return len(self.label_names)
        lengths = [s.vector_length for s in self.stats.values() if s.vector_length]
        if lengths:
            return max(lengths)
        seen = [max(s.class_counts) + 1 for s in self.stats.values() if s.class_counts]
        return max(seen) if seen else None

    def _label_shapes_across_channels(self) -> None:
        """Every channel packs and trains with one label shape: single- or multi-label, and
        one vector length."""
        shaped = [s for s in self.stats.values() if s.multi_label is not None]
        if len({s.multi_label for s in shaped}) > 1:
            multi = next(s for s in shaped if s.multi_label)
            self.sink.report(
                "LABEL_SHAPE",
                f"the {multi.channel.name} channel is multi-label, the others single-label",
                multi.channel.root or ".",
            )
        lengths = [s for s in self.stats.values() if s.vector_length]
        if len({s.vector_length for s in lengths}) > 1:
            first, last = lengths[0], lengths[-1]
            self.sink.report(
                "LABEL_SHAPE",
                f"label vectors have {first.vector_length} values in the {first.channel.name} channel but "
                f"{last.vector_length} in the {last.channel.name} channel",
                last.channel.root or ".",
            )
        n = self._num_classes()
        if any(s.multi_label for s in shaped) and (n is None or n < 2):
            self.sink.report(
                "LABEL_SHAPE",
                "multi-label samples need at least 2 classes for their multi-hot vectors; "
                + ("the data names no class id: pass --num-classes" if n is None else f"the data has {n}"),
                ".",
            )
        names = self.label_names
        if names and lengths and lengths[0].vector_length != len(names):
            self.sink.report(
                "NUM_CLASSES_MISMATCH",
                f"label vectors have {lengths[0].vector_length} values but the dataset names {len(names)} classes",
                lengths[0].channel.root or ".",
            )

    def _cross_channel(self) -> None:
        o = self.options
        train = self.stats.get("train")
        validation = self.stats.get("validation")
        self._label_shapes_across_channels()
        if train and validation and train.class_counts:
            missing = sorted(set(validation.class_counts) - set(train.class_counts))
            if missing:
                self.sink.report(
                    "CLASS_NOT_IN_TRAIN",
                    f"classes {self._names(missing)} have validation samples but no training sample",
                    validation.channel.root or "validation",
                )
        if o.num_classes is not None and self.label_names is not None and len(self.label_names) != o.num_classes:
            self.sink.report(
                "NUM_CLASSES_MISMATCH",
                f"num_classes is {o.num_classes} but the dataset names {len(self.label_names)} classes",
                ".",
            )
        if self.label_names_file and self.label_names:
            beyond = sorted({c for s in self.stats.values() for c in s.class_counts if c >= len(self.label_names)})
            if beyond:
                self.sink.report(
                    "LABEL_NAMES_INVALID",
                    f"names {len(self.label_names)} classes, but class ids {', '.join(map(str, beyond[:10]))} appear",
                    self.label_names_file,
                )
        n = self._num_classes()
        if train and n and train.class_counts and n <= MAX_CLASSES:
            empty = sorted(set(range(n)) - set(train.class_counts))
            if empty:
                self.sink.report(
                    "CLASS_WITHOUT_SAMPLES",
                    f"classes {self._names(empty[:20])} have no training sample",
                    train.channel.root or ".",
                )
        if o.mini_batch_size:
            for stats in self.stats.values():
                if 0 < stats.samples < o.mini_batch_size:
                    self.sink.report(
                        "TOO_FEW_SAMPLES",
                        f"the {stats.channel.name} channel has {stats.samples} valid samples, fewer than mini_batch_size {o.mini_batch_size}",
                        stats.channel.root or ".",
                    )
        if self.s3_unchecked and not o.allowed_buckets:
            self.sink.report(
                "PATH_NOT_CHECKED",
                f"{self.s3_unchecked} s3:// references were not opened; validate in AWS or pass --allow-bucket",
                ".",
            )

    def _names(self, classes: List[int]) -> str:
        if self.label_names:
            return ", ".join(f"{c} ({self.label_names[c]})" if c < len(self.label_names) else str(c) for c in classes)
        return ", ".join(str(c) for c in classes)

    # -- the report -----------------------------------------------------------------------
    def report(self) -> Dict[str, Any]:
        multi = any(s.multi_label for s in self.stats.values())
        return {
            "version": REPORT_VERSION,
            "dataset": self.display_name,
            "valid": self.issues.error_count == 0,
            "channels": {name: s.as_dict() for name, s in self.stats.items()},
            "num_classes": self._num_classes(),
            "label_names": self.label_names,
            "multi_label": multi,
            "options": self.options.as_dict(),
            "errors": [i.as_dict() for i in self.issues.errors],
            "warnings": [i.as_dict() for i in self.issues.warnings],
            "counts": dict(sorted(self.issues.counts.items())),
        }


def validate_path(
    path: str, options: Optional[ValidationOptions] = None, progress: Optional[Progress] = None
) -> Dict[str, Any]:
    """Validate a dataset root, a channel folder, or one file on the local disk."""
    path = os.path.abspath(path)
    if os.path.isfile(path):
        root, name = os.path.split(path)
        return Validator(LocalStore(root), options, single_file=name, display_name=path, progress=progress).run()
    return Validator(LocalStore(path), options, display_name=path, progress=progress).run()


class DatasetIndex(NamedTuple):
    """A validated list-format dataset in memory: its samples per channel and label map."""

    store: Store
    report: Dict[str, Any]
    channels: Dict[str, Tuple[Channel, List[Sample]]]
    label_names: Optional[List[str]]
    num_classes: Optional[int]


def _unchanged(stats: ChannelStats, found: int) -> None:
    """DatasetError when a channel read again holds other samples than the validation counted:
    files deleted or added meanwhile (what is packed must be what was validated)."""
    if found == stats.samples:
        return
    where = stats.channel.root or "."
    if found < stats.samples:
        raise DatasetError(
            "FILE_MISSING",
            f"{stats.samples - found} of the {stats.samples} validated samples are gone (deleted while the "
            "dataset was read); validate again",
            where,
        )
    raise DatasetError(
        "FILE_EXTRA", f"{found - stats.samples} samples were added while the dataset was read; validate again", where
    )


def load_index(
    path: str, options: Optional[ValidationOptions] = None, progress: Optional[Progress] = None
) -> DatasetIndex:
    """Validate a list-format dataset, then read its samples (only when it is valid)."""
    path = os.path.abspath(path)
    single = None
    root = path
    if os.path.isfile(path):
        root, single = os.path.split(path)
    validator = Validator(LocalStore(root), options, single_file=single, display_name=path, progress=progress)
    report = validator.run()
    channels: Dict[str, Tuple[Channel, List[Sample]]] = {}
    if report["valid"]:
        validator.sink = IssueSink()  # raise on anything unexpected from here on
        for name, stats in validator.stats.items():
            if stats.channel.format != RECORDIO:
                samples = list(validator.samples(stats.channel))
                _unchanged(stats, len(samples))
                channels[name] = (stats.channel, samples)
    num_classes = report["num_classes"]
    return DatasetIndex(
        validator.store, report, channels, validator.label_names, num_classes if isinstance(num_classes, int) else None
    )
