"""SageMaker augmented manifests (JSON Lines), as Ground Truth writes them.

``{"source-ref": "s3://b/k.jpg", "class": 3, "class-metadata": {"class-name": "cat"}}``.
The label attribute is the one key that is neither the image reference nor ``*-metadata``
(or the one named). Its value is a class id, a list of class ids, or a multi-hot list (how a
file's lists are meant: :func:`samples.decide_list_kinds`). Label names come from the
metadata (``class-name``, or ``class-map`` for multi-label jobs). A UTF-8 byte order mark
at the start of the file is skipped.
"""

from __future__ import annotations

import codecs
import contextlib
import json
from typing import Dict, Iterator, List, Optional, Sequence

from . import json_text
from .issues import IssueSink
from .samples import (
    AUTO,
    CLASS_ID,
    LABEL_CLASS_IDS,
    LABEL_LIST,
    LABEL_MULTI_HOT,
    Sample,
    check_s3_uri,
    decide_list_kinds,
    is_class_id,
    number,
    resolve_path,
)

SOURCE_KEYS = ("source-ref", "image-ref")
MAX_NAMED = 1_000_000  # class ids named by metadata beyond this are not collected (they are invalid anyway)
__all__ = ["AUTO", "LABEL_CLASS_IDS", "LABEL_MULTI_HOT", "ManifestReader", "manifest_line"]


def _named(name: str) -> bool:
    """A class name worth keeping is not blank: a blank one leaves the class named by its
    number, as labels.json allows no blank name."""
    return bool(name.strip())


class ManifestReader:
    """Parses one manifest; after iteration ``label_names`` holds names found in metadata."""

    def __init__(
        self,
        name: str,
        base: str,
        sink: IssueSink,
        label_attribute: Optional[str] = None,
        label_format: str = AUTO,
        num_classes: Optional[int] = None,
        allowed_buckets: Sequence[str] = (),
        labels_required: bool = True,
    ) -> None:
        self.name = name
        self.labels_required = labels_required  # False: an inference manifest, images only
        self.base = base
        self.sink = sink
        self.label_attribute = label_attribute
        self.label_format = label_format
        self.num_classes = num_classes
        self.allowed_buckets = allowed_buckets
        self.label_names: Dict[int, str] = {}
        self.max_class_id = -1  # the largest value that can be a class id (below MAX_NAMED)
        self.s3_references = 0

    def _attribute(self, record: Dict[str, object], where: str) -> Optional[str]:
        if self.label_attribute:
            return self.label_attribute if self.label_attribute in record else None
        keys = [k for k in record if k not in SOURCE_KEYS and not k.endswith("-metadata")]
        if len(keys) == 1:
            self.label_attribute = keys[0]
            return keys[0]
        if len(keys) > 1:
            self.sink.report(
                "MANIFEST_NO_LABEL",
                f"several candidate label attributes {sorted(keys)}; name one with --label-attribute",
                where,
            )
        return None

    def _metadata(self, record: Dict[str, object], attribute: str, labels: List[float]) -> None:
        meta = record.get(attribute + "-metadata")
        if not isinstance(meta, dict):
            return
        name = meta.get("class-name")
        if isinstance(name, str) and _named(name) and len(labels) == 1 and is_class_id(labels[0]) and labels[0] < MAX_NAMED:
            self.label_names.setdefault(int(labels[0]), name)
        class_map = meta.get("class-map")
        if isinstance(class_map, dict):
            for key, value in class_map.items():
                if isinstance(value, str) and _named(value) and str(key).isdecimal() and len(str(key)) <= 7 and int(key) < MAX_NAMED:
                    self.label_names.setdefault(int(key), value)

    def parse(self, data: bytes) -> Iterator[Sample]:
        """The file's samples, in order; a list label is a class-id list or a multi-hot vector
        as :func:`samples.decide_list_kinds` decides for the whole file."""
        if not self.labels_required:  # images only: nothing to decide, and nothing held back
            return self._parse(data)
        return decide_list_kinds(self._parse(data), self.label_format, self.num_classes)

    def _parse(self, data: bytes) -> Iterator[Sample]:
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        for line_number, raw in enumerate(data.splitlines(), start=1):
            where = f"{self.name}:line {line_number}"
            if not raw.strip():
                continue
            try:
                record = json_text.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                self.sink.report("TEXT_ENCODING", f"byte {err.start} of the line is not UTF-8", where)
                continue
            except json_text.JSONTextError as err:
                self.sink.report(err.code, f"not a JSON object: {err}" if err.code == "JSON_SYNTAX" else str(err), where)
                continue
            if not isinstance(record, dict):
                self.sink.report("JSON_SYNTAX", "a manifest line must be a JSON object", where)
                continue
            source = next((record[k] for k in SOURCE_KEYS if k in record), None)
            if not isinstance(source, str):
                self.sink.report("MANIFEST_NO_SOURCE", "no string 'source-ref' or 'image-ref'", where)
                continue
            if not self.labels_required:
                path = self._image_path(source, where)
                if path is not None:
                    yield Sample(path, (), CLASS_ID, where)
                continue
            attribute = self._attribute(record, where)
            if attribute is None:
                self.sink.report("MANIFEST_NO_LABEL", "no label attribute on this line", where)
                continue
            value = record[attribute]
            if isinstance(value, str):  # Ground Truth sometimes writes lists as strings
                with contextlib.suppress(ValueError):
                    value = json_text.loads(value)
            if isinstance(value, list):
                values = [number(v) for v in value]
                if None in values:
                    self.sink.report("LABEL_INVALID", f"label list {_shown(value)} holds non-numbers", where)
                    continue
                labels = [v for v in values if v is not None]
                kind = LABEL_LIST
            else:
                single = number(value)
                if single is None:
                    self.sink.report(
                        "LABEL_INVALID", f"label {_shown(value)} is not a number or a list of numbers", where
                    )
                    continue
                labels = [single]
                kind = CLASS_ID
            self._metadata(record, attribute, labels)
            ids = [int(v) for v in labels if is_class_id(v) and v < MAX_NAMED]
            self.max_class_id = max([self.max_class_id, *ids])
            path = self._image_path(source, where)
            if path is not None:
                yield Sample(path, tuple(labels), kind, where)

    def _image_path(self, source: str, where: str) -> Optional[str]:
        """The store path of a line's image, its s3:// URI, or None (reported) where it may not be."""
        if source.startswith("s3://"):
            self.s3_references += 1
            if self.allowed_buckets and not check_s3_uri(source, self.allowed_buckets, where, self.sink):
                return None
            return source
        return resolve_path(self.base, source, where, self.sink)


def _shown(value: object) -> str:
    """A label value for a message, cut to 80 characters."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python converts
        return "(a number too large to show)"
    return text if len(text) <= 80 else text[:77] + "..."


def manifest_line(source_ref: str, attribute: str, label: object, class_name: Optional[str] = None) -> str:
    """One augmented-manifest line as Ground Truth writes it (with ``class-name`` metadata)."""
    record: Dict[str, object] = {"source-ref": source_ref, attribute: label}
    if class_name is not None:
        record[attribute + "-metadata"] = {"class-name": class_name}
    return json.dumps(record) + "\n"
