"""Parsers of the list formats: .lst, augmented manifests and annotations.json."""

from __future__ import annotations

import json

import pytest

from image_dataset.annotations import AnnotationsFile, dumps_annotations
from image_dataset.issues import CollectingSink, DatasetError, IssueSink
from image_dataset.lst import format_lst_line, parse_lst
from image_dataset.manifest import ManifestReader, manifest_line
from image_dataset.samples import CLASS_ID, CLASS_IDS, MULTI_HOT, multi_hot


def test_lst_single_and_multi_label() -> None:
    data = (format_lst_line(0, [3], "cat/a.jpg") + format_lst_line(1, [1.0], "dog/b.jpg")).encode()
    samples = list(parse_lst(data, "train.lst", "train", IssueSink()))
    assert [(s.path, s.labels, s.kind, s.key) for s in samples] == [
        ("train/cat/a.jpg", (3.0,), CLASS_ID, 0),
        ("train/dog/b.jpg", (1.0,), CLASS_ID, 1),
    ]
    multi = list(parse_lst(b"5\t1\t0\t1\ta.jpg\n", "t.lst", "", IssueSink()))
    assert multi[0].kind == MULTI_HOT and multi[0].labels == (1.0, 0.0, 1.0)


def test_lst_reads_im2rec_style_lines_with_crlf_and_spaces() -> None:
    samples = list(parse_lst(b"7\t2.000000\t  sub dir/x y.jpg \r\n", "t.lst", "", IssueSink()))
    assert samples[0].path == "sub dir/x y.jpg" and samples[0].key == 7


@pytest.mark.parametrize(
    "line, code",
    [
        (b"0\ta.jpg\n", "LST_SYNTAX"),
        (b"x\t1\ta.jpg\n", "LST_BAD_INDEX"),
        (b"-1\t1\ta.jpg\n", "LST_BAD_INDEX"),
        (b"0\tcat\ta.jpg\n", "LABEL_INVALID"),
        (b"0\t1\t../../etc/passwd\n", "PATH_UNSAFE"),
        (b"0\t1\t/abs/a.jpg\n", "PATH_UNSAFE"),
        (b"0\t1\tC:\\a.jpg\n", "PATH_UNSAFE"),
        (b"0\t1\t\xff\xfe.jpg\n", "TEXT_ENCODING"),
    ],
)
def test_lst_errors_name_the_line(line: bytes, code: str) -> None:
    sink = CollectingSink()
    list(parse_lst(b"9\t0\tok.jpg\n" + line, "train/t.lst", "train", sink))
    assert [(e.code, e.location) for e in sink.errors] == [(code, "train/t.lst:line 2")]


def test_lst_column_count_must_not_change() -> None:
    sink = CollectingSink()
    list(parse_lst(b"0\t1\t0\ta.jpg\n1\t1\tb.jpg\n", "t.lst", "", sink))
    assert sink.errors[0].code == "LST_COLUMNS"


def test_lst_strict_sink_raises_dataset_error() -> None:
    with pytest.raises(DatasetError) as err:
        list(parse_lst(b"garbage\n", "t.lst", "", IssueSink()))
    assert err.value.issue.location == "t.lst:line 1"


def test_manifest_labels_and_names_from_metadata() -> None:
    text = "\n".join(
        json.dumps(r)
        for r in [
            {"source-ref": "img/a.jpg", "class": 1, "class-metadata": {"class-name": "dog"}},
            {"image-ref": "img/b.jpg", "class": 0, "class-metadata": {"class-name": "cat"}},
            {"source-ref": "img/c.jpg", "class": [0, 1]},
            {"source-ref": "img/d.jpg", "class": "[1]"},
        ]
    )
    reader = ManifestReader("train/m.manifest", "train", IssueSink())
    samples = list(reader.parse(text.encode()))
    assert [s.path for s in samples] == ["train/img/a.jpg", "train/img/b.jpg", "train/img/c.jpg", "train/img/d.jpg"]
    assert [s.kind for s in samples] == [CLASS_ID, CLASS_ID, CLASS_IDS, CLASS_IDS]
    assert reader.label_names == {0: "cat", 1: "dog"}


@pytest.mark.parametrize(
    "lists, options, kind",
    [
        # every list of the file can be a vector of one length: multi-hot (the issue's [0, 1, 0])
        ([[0, 1, 0], [1, 0, 0], [0, 0, 1]], {}, MULTI_HOT),
        ([[0, 1], [1, 0], [1, 1]], {}, MULTI_HOT),
        ([[1, 0, 1]], {"num_classes": 3}, MULTI_HOT),
        # one list that cannot be a vector makes the file's lists class ids, before and after it
        ([[0, 1], [1, 0], [2]], {}, CLASS_IDS),
        ([[0, 1], [1], [0, 1]], {}, CLASS_IDS),
        ([[1], [0]], {}, CLASS_IDS),
        ([[0, 1, 0]], {"num_classes": 2}, CLASS_IDS),
        # an explicit format wins
        ([[1, 0, 1]], {"label_format": "class-id"}, CLASS_IDS),
        ([[1, 2]], {"label_format": "multi-hot"}, MULTI_HOT),
    ],
)
def test_manifest_list_labels_are_read_one_way_per_file(lists, options, kind) -> None:
    text = "".join(json.dumps({"source-ref": f"{i}.jpg", "labels": v}) + "\n" for i, v in enumerate(lists))
    samples = list(ManifestReader("m", "", IssueSink(), **options).parse(text.encode()))
    assert [s.kind for s in samples] == [kind] * len(lists)
    assert [list(s.labels) for s in samples] == lists and [s.path for s in samples] == [
        f"{i}.jpg" for i in range(len(lists))
    ]


@pytest.mark.parametrize(
    "line, code",
    [
        (b"{not json", "JSON_SYNTAX"),
        (b"[1, 2]", "JSON_SYNTAX"),
        (b'{"class": 1}', "MANIFEST_NO_SOURCE"),
        (b'{"source-ref": "a.jpg"}', "MANIFEST_NO_LABEL"),
        (b'{"source-ref": "a.jpg", "class": "cat"}', "LABEL_INVALID"),
        (b'{"source-ref": "a.jpg", "class": [1, "x"]}', "LABEL_INVALID"),
        (b'{"source-ref": "s3://other/a.jpg", "class": 1}', "PATH_OTHER_BUCKET"),
        (b'{"source-ref": "../a.jpg", "class": 1}', "PATH_UNSAFE"),
    ],
)
def test_manifest_errors_name_the_line(line: bytes, code: str) -> None:
    sink = CollectingSink()
    reader = ManifestReader("v/m.manifest", "v", sink, allowed_buckets=("data",))
    list(reader.parse(b'{"source-ref": "s3://data/ok.jpg", "class": 0}\n' + line + b"\n"))
    assert [(e.code, e.location) for e in sink.errors] == [(code, "v/m.manifest:line 2")]


def test_annotations_labels_by_index_name_and_list() -> None:
    doc = dumps_annotations(["cat", "dog", "fox"], [("a.jpg", 0), ("b.jpg", "dog"), ("c.jpg", ["cat", 2])])
    ann = AnnotationsFile(doc.encode(), "train/annotations.json", "train", IssueSink())
    samples = list(ann.samples())
    assert ann.label_names == ["cat", "dog", "fox"]
    assert [(s.path, s.labels, s.kind) for s in samples] == [
        ("train/a.jpg", (0.0,), CLASS_ID),
        ("train/b.jpg", (1.0,), CLASS_ID),
        ("train/c.jpg", (0.0, 2.0), CLASS_IDS),
    ]
    assert samples[2].location == "train/annotations.json:line 6 images[2]"
    assert multi_hot(samples[2], 3) == [1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "doc, code, where",
    [
        (
            '{"labels": ["a"], "images": [\n  {"path": "x.jpg", "label": 0},\n  {"path": "y.jpg" "label": 0}]}',
            "JSON_SYNTAX",
            "a.json:line 3",
        ),
        ('{"labels": ["a"]}', "ANNOTATIONS_SCHEMA", "a.json"),
        (
            '{"labels": ["a"], "images": [\n{"path": "x.jpg", "label": "zebra"}]}',
            "LABEL_UNKNOWN",
            "a.json:line 2 images[0]",
        ),
        ('{"labels": ["a"], "images": [\n{"path": "x.jpg"}]}', "ANNOTATIONS_SCHEMA", "a.json:line 2 images[0]"),
        (
            '{"labels": ["a"], "images": [\n{"path": "/etc/x.jpg", "label": 0}]}',
            "PATH_UNSAFE",
            "a.json:line 2 images[0]",
        ),
        (
            '{"labels": ["a"], "images": [\n{"path": "x.jpg", "label": true}]}',
            "LABEL_INVALID",
            "a.json:line 2 images[0]",
        ),
        ("[" * 5000 + "]" * 5000, "JSON_SYNTAX", "a.json:line 1"),
    ],
)
def test_annotations_errors(doc: str, code: str, where: str) -> None:
    sink = CollectingSink()
    list(AnnotationsFile(doc.encode(), "a.json", "", sink).samples())
    assert [(e.code, e.location) for e in sink.errors] == [(code, where)]


def test_manifest_writer_round_trips() -> None:
    text = manifest_line("s3://b/a.jpg", "class", 1, "dog") + manifest_line("b.jpg", "class", [0, 1])
    reader = ManifestReader("m", "", IssueSink(), allowed_buckets=("b",))
    samples = list(reader.parse(text.encode()))
    assert [(s.path, s.labels) for s in samples] == [("s3://b/a.jpg", (1.0,)), ("b.jpg", (0.0, 1.0))]
    assert reader.label_names == {1: "dog"}
