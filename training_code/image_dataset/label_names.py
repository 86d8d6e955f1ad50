"""The dataset's class names: from class folders, a RecordIO channel's labels.json, a
manifest's metadata or an annotations file, merged across channels."""

from __future__ import annotations

import posixpath
from collections import Counter
from typing import List, Optional, Set

from . import json_text
from .context import Context
from .issues import IssueSink
from .layout import FOLDERS, LABELS_FILE, RECORDIO, Channel
from .manifest import ManifestReader


class LabelNames:
    """The class names found so far (index = class id), and the labels.json they came from."""

    def __init__(self, names: Optional[List[str]] = None, file: Optional[str] = None) -> None:
        self.names = names
        self.file = file  # a RecordIO channel's labels.json, when read

    def read_layout(self, context: Context, channels: List[Channel]) -> None:
        """The names the layout gives: class folders, then each RecordIO channel's labels.json."""
        folder_channels = [c for c in channels if c.format == FOLDERS]
        if folder_channels:
            names: Set[str] = set()
            for c in folder_channels:
                names.update(posixpath.basename(d) for d in c.files)
            self.names = sorted(names)
        for channel in channels:
            path = posixpath.join(channel.root, LABELS_FILE) if channel.root else LABELS_FILE
            if channel.format != RECORDIO or not context.store.exists(path):
                continue
            listed = self._read_file(context, path)
            if listed is None:
                continue
            if self.names is None:
                self.names = listed
            elif listed != self.names:
                context.sink.report("LABEL_NAMES_INVALID", "differs from the other channel's class names", path)

    def _read_file(self, context: Context, path: str) -> Optional[List[str]]:
        """The class names of a RecordIO channel's labels.json (a JSON list, index = class id)."""
        sink = context.sink
        try:
            names = json_text.loads(context.store.read(path).decode("utf-8-sig"))
        except OSError as err:
            context.unreadable(err, path)
            return None
        except (UnicodeDecodeError, ValueError) as err:
            sink.report("LABEL_NAMES_INVALID", f"not a JSON list of class names: {err}", path)
            return None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            sink.report("LABEL_NAMES_INVALID", "must be a non-empty JSON list of non-empty strings", path)
            return None
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})[:5]
            sink.report("LABEL_NAMES_INVALID", "names appear twice: " + ", ".join(twice), path)
            return None
        self.file = path
        return names

    def merge(self, path: str, names: Optional[List[str]], sink: IssueSink) -> None:
        """Take the names a list file gives (``path``), when they agree with the others."""
        if names is None:
            return
        # the first names, or a channel that names more classes than the others so far
        if self.names is None or names[: len(self.names)] == self.names:
            self.names = names
        elif self.names[: len(names)] != names:  # not the first classes of the other channel
            sink.report(
                "FORMAT_MISMATCH",
                f"label names {names[:10]} differ from the other channel's {self.names[:10]}",
                path,
            )

    def describe(self, classes: List[int]) -> str:
        """Class ids for a message, each with its name when it has one."""
        if self.names:
            return ", ".join(f"{c} ({self.names[c]})" if c < len(self.names) else str(c) for c in classes)
        return ", ".join(str(c) for c in classes)


def manifest_names(path: str, reader: ManifestReader, sink: IssueSink) -> Optional[List[str]]:
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
        sink.report(
            "LABEL_NAMES_INVALID",
            "the metadata gives two class ids one class name (or the number of another unnamed id): "
            + ", ".join(twice[:5]),
            path,
        )
        return None
    return names
