"""The label rules every format shares: one sample at a time for the list formats, vectorised
over a batch of records for RecordIO. What they learn (label shape, class counts) goes into the
channel's :class:`~.channel_stats.ChannelStats`."""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

from .channel_stats import ChannelStats
from .context import ValidationOptions
from .issues import IssueSink
from .recordio import location as record_location
from .recordio_scan import RecordBatch
from .samples import CLASS_ID, CLASS_IDS, MULTI_HOT, Sample, is_class_id

MAX_CLASSES = 100_000  # class ids must be below this


class LabelRules:
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
        shapes = [(int(np.argmax(mask)), mask, multi) for mask, multi in ((single, False), (is_multi, True)) if mask.any()]
        for first, mask, multi in sorted(shapes, key=lambda shape: shape[0]):  # the earlier record sets the shape
            where = record_location(name, int(batch.ordinals[first]), int(batch.offsets[first]))
            if not self._multi(multi, where):
                good &= ~mask
        if (single & good).any():
            self._class_id_rows(batch, name, values, np.flatnonzero(single & good), good)
        self._vector_rows(batch, name, good)
        return good

    def _class_id_rows(
        self, batch: RecordBatch, name: str, values: np.ndarray, rows: np.ndarray, good: np.ndarray
    ) -> None:
        """Check the class ids (``values``) of the single-label ``rows`` of a batch; the bad
        ones are cleared in ``good``."""
        v = values[rows]
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(v) | (v < 0) | (v != np.floor(v))
        n = self.options.num_classes
        out = np.zeros(len(rows), bool) if n is None else (~bad & (v >= n))
        huge = ~bad & ~out & (v >= MAX_CLASSES)  # before any cast: 1e19 does not fit an int64
        for r, code, message in (
            *((r, "LABEL_INVALID", "label {} is not a class id (an integer >= 0)") for r in rows[bad][:50]),
            *((r, "LABEL_OUT_OF_RANGE", "class id {} is not below num_classes " + str(n)) for r in rows[out][:50]),
            *((r, "TOO_MANY_CLASSES", f"class id {{}} is not below the limit of {MAX_CLASSES}") for r in rows[huge][:50]),
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
            ("TOO_MANY_CLASSES", int(huge.sum()) - 50),
        ):
            for _ in range(max(0, extra)):
                self.sink.report(count_code, "", name)
        good[rows[bad | out | huge]] = False
        self.stats.count(values[rows[~(bad | out | huge)]].astype(np.int64))

    def _vector_rows(self, batch: RecordBatch, name: str, good: np.ndarray) -> None:
        """Check the multi-hot labels of a batch, one label length at a time; the bad rows
        are cleared in ``good``."""
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
