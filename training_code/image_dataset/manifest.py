"""SageMaker augmented manifests (JSON Lines), as Ground Truth writes them.

``{"source-ref": "s3://b/k.jpg", "class": 3, "class-metadata": {"class-name": "cat"}}``.
The label attribute is the one key that is neither the image reference nor ``*-metadata``
(or the one named). Its value is a class id, a list of class ids, or a multi-hot list.
Label names come from the metadata (``class-name``, or ``class-map`` for multi-label jobs).
"""

from __future__ import annotations

import contextlib
import json
from typing import Dict, Iterator, List, Optional, Sequence

from .issues import IssueSink
from .samples import CLASS_ID, CLASS_IDS, MULTI_HOT, Sample, check_s3_uri, resolve_path

SOURCE_KEYS = ("source-ref", "image-ref")
AUTO, LABEL_CLASS_IDS, LABEL_MULTI_HOT = "auto", "class-id", "multi-hot"


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
    ) -> None:
        self.name = name
        self.base = base
        self.sink = sink
        self.label_attribute = label_attribute
        self.label_format = label_format
        self.num_classes = num_classes
        self.allowed_buckets = allowed_buckets
        self.label_names: Dict[int, str] = {}
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

    def _kind(self, values: List[float]) -> str:
        if self.label_format == LABEL_MULTI_HOT:
            return MULTI_HOT
        if self.label_format == LABEL_CLASS_IDS:
            return CLASS_IDS
        binary = all(v in (0.0, 1.0) for v in values)
        return MULTI_HOT if binary and self.num_classes == len(values) else CLASS_IDS

    def _metadata(self, record: Dict[str, object], attribute: str, labels: List[float]) -> None:
        meta = record.get(attribute + "-metadata")
        if not isinstance(meta, dict):
            return
        name = meta.get("class-name")
        if isinstance(name, str) and len(labels) == 1:
            self.label_names.setdefault(int(labels[0]), name)
        class_map = meta.get("class-map")
        if isinstance(class_map, dict):
            for key, value in class_map.items():
                if isinstance(value, str) and str(key).isdigit():
                    self.label_names.setdefault(int(key), value)

    def parse(self, data: bytes) -> Iterator[Sample]:
        for number, raw in enumerate(data.splitlines(), start=1):
            where = f"{self.name}:line {number}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                self.sink.report("TEXT_ENCODING", f"byte {err.start} of the line is not UTF-8", where)
                continue
            except (ValueError, RecursionError) as err:
                self.sink.report("JSON_SYNTAX", f"not a JSON object: {err}", where)
                continue
            if not isinstance(record, dict):
                self.sink.report("JSON_SYNTAX", "a manifest line must be a JSON object", where)
                continue
            source = next((record[k] for k in SOURCE_KEYS if k in record), None)
            if not isinstance(source, str):
                self.sink.report("MANIFEST_NO_SOURCE", "no string 'source-ref' or 'image-ref'", where)
                continue
            attribute = self._attribute(record, where)
            if attribute is None:
                self.sink.report("MANIFEST_NO_LABEL", "no label attribute on this line", where)
                continue
            value = record[attribute]
            if isinstance(value, str):  # Ground Truth sometimes writes lists as strings
                with contextlib.suppress(ValueError, RecursionError):
                    value = json.loads(value)
            if isinstance(value, bool) or not isinstance(value, (int, float, list)):
                self.sink.report("LABEL_INVALID", f"label {value!r} is not a number or a list of numbers", where)
                continue
            if isinstance(value, list):
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                    self.sink.report("LABEL_INVALID", f"label list {value!r} holds non-numbers", where)
                    continue
                labels = [float(v) for v in value]
                kind = self._kind(labels)
            else:
                labels = [float(value)]
                kind = CLASS_ID
            self._metadata(record, attribute, labels)
            path: Optional[str]
            if source.startswith("s3://"):
                self.s3_references += 1
                if self.allowed_buckets and not check_s3_uri(source, self.allowed_buckets, where, self.sink):
                    continue
                path = source
            else:
                path = resolve_path(self.base, source, where, self.sink)
                if path is None:
                    continue
            yield Sample(path, tuple(labels), kind, where)


def manifest_line(source_ref: str, attribute: str, label: object, class_name: Optional[str] = None) -> str:
    """One augmented-manifest line as Ground Truth writes it (with ``class-name`` metadata)."""
    record: Dict[str, object] = {"source-ref": source_ref, attribute: label}
    if class_name is not None:
        record[attribute + "-metadata"] = {"class-name": class_name}
    return json.dumps(record) + "\n"
