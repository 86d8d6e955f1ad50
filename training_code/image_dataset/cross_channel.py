"""The rules over whole channels and across them, once every sample is counted: label shapes,
classes without samples, num_classes against the data, mini-batch size."""

from __future__ import annotations

from typing import Dict, Optional

from .channel_stats import ChannelStats
from .context import ValidationOptions
from .issues import IssueSink
from .label_names import LabelNames
from .label_rules import MAX_CLASSES


def num_classes(options: ValidationOptions, labels: LabelNames, stats: Dict[str, ChannelStats]) -> Optional[int]:
    """The number of classes: the option, else the class names, else what the labels use."""
    if options.num_classes is not None:
        return options.num_classes
    if labels.names:
        return len(labels.names)
    lengths = [s.vector_length for s in stats.values() if s.vector_length]
    if lengths:
        return max(lengths)
    seen = [max(s.class_counts) + 1 for s in stats.values() if s.class_counts]
    return max(seen) if seen else None


class CrossChannelRules:
    """Checks the channels' stats against each other and against the options."""

    def __init__(
        self,
        options: ValidationOptions,
        sink: IssueSink,
        stats: Dict[str, ChannelStats],
        labels: LabelNames,
        s3_unchecked: int,
    ) -> None:
        self.options = options
        self.sink = sink
        self.stats = stats
        self.labels = labels
        self.s3_unchecked = s3_unchecked

    def check(self) -> None:
        """Every rule, in the order the report lists their issues."""
        self._label_shapes()
        self._classes()
        self._sizes()

    def _num_classes(self) -> Optional[int]:
        return num_classes(self.options, self.labels, self.stats)

    def _label_shapes(self) -> None:
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
        names = self.labels.names
        if names and lengths and lengths[0].vector_length != len(names):
            self.sink.report(
                "NUM_CLASSES_MISMATCH",
                f"label vectors have {lengths[0].vector_length} values but the dataset names {len(names)} classes",
                lengths[0].channel.root or ".",
            )

    def _classes(self) -> None:
        """Validation classes must be trained; class names must cover the class ids; every
        class should have training samples."""
        o, names = self.options, self.labels.names
        train = self.stats.get("train")
        validation = self.stats.get("validation")
        if train and validation and train.class_counts:
            missing = sorted(set(validation.class_counts) - set(train.class_counts))
            if missing:
                self.sink.report(
                    "CLASS_NOT_IN_TRAIN",
                    f"classes {self.labels.describe(missing)} have validation samples but no training sample",
                    validation.channel.root or "validation",
                )
        if o.num_classes is not None and names is not None and len(names) != o.num_classes:
            self.sink.report(
                "NUM_CLASSES_MISMATCH",
                f"num_classes is {o.num_classes} but the dataset names {len(names)} classes",
                ".",
            )
        if self.labels.file and names:
            beyond = sorted({c for s in self.stats.values() for c in s.class_counts if c >= len(names)})
            if beyond:
                self.sink.report(
                    "LABEL_NAMES_INVALID",
                    f"names {len(names)} classes, but class ids {', '.join(map(str, beyond[:10]))} appear",
                    self.labels.file,
                )
        n = self._num_classes()
        if train and n and train.class_counts and n <= MAX_CLASSES:
            empty = sorted(set(range(n)) - set(train.class_counts))
            if empty:
                self.sink.report(
                    "CLASS_WITHOUT_SAMPLES",
                    f"classes {self.labels.describe(empty[:20])} have no training sample",
                    train.channel.root or ".",
                )

    def _sizes(self) -> None:
        """Channels smaller than a mini-batch; s3:// references that were not opened."""
        o = self.options
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
