"""The checks of the list formats (class folders, .lst, manifests, annotations files): the
lists, the labels, and that every listed image exists, once, and decodes."""

from __future__ import annotations

import os
import posixpath
from typing import Dict, Iterator, List, Optional, Set, Tuple

from .annotations import AnnotationsFile
from .channel_stats import ChannelStats
from .context import Context
from .decode_queue import DECODE_BATCH, DecodeQueue
from .findings import Findings
from .label_names import manifest_names
from .label_rules import LabelRules
from .layout import ANNOTATIONS, FOLDERS, LST, MANIFEST, Channel, is_image_file, list_folder
from .lst import parse_lst
from .manifest import ManifestReader
from .samples import CLASS_ID, Sample, printable, utf8_name
from .store import access_problem, open_fd


class _RealFiles:
    """The first path seen for each real file of a channel (symbolic links resolved), so that an
    image reached twice, as a link to a parent or sibling folder does, is found."""

    def __init__(self) -> None:
        self._first: Dict[str, str] = {}
        self._real_dirs: Dict[str, str] = {}

    def first_path(self, local: Optional[str], path: str) -> str:
        if local is None:  # not on a disk: no links
            return path
        folder, name = os.path.split(local)
        real_dir = self._real_dirs.get(folder)
        if real_dir is None:
            real_dir = self._real_dirs[folder] = os.path.realpath(folder)
        real = os.path.join(real_dir, name)
        if os.path.islink(real):
            real = os.path.realpath(real)
        return self._first.setdefault(real, path)


class ListChecks:
    """Reads and checks list-format channels; what they declare is counted in ``findings``."""

    def __init__(self, context: Context, findings: Findings, decodes: DecodeQueue) -> None:
        self.context = context
        self.findings = findings
        self.decodes = decodes
        self.unread_lists: Set[str] = set()  # list files that could not be read (reported)

    def samples(self, channel: Channel) -> Iterator[Sample]:
        """The samples a list-format channel declares (problems go to the context's sink)."""
        if channel.format == FOLDERS:
            yield from self._folder_samples(channel)
            return
        context = self.context
        o, sink = context.options, context.sink
        for path in channel.files:
            try:
                data = context.store.read(path)
            except OSError as err:
                context.unreadable(err, path)
                self.unread_lists.add(path)
                continue
            self.findings.stats[channel.name].bytes += len(data)
            if channel.format == LST:
                yield from parse_lst(data, path, channel.root, sink)
            elif channel.format == MANIFEST:
                reader = ManifestReader(
                    path,
                    posixpath.dirname(path) if context.single_file else channel.root,
                    sink,
                    o.label_attribute,
                    o.label_format,
                    o.num_classes,
                    o.allowed_buckets,
                )
                yield from reader.parse(data)
                self.findings.s3_unchecked += reader.s3_references
                self.findings.labels.merge(path, manifest_names(path, reader, sink), sink)
            elif channel.format == ANNOTATIONS:
                ann = AnnotationsFile(data, path, posixpath.dirname(path), sink)
                names = ann.label_names or None
                yield from ann.samples()
                self.findings.labels.merge(path, names, sink)

    def _folder_samples(self, channel: Channel) -> Iterator[Sample]:
        """The images of a class-folder channel, labelled by their folder's class id."""
        context = self.context
        index = {name: i for i, name in enumerate(self.findings.labels.names or [])}
        files = _RealFiles()
        for class_dir in channel.files:
            label = float(index[posixpath.basename(class_dir)])
            try:
                for path in context.store.walk_files(class_dir):
                    if posixpath.basename(path).startswith(".") or not utf8_name(path, context.sink):
                        continue
                    if not is_image_file(path):
                        context.sink.report("FILE_EXTRA", "not a .jpg/.jpeg/.png image; ignored", printable(path))
                        continue
                    first = files.first_path(context.store.local_path(path), path)
                    if first != path:  # a symbolic link led to it again, maybe from another class
                        context.sink.report(
                            "DUPLICATE_PATH",
                            f"the same file as {printable(first)}: a symbolic link makes it appear twice",
                            printable(path),
                        )
                    else:
                        yield Sample(path, (label,), CLASS_ID, path)
            except OSError as err:
                context.unreadable(err, class_dir, "folder")

    def check_channel(
        self, channel: Channel, stats: ChannelStats, deferred: Optional[List[Tuple[str, str]]] = None
    ) -> None:
        """Check a list-format channel: its lists, labels and image files. The images are
        decoded, or, given ``deferred``, collected there as (location, path) for later."""
        context = self.context
        rules = LabelRules(context.options, context.sink, stats)
        referenced: Set[str] = set()
        keys: Dict[int, str] = {}
        pending: List[Tuple[str, str]] = []
        for sample in self.samples(channel):
            if sample.key is not None:
                if sample.key in keys:
                    context.sink.report(
                        "DUPLICATE_ID", f"index {sample.key} is also used at {keys[sample.key]}", sample.location
                    )
                    continue
                keys[sample.key] = sample.location
            if sample.path.startswith("s3://"):
                if rules.sample(sample):
                    stats.samples += 1
                continue
            if not self._local_image(sample, referenced) or not rules.sample(sample):
                continue
            stats.samples += 1
            if not context.options.decode_images:
                continue
            pending.append((sample.location, sample.path))
            if len(pending) == DECODE_BATCH:
                self._decode(pending, stats, deferred)
                pending = []
                context.progress(channel.name, stats.samples, 0)
        if pending:
            self._decode(pending, stats, deferred)
        self.decodes.drain(stats)
        if not self.unread_lists & set(channel.files):  # unlisted images say nothing then
            self._extra_files(channel, referenced)

    def _local_image(self, sample: Sample, referenced: Set[str]) -> bool:
        """Whether a sample's image is listed once and exists (and, when images are not
        decoded, can be opened); reported when not. ``referenced`` collects the paths."""
        store = self.context.store
        if sample.path in referenced:
            self.context.sink.report("DUPLICATE_PATH", f"{sample.path} is listed again", sample.location)
            return False
        referenced.add(sample.path)
        if not store.exists(sample.path) or store.is_dir(sample.path):
            self._missing_image(sample)
            return False
        return self.context.options.decode_images or self._openable(sample)

    def _decode(
        self, files: List[Tuple[str, str]], stats: ChannelStats, deferred: Optional[List[Tuple[str, str]]]
    ) -> None:
        if deferred is not None:
            deferred.extend(files)
        else:
            self.decodes.submit_files(files, stats)

    def _openable(self, sample: Sample) -> bool:
        """Whether a local image file can be opened (what a decode would find out first);
        reported when it cannot. Remote stores are not asked: opening costs a request."""
        local = self.context.store.local_path(sample.path)
        if local is None:
            return True
        try:
            os.close(open_fd(local))
        except OSError as err:
            code, message = access_problem(err)
            self.context.sink.report(code, f"image {sample.path}: {message}", sample.location)
            return False
        return True

    def _missing_image(self, sample: Sample) -> None:
        """Say why a listed image cannot be opened: absent, a folder, a broken symbolic link,
        or hidden by a folder's permissions."""
        store, path = self.context.store, sample.path
        local = store.local_path(path)
        if store.is_dir(path):
            message = f"image {path} is a folder"
        elif local is not None and os.path.islink(local) and not os.path.exists(local):
            message = f"image {path} is a broken symbolic link (to {os.readlink(local)})"
        else:
            message = f"image {path} does not exist"
            try:
                store.size(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                self.context.sink.report(
                    "FILE_UNREADABLE", f"cannot read image {path}: {err.strerror or err}", sample.location
                )
                return
        self.context.sink.report("FILE_MISSING", message, sample.location)

    def _extra_files(self, channel: Channel, referenced: Set[str]) -> None:
        """Warn about image files in the channel that no list names."""
        context = self.context
        store, sink = context.store, context.sink
        if channel.format == FOLDERS or context.single_file:
            if channel.format == FOLDERS:
                for name in list_folder(store, channel.root, sink) or []:
                    path = posixpath.join(channel.root, name) if channel.root else name
                    if not name.startswith(".") and not store.is_dir(path) and is_image_file(path):  # ._x.jpg: macOS
                        sink.report("FILE_EXTRA", "image outside any class folder; ignored", printable(path))
            return
        try:
            extra = [
                p
                for p in store.walk_files(channel.root)
                if is_image_file(p) and p not in referenced and not posixpath.basename(p).startswith(".")
            ]
        except OSError as err:
            context.unreadable(err, channel.root, "folder")
            return
        for path in map(printable, extra[:20]):
            sink.report(
                "FILE_EXTRA", "image not listed in {}; it will not be used".format(", ".join(channel.files)), path
            )
        if len(extra) > 20:
            sink.report("FILE_EXTRA", f"{len(extra) - 20} more images not listed", channel.root or ".")
