"""What one channel holds: counts, class histogram, label shape and image sizes."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from .images import DecodeSummary
from .issues import IssueSink
from .layout import Channel

# a channel's label shape: multi-label or not (None before the first label), and the length of
# its multi-hot vectors (None before the first vector)
LabelShape = Tuple[Optional[bool], Optional[int]]


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

    @property
    def shape(self) -> LabelShape:
        return self.multi_label, self.vector_length

    def refuses(self, shape: LabelShape) -> bool:
        """Whether labels of ``shape`` (another part's) differ from the shape this channel has set."""
        multi, length = shape
        if multi is not None and self.multi_label is not None and multi != self.multi_label:
            return True
        return bool(length and self.vector_length and length != self.vector_length)

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
