"""manifest: how a label value is shown in a message (cut at 80 characters, an integer too long
to print) — the text a user reads in LABEL_INVALID."""

from __future__ import annotations

import json

import pytest

from image_dataset.issues import CollectingSink
from image_dataset.manifest import ManifestReader, _shown


def test_a_value_of_80_characters_is_shown_whole_and_a_longer_one_cut_to_80() -> None:
    exact = "x" * 78  # repr adds the two quotes: 80 characters
    assert _shown(exact) == repr(exact)
    longer = "x" * 79
    assert _shown(longer) == repr(longer)[:77] + "..."
    assert len(_shown(longer)) == 80


def test_an_integer_too_long_to_print_is_named_instead() -> None:
    huge = 10**5000
    with pytest.raises(ValueError):
        repr(huge)  # Python's int-to-str limit (3.11+)
    assert _shown(huge) == "(a number too large to show)"


def test_an_invalid_label_is_shown_in_the_message() -> None:
    sink = CollectingSink()
    reader = ManifestReader("m.manifest", "/data", sink)
    list(reader.parse(b'{"source-ref": "a.jpg", "class": [1, "x"]}\n{"source-ref": "b.jpg", "class": {"k": 1}}\n'))
    assert [(i.code, i.message) for i in sink.errors] == [
        ("LABEL_INVALID", "label list [1, 'x'] holds non-numbers"),
        ("LABEL_INVALID", "label {'k': 1} is not a number or a list of numbers"),
    ]


def _names(lines) -> dict:
    reader = ManifestReader("m.manifest", "/data", CollectingSink())
    list(reader.parse("".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")))
    return reader.label_names


def test_class_name_names_a_single_class_id_below_the_cap_first_seen_wins() -> None:
    def line(label, meta) -> dict:
        return {"source-ref": "a.jpg", "class": label, "class-metadata": meta}

    assert _names(
        [
            line(3, {"class-name": "cat"}),
            line(3, {"class-name": "tiger"}),  # the first name of a class stays
            line(4, {"class-name": 5}),  # not a name
            line([1, 2], {"class-name": "pair"}),  # a list names no class
            line(999_999, {"class-name": "last"}),
            line(1_000_000, {"class-name": "beyond"}),  # MAX_NAMED: not collected
            line(2.5, {"class-name": "half"}),  # no class id
        ]
    ) == {3: "cat", 999_999: "last"}


def test_class_map_names_decimal_keys_of_up_to_7_digits_below_the_cap() -> None:
    meta = {
        "class-map": {
            "0": "cat",
            "1": "dog",
            "x": "nope",
            "2": 7,
            "0999999": "padded",
            "1000000": "at the cap",
            "12345678": "too long",
            "00000005": "eight digits",
        }
    }
    assert _names([{"source-ref": "a.jpg", "class": [0, 1], "class-metadata": meta}]) == {
        0: "cat",
        1: "dog",
        999_999: "padded",
    }
    assert _names([{"source-ref": "a.jpg", "class": 0, "class-metadata": {"class-map": ["cat"]}}]) == {}


# -- reading lines ---------------------------------------------------------------------------


def _parse(data: bytes, **options):
    sink = CollectingSink()
    reader = ManifestReader("m.manifest", "/data", sink, **options)
    samples = [(s.path, s.labels, s.kind, s.location) for s in reader.parse(data)]
    return reader, samples, [tuple(i) for i in sink.errors]


def test_each_bad_line_is_reported_and_the_next_lines_are_read() -> None:
    data = b"\n".join(
        [
            b'{"source-ref": "a.jpg", "class": 1}',
            b"",
            b'{"source-ref": "\xff.jpg", "class": 1}',
            b"{not json",
            b"[1, 2]",
            b'{"class": 1}',
            b'{"source-ref": 7, "class": 1}',
            b'{"source-ref": "b.jpg", "class": 0}',
        ]
    )
    reader, samples, errors = _parse(data)
    assert [(path, labels) for path, labels, _, _ in samples] == [("/data/a.jpg", (1.0,)), ("/data/b.jpg", (0.0,))]
    assert errors == [
        ("TEXT_ENCODING", "byte 16 of the line is not UTF-8", "m.manifest:line 3"),
        (
            "JSON_SYNTAX",
            "not a JSON object: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            "m.manifest:line 4",
        ),
        ("JSON_SYNTAX", "a manifest line must be a JSON object", "m.manifest:line 5"),
        ("MANIFEST_NO_SOURCE", "no string 'source-ref' or 'image-ref'", "m.manifest:line 6"),
        ("MANIFEST_NO_SOURCE", "no string 'source-ref' or 'image-ref'", "m.manifest:line 7"),
    ]
    assert reader.max_class_id == 1 and reader.label_attribute == "class"


def test_the_label_attribute_found_on_the_first_line_is_kept() -> None:
    data = b'{"source-ref": "a.jpg", "class": 1}\n{"source-ref": "b.jpg", "class": 2, "other": 5}\n'
    reader, samples, errors = _parse(data)
    assert errors == [] and [labels for _, labels, _, _ in samples] == [(1.0,), (2.0,)]
    _, samples, errors = _parse(b'{"source-ref": "a.jpg", "b": 1, "a": 2}\n')
    assert samples == []
    assert errors == [
        (
            "MANIFEST_NO_LABEL",
            "several candidate label attributes ['a', 'b']; name one with --label-attribute",
            "m.manifest:line 1",
        ),
        ("MANIFEST_NO_LABEL", "no label attribute on this line", "m.manifest:line 1"),
    ]
    _, samples, errors = _parse(b'{"source-ref": "a.jpg", "b": 1, "a": 2}\n', label_attribute="a")
    assert errors == [] and [labels for _, labels, _, _ in samples] == [(2.0,)]


def test_a_reader_before_any_label_has_no_class_id_and_no_s3_reference() -> None:
    reader, samples, _ = _parse(b"")
    assert (reader.max_class_id, reader.s3_references, samples) == (-1, 0, [])


def test_an_inference_manifest_needs_images_only_and_counts_s3_references() -> None:
    data = (
        b'{"source-ref": "s3://data/a.jpg"}\n{"source-ref": "b.jpg", "class": "x"}\n{"source-ref": "s3://data/c.jpg"}\n'
    )
    reader, samples, errors = _parse(data, labels_required=False)
    assert errors == []
    assert samples == [
        ("s3://data/a.jpg", (), "class_id", "m.manifest:line 1"),
        ("/data/b.jpg", (), "class_id", "m.manifest:line 2"),
        ("s3://data/c.jpg", (), "class_id", "m.manifest:line 3"),
    ]
    assert reader.s3_references == 2
    reader, samples, errors = _parse(data, labels_required=False, allowed_buckets=["other"])
    assert [path for path, _, _, _ in samples] == ["/data/b.jpg"] and reader.s3_references == 2
    assert [code for code, _, _ in errors] == ["PATH_OTHER_BUCKET", "PATH_OTHER_BUCKET"]


def test_lines_after_a_line_without_label_or_with_a_bad_list_are_read() -> None:
    deep = "[" * 100_000  # a label string too deeply nested to parse as JSON: kept as text
    data = "\n".join(
        json.dumps(line)
        for line in [
            {"source-ref": "a.jpg", "other": 1},
            {"source-ref": "b.jpg", "class": [1, "x"]},
            {"source-ref": "c.jpg", "class": deep},
            {"source-ref": "d.jpg", "class": 1_000_000},
            {"source-ref": "e.jpg", "class": 2},
        ]
    ).encode("utf-8")
    reader, samples, errors = _parse(data, label_attribute="class")
    assert [path for path, _, _, _ in samples] == ["/data/d.jpg", "/data/e.jpg"]
    assert errors == [
        ("MANIFEST_NO_LABEL", "no label attribute on this line", "m.manifest:line 1"),
        ("LABEL_INVALID", "label list [1, 'x'] holds non-numbers", "m.manifest:line 2"),
        ("LABEL_INVALID", f"label {repr(deep)[:77]}... is not a number or a list of numbers", "m.manifest:line 3"),
    ]
    assert reader.max_class_id == 2  # 1,000,000 (MAX_NAMED) is no class id to count


def test_an_inference_manifest_reports_a_refused_bucket_on_its_line() -> None:
    _, samples, errors = _parse(
        b'{"source-ref": "s3://other/a.jpg"}\n', labels_required=False, allowed_buckets=["data"]
    )
    assert samples == []
    assert errors == [
        ("PATH_OTHER_BUCKET", "s3://other/a.jpg is in bucket 'other'; allowed: data", "m.manifest:line 1")
    ]
