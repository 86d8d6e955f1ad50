"""The validation rules: one pass over every channel, one JSON report.

The same function runs in ``imgclf validate``, in the validator Lambda and as the training
job's pre-flight, so they can never disagree about what a valid dataset is. Memory stays
bounded: payloads are never held; per record 24 bytes (number, offset, id) and, for image
files, paths.

:class:`Validator` runs the checks that live in their own modules: the label rules
(:mod:`.label_rules`, :mod:`.label_names`), RecordIO (:mod:`.record_checks`), the list formats
(:mod:`.list_checks`), image decodes (:mod:`.decode_queue`), the rules across channels
(:mod:`.cross_channel`) and the report (:mod:`.findings`). Besides :meth:`Validator.run`, it
offers the three steps of a sharded run (:mod:`.shards`): plan, check, merge.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .channel_stats import ChannelStats, LabelShape
from .context import Context, Progress, ValidationOptions
from .decode_queue import DECODE_BATCH, DecodeQueue
from .findings import REPORT_VERSION, Findings
from .issues import CollectingSink, DatasetError, IssueSink
from .label_rules import MAX_CLASSES
from .layout import LIST_FOLDERS, RECORDIO, Channel, discover
from .list_checks import ListChecks
from .record_checks import RecordChecks, Records, RecordScan, RecordTable
from .samples import Sample
from .store import LocalStore, Store

__all__ = [
    "DECODE_BATCH",
    "MAX_CLASSES",
    "REPORT_VERSION",
    "ChannelPlan",
    "ChannelStats",
    "DatasetIndex",
    "Progress",
    "RecordCutter",
    "RecordScan",
    "RecordTable",
    "Records",
    "ValidationOptions",
    "Validator",
    "load_index",
    "validate_path",
]

RecordCutter = Callable[[str, int], List[Tuple[int, int]]]  # (.rec, size) -> its [start, end) ranges


class ChannelPlan(NamedTuple):
    """What the plan step leaves of a channel to the shards."""

    ranges: List[Tuple[str, int, int]]  # (.rec, start, end): byte ranges of the channel's .rec files
    images: List[Tuple[str, str]]  # (location, path): the image files its lists name, not decoded yet


class Validator:
    """Validates one dataset. ``run()`` returns the report (a JSON-ready dict).

    A sharded run uses the same object in three steps, each in its own process if need be:
    :meth:`plan_channel` and :meth:`to_state`; :meth:`check_images` or :meth:`check_records`
    per shard; :meth:`from_state`, :meth:`merge` per shard, :meth:`merge_file` per .rec, and
    :meth:`finish`."""

    def __init__(
        self,
        store: Store,
        options: Optional[ValidationOptions] = None,
        single_file: Optional[str] = None,
        display_name: str = ".",
        progress: Optional[Progress] = None,
    ) -> None:
        self._context = Context(store, options or ValidationOptions(), single_file, progress)
        self._findings = Findings(display_name)
        self._decodes = DecodeQueue(self._context)
        self._records = RecordChecks(self._context, self._decodes)
        self._lists = ListChecks(self._context, self._findings, self._decodes)

    # -- what it validates and what it found (read-only) ----------------------------------
    @property
    def store(self) -> Store:
        return self._context.store

    @property
    def options(self) -> ValidationOptions:
        return self._context.options

    @property
    def issues(self) -> CollectingSink:
        """Every issue reported so far."""
        return self._context.issues

    @property
    def stats(self) -> Mapping[str, ChannelStats]:
        """The stats of each channel checked so far."""
        return self._findings.stats

    @property
    def label_names(self) -> Optional[List[str]]:
        return self._findings.labels.names

    # -- one process ----------------------------------------------------------------------
    def run(self) -> Dict[str, Any]:
        """Check every channel, then across channels; the report."""
        channels = self.channels()
        with self._decodes.running():
            for channel in channels:
                self.check_channel(channel)
        return self.finish()

    def channels(self) -> List[Channel]:
        """Find the channels and their class names (the first step of a run)."""
        context = self._context
        channels = discover(context.store, context.options.format, context.sink, context.single_file)
        self._findings.labels.read_layout(context, channels)
        return channels

    def check_channel(self, channel: Channel) -> ChannelStats:
        """Check one channel, images included; its stats."""
        stats = self._findings.add_channel(channel)
        if channel.format == RECORDIO:
            self._records.check_channel(channel, stats)
        else:
            self._lists.check_channel(channel, stats)
        return stats

    def finish(self) -> Dict[str, Any]:
        """The checks over whole channels and across them, once every sample is counted; the report."""
        context = self._context
        return self._findings.finish(context.options, context.sink, context.issues)

    def report(self) -> Dict[str, Any]:
        """The report of what was found so far, without the checks of :meth:`finish`."""
        return self._findings.report(self._context.options, self._context.issues)

    def unreadable(self, err: OSError, path: str, what: str = "file") -> None:
        """Report an OSError met on the dataset's ``path`` (a file, or a folder being listed)
        as FILE_MISSING or FILE_UNREADABLE at the path it is about: never skipped, never raised."""
        self._context.unreadable(err, path, what)

    def samples(self, channel: Channel) -> Iterator[Sample]:
        """The samples a list-format channel declares (problems are reported)."""
        return self._lists.samples(channel)

    def validated_samples(self) -> Dict[str, Tuple[Channel, List[Sample]]]:
        """The samples of every list-format channel, read again after a valid run. Anything
        reported now raises :class:`~.issues.DatasetError`, and so does a channel whose
        samples changed since they were counted."""
        self._context.sink = IssueSink()  # raise on anything unexpected from here on
        channels: Dict[str, Tuple[Channel, List[Sample]]] = {}
        for name, stats in self._findings.stats.items():
            if stats.channel.format != RECORDIO:
                samples = list(self.samples(stats.channel))
                _unchanged(stats, len(samples))
                channels[name] = (stats.channel, samples)
        return channels

    # -- sharded, step 1: plan ------------------------------------------------------------
    def plan_channel(self, channel: Channel, cut: RecordCutter) -> ChannelPlan:
        """Check what is cheap to check of a channel (its lists and labels, each .rec's size)
        and leave the rest to shards: the byte ranges ``cut`` divides each .rec into, or the
        image files the lists name."""
        stats = self._findings.add_channel(channel)
        if channel.format != RECORDIO:
            images: List[Tuple[str, str]] = []
            self._lists.check_channel(channel, stats, deferred=images)
            return ChannelPlan([], images)
        ranges: List[Tuple[str, int, int]] = []
        for rec in channel.files:
            size = self._records.size(rec, stats)
            try:
                ranges.extend((rec, start, end) for start, end in (cut(rec, size) if size else []))
            except OSError as err:
                self.unreadable(err, rec)
        return ChannelPlan(ranges, [])

    def to_state(self) -> Dict[str, Any]:
        """What a run found so far, JSON-ready (for :meth:`from_state`)."""
        return self._findings.to_state(self._context.issues)

    # -- sharded, step 2: check a shard ---------------------------------------------------
    def check_images(self, channel: Channel, files: List[Tuple[str, str]]) -> Dict[str, Any]:
        """Decode image files of ``channel``, given as (location, path); what they hold and
        the problems found, JSON-ready (for :meth:`merge`)."""
        stats = ChannelStats(channel)
        with self._decodes.running():
            self._decodes.check_images(stats, files)
        return {"stats": stats.to_state(), "issues": self.issues.to_state()}

    def check_records(
        self,
        channel: Channel,
        rec: str,
        start: int = 0,
        end: Optional[int] = None,
        shape: Optional[LabelShape] = None,
    ) -> Tuple[Dict[str, Any], Records]:
        """Check the records of ``rec`` that start in ``[start, end)``: the part's result,
        JSON-ready (for :meth:`merge`: ``start``, ``count`` of records seen, ``stopped_at``,
        ``repeated`` warning counts), and its good records (for :meth:`merge_file`).
        ``shape`` is the label shape the channel's earlier records set: records of another shape
        are then refused as one scan of the whole channel refuses them."""
        stats = ChannelStats(channel)
        if shape is not None:
            stats.multi_label, stats.vector_length = shape
        with self._decodes.running():
            scan = self._records.scan(rec, self.store.size(rec), stats, start, end)
        partial = {
            "stats": stats.to_state(),
            "issues": self.issues.to_state(),
            "start": start,
            "count": scan.seen,
            "stopped_at": scan.stopped_at,
            "repeated": [scan.unescaped_magic, scan.nonzero_padding],
        }
        return partial, scan.records

    # -- sharded, step 3: merge -----------------------------------------------------------
    @classmethod
    def from_state(cls, store: Store, options: ValidationOptions, state: Mapping[str, Any]) -> Validator:
        """The validator :meth:`to_state` saved, ready to merge shards into."""
        validator = cls(store, options, display_name=state["display_name"])
        validator._findings.load(state, validator.issues)
        return validator

    def merge(
        self,
        channel: str,
        partial: Mapping[str, Any],
        where: Optional[str] = None,
        relocate: Callable[[str], str] = str,
        skip: Sequence[str] = (),
    ) -> None:
        """Add a shard's result to ``channel``: its issues (locations rewritten by ``relocate``,
        the codes in ``skip`` left out) and its stats; label shapes that differ from the
        channel's are reported at ``where`` (the channel's root by default)."""
        self.issues.absorb(partial["issues"], relocate, skip)
        stats = self._findings.stats[channel]
        part = ChannelStats.from_state(partial["stats"])
        stats.merge(part, self._context.sink, (stats.channel.root or ".") if where is None else where)

    def merge_file(self, rec: str, records: Records, repeated: Sequence[int]) -> None:
        """The checks over a whole .rec once its parts are merged: ``records`` are all its
        good records in file order, ``repeated`` the totals of the parts' ``repeated``."""
        self._records.check_parts(rec, records, repeated)


def validate_path(
    path: str, options: Optional[ValidationOptions] = None, progress: Optional[Progress] = None
) -> Dict[str, Any]:
    """Validate a dataset root, a channel folder, or one file on the local disk."""
    path = os.path.abspath(path)
    root, single = store_root(path)
    return Validator(LocalStore(root), options, single_file=single, display_name=path, progress=progress).run()


def store_root(path: str) -> Tuple[str, Optional[str]]:
    """(the store's root, the single file in it or None) to validate an absolute ``path``: a
    folder is the root; a file is read in its folder, except a .lst in ``train_lst/`` or
    ``validation_lst/`` beside its image channel, read from the folder above, where the
    channel's images are (layout.single_file_root)."""
    if not os.path.isfile(path):
        return path, None
    folder, name = os.path.split(path)
    parent, base = os.path.split(folder)
    if base in LIST_FOLDERS and name.lower().endswith(".lst") and os.path.isdir(os.path.join(parent, base[:-4])):
        return parent, f"{base}/{name}"
    return folder, name


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
    root, single = store_root(path)
    validator = Validator(LocalStore(root), options, single_file=single, display_name=path, progress=progress)
    report = validator.run()
    channels = validator.validated_samples() if report["valid"] else {}
    num_classes = report["num_classes"]
    return DatasetIndex(
        validator.store, report, channels, validator.label_names, num_classes if isinstance(num_classes, int) else None
    )
