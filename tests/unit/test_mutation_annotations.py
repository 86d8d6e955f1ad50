"""annotations: the message for each label value annotations.json cannot use, and the bound of
a class index against the 'labels' list."""

from __future__ import annotations

import json
from typing import List, Tuple

from image_dataset.annotations import AnnotationsFile
from image_dataset.issues import CollectingSink


def _read(labels: List[str], values: List[object]) -> Tuple[list, list]:
    doc = {"labels": labels, "images": [{"path": f"{i}.jpg", "label": v} for i, v in enumerate(values)]}
    sink = CollectingSink()
    parsed = AnnotationsFile(json.dumps(doc).encode("utf-8"), "annotations.json", "", sink)
    samples = [(s.path, s.labels) for s in parsed.samples()]
    return samples, [(i.code, i.message) for i in sink.errors]


def test_a_label_that_is_no_number_is_shown_cut_to_80_characters() -> None:
    long = {"name": "x" * 100}
    _, errors = _read([], [True, None, long, 10**400])
    assert errors == [
        ("LABEL_INVALID", "label True is not an index or a name"),
        ("LABEL_INVALID", "label None is not an index or a name"),
        ("LABEL_INVALID", f"label {repr(long)[:80]} is not an index or a name"),
        ("LABEL_INVALID", "label a number too large is not an index or a name"),
    ]


def test_a_class_index_must_be_below_the_number_of_names() -> None:
    samples, errors = _read(["cat", "dog"], [1, 2, "dog", [0, 1]])
    assert samples == [("0.jpg", (1.0,)), ("2.jpg", (1.0,)), ("3.jpg", (0.0, 1.0))]  # 1.jpg: index 2 refused
    assert errors == [("LABEL_OUT_OF_RANGE", "class index 2 is not below the 2 names in 'labels'")]
    samples, errors = _read([], [5])
    assert errors == [] and [labels for _, labels in samples] == [(5.0,)]


def _doc_errors(data: bytes) -> list:
    sink = CollectingSink()
    AnnotationsFile(data, "annotations.json", "", sink)
    return [tuple(i) for i in sink.errors]


def test_what_is_no_annotations_document_is_reported_on_the_file() -> None:
    assert _doc_errors(b'{"images": ["\xff"]}') == [("TEXT_ENCODING", "byte 13 is not UTF-8", "annotations.json")]
    assert _doc_errors(b'{\n"images": [}') == [("JSON_SYNTAX", "Expecting value", "annotations.json:line 2")]
    assert _doc_errors(b'{"images": {}}') == [
        ("ANNOTATIONS_SCHEMA", "expected an object with an 'images' list", "annotations.json")
    ]
    assert _doc_errors(b'{"labels": "cat", "images": []}') == [
        ("ANNOTATIONS_SCHEMA", "'labels' must be a list of label names, none of them blank", "annotations.json")
    ]
    assert _doc_errors(b'{"labels": ["cat", 3], "images": []}') == [
        ("ANNOTATIONS_SCHEMA", "'labels' must be a list of label names, none of them blank", "annotations.json")
    ]
    for blank in (b'""', b'" \\t"'):  # labels.json allows no blank name: pack could not write one
        assert _doc_errors(b'{"labels": ["cat", ' + blank + b'], "images": []}') == [
            ("ANNOTATIONS_SCHEMA", "'labels' must be a list of label names, none of them blank", "annotations.json")
        ]
    assert _doc_errors(b'{"labels": ["cat", "cat"], "images": []}') == [
        ("ANNOTATIONS_SCHEMA", "'labels' names a label twice", "annotations.json")
    ]
    assert _doc_errors(b'\xef\xbb\xbf{"images": []}') == []  # a byte order mark is skipped


def _locations(text: str) -> list:
    sink = CollectingSink()
    parsed = AnnotationsFile(text.encode("utf-8"), "annotations.json", "", sink)
    return [s.location for s in parsed.samples()]


def test_each_image_entry_is_located_by_its_line() -> None:
    a, b = '{"path": "a.jpg", "label": 0}', '{"path": "b.jpg", "label": 0}'
    head = '\n{\n  "labels": ["cat"],\n  "other": {"a": [1, 2]},\n  "images": [\n    '
    pretty = head + a + ",\n\n    " + b + "\n  ]\n}\n"
    assert _locations(pretty) == ["annotations.json:line 6 images[0]", "annotations.json:line 8 images[1]"]
    compact = '{"labels":["cat"],"other":1,"images":[' + a + "," + b + "]}"
    assert _locations(compact) == ["annotations.json:line 1 images[0]", "annotations.json:line 1 images[1]"]
    # a repeated key: JSON keeps the last images list, whose entries the locator cannot find
    repeated = '{"images": [], "images": [' + a + "]}"
    assert _locations(repeated) == ["annotations.json images[0]"]


def test_an_image_entry_without_path_or_label_is_named() -> None:
    doc = b'{"images": [{"path": "a.jpg"}, {"label": 0}, 5, {"path": 3, "label": 0}, {"path": "b.jpg", "label": 0}]}'
    sink = CollectingSink()
    samples = list(AnnotationsFile(doc, "annotations.json", "", sink).samples())
    assert [s.path for s in samples] == ["b.jpg"]
    assert [(i.code, i.message, i.location) for i in sink.errors] == [
        (
            "ANNOTATIONS_SCHEMA",
            "an image entry needs a string 'path' and a 'label'",
            f"annotations.json:line 1 images[{n}]",
        )
        for n in range(4)
    ]
