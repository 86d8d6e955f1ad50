"""``annotations.json``: label names plus one entry per image.

``{"labels": ["cat", "dog"], "images": [{"path": "a.jpg", "label": 0}, ...]}`` where a label is a
class index, a label name, or a list of either (multi-label). Locations give the line of each
image entry, found by walking the document with the JSON decoder.
"""

from __future__ import annotations

import json
from typing import Dict, Iterator, List, Optional, Tuple

from . import json_text
from .issues import IssueSink
from .samples import CLASS_ID, CLASS_IDS, Sample, is_class_id, number, resolve_path

_decoder = json.JSONDecoder()
_WS = " \t\r\n"


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _image_offsets(text: str) -> List[int]:
    """Character offsets of the entries of the top-level ``images`` array (best effort)."""
    try:
        i = _skip(text, 0)
        if text[i] != "{":
            return []
        i = _skip(text, i + 1)
        while i < len(text) and text[i] != "}":
            key, i = _decoder.raw_decode(text, i)
            i = _skip(text, i)
            i = _skip(text, i + 1)  # ':'
            if key == "images" and text[i] == "[":
                offsets = []
                i = _skip(text, i + 1)
                while text[i] != "]":
                    offsets.append(i)
                    _, i = _decoder.raw_decode(text, i)
                    i = _skip(text, i)
                    if text[i] == ",":
                        i = _skip(text, i + 1)
                return offsets
            _, i = _decoder.raw_decode(text, i)
            i = _skip(text, i)
            if text[i] == ",":
                i = _skip(text, i + 1)
    except (ValueError, IndexError, RecursionError):
        pass
    return []


class AnnotationsFile:
    """A parsed annotations.json: ``label_names`` and ``samples()``."""

    def __init__(self, data: bytes, name: str, base: str, sink: IssueSink) -> None:
        self.name = name
        self.base = base
        self.sink = sink
        self.label_names: List[str] = []
        self._images: List[object] = []
        self._lines: List[int] = []
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            sink.report("TEXT_ENCODING", f"byte {err.start} is not UTF-8", name)
            return
        try:
            doc = json_text.loads(text)
        except json_text.JSONTextError as err:
            syntax = err.code == "JSON_SYNTAX"
            sink.report(err.code, err.msg, f"{name}:line {err.line or 1}" if syntax else name)
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            sink.report("ANNOTATIONS_SCHEMA", "expected an object with an 'images' list", name)
            return
        labels = doc.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(n, str) and n.strip() for n in labels):
            sink.report("ANNOTATIONS_SCHEMA", "'labels' must be a list of label names, none of them blank", name)
            labels = []
        if len(set(labels)) != len(labels):
            sink.report("ANNOTATIONS_SCHEMA", "'labels' names a label twice", name)
        self.label_names = list(labels)
        self._images = doc["images"]
        self._lines = [text.count("\n", 0, o) + 1 for o in _image_offsets(text)]

    def _where(self, i: int) -> str:
        if i < len(self._lines):
            return f"{self.name}:line {self._lines[i]} images[{i}]"
        return f"{self.name} images[{i}]"

    def _label(self, value: object, index: Dict[str, int], where: str) -> Optional[float]:
        if isinstance(value, str):
            if value not in index:
                self.sink.report("LABEL_UNKNOWN", f"label {value!r} is not in 'labels'", where)
                return None
            return float(index[value])
        label = number(value)
        if label is None:
            shown = "a number too large" if isinstance(value, int) and not isinstance(value, bool) else repr(value)
            self.sink.report("LABEL_INVALID", f"label {shown[:80]} is not an index or a name", where)
            return None
        if self.label_names and is_class_id(label) and label >= len(self.label_names):
            self.sink.report(
                "LABEL_OUT_OF_RANGE",
                f"class index {int(label)} is not below the {len(self.label_names)} names in 'labels'",
                where,
            )
            return None
        return label

    def samples(self) -> Iterator[Sample]:
        index = {name: i for i, name in enumerate(self.label_names)}
        for i, entry in enumerate(self._images):
            where = self._where(i)
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or "label" not in entry:
                self.sink.report("ANNOTATIONS_SCHEMA", "an image entry needs a string 'path' and a 'label'", where)
                continue
            raw = entry["label"]
            values = raw if isinstance(raw, list) else [raw]
            labels: List[float] = []
            for value in values:
                label = self._label(value, index, where)
                if label is None:
                    break
                labels.append(label)
            else:
                path = resolve_path(self.base, entry["path"], where, self.sink)
                if path is not None:
                    kind = CLASS_IDS if isinstance(raw, list) else CLASS_ID
                    yield Sample(path, tuple(labels), kind, where)


def annotation_entry(path: str, label: object) -> Dict[str, object]:
    return {"path": path, "label": label}


def dumps_annotations(label_names: List[str], entries: List[Tuple[str, object]]) -> str:
    """An annotations.json document, one image entry per line."""
    lines = ",\n".join("    " + json.dumps(annotation_entry(path, label)) for path, label in entries)
    return f'{{\n  "labels": {json.dumps(label_names)},\n  "images": [\n{lines}\n  ]\n}}\n'
