"""JSON text of a dataset is read strictly (image_dataset.json_text): a lone surrogate escape
(``"\\ud800"``) in a manifest, annotations.json or labels.json is TEXT_ENCODING at its file and
line, instead of a dataset called valid that pack then cannot write; nesting too deep is a syntax
error, not a RecursionError; labels.json may start with a byte-order mark.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``_check_text``: ``"UTF-8"`` for ``"utf-8"`` in ``item.encode``, in the backslashreplace
  ``encode`` and in its ``decode`` (codec names are looked up case-insensitively: the same
  codec, the same errors).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Tuple

import pytest

from image_dataset import json_text
from image_dataset.context import ValidationOptions
from image_dataset.validate import validate_path
from tests.builders import jpeg, manifest_lines, write_file, write_rec

LONE = "a\ud800b"  # json.dumps writes it as the escape "a\ud800b"


def _errors(root: str) -> List[Tuple[str, str, str]]:
    report = validate_path(root, ValidationOptions(workers=1, decode_images=False))
    return [(i["code"], i["location"], i["message"]) for i in report["errors"]]  # type: ignore[index]


def _manifest(root: str, rows: List[Dict[str, object]]) -> None:
    for channel in ("train", "validation"):
        for i in range(2):
            write_file(os.path.join(root, channel, f"{i}.jpg"), jpeg(8, 8))
        write_file(os.path.join(root, channel, "m.manifest"), manifest_lines(rows))


def test_a_surrogate_pair_is_text_and_a_lone_half_is_not() -> None:
    assert json_text.loads('{"k": "\\ud83d\\ude00"}') == {"k": "\U0001f600"}
    for text, escape in (
        ('["x\\udfff"]', "\\udfff"),
        ('{"a\\ud800": 1}', "\\ud800"),
        ('[[{"v": "\\uDBFF"}]]', "\\udbff"),
    ):
        with pytest.raises(json_text.JSONTextError) as caught:
            json_text.loads(text)
        assert caught.value.code == "TEXT_ENCODING" and escape in str(caught.value)
        assert "half of a UTF-16 surrogate pair" in str(caught.value)


def test_nesting_too_deep_and_bad_syntax_are_syntax_errors_with_their_line() -> None:
    with pytest.raises(json_text.JSONTextError) as caught:
        json_text.loads("[" * 100_000)
    assert caught.value.code == "JSON_SYNTAX" and str(caught.value) == "nested too deeply to read"
    with pytest.raises(json_text.JSONTextError) as caught:
        json_text.loads('{\n"a": 1,\n}')
    assert (caught.value.code, caught.value.line, caught.value.msg) == (
        "JSON_SYNTAX",
        3,
        "Expecting property name enclosed in double quotes",
    )


def test_a_manifest_class_name_with_a_lone_surrogate_is_an_error_at_its_line(tmp_path) -> None:
    rows: List[Dict[str, object]] = [
        {"source-ref": "0.jpg", "class": 0, "class-metadata": {"class-name": "cat"}},
        {"source-ref": "1.jpg", "class": 1, "class-metadata": {"class-name": LONE}},
    ]
    _manifest(str(tmp_path), rows)
    errors = _errors(str(tmp_path))
    assert ("TEXT_ENCODING", "train/m.manifest:line 2") in [e[:2] for e in errors]
    assert ("TEXT_ENCODING", "validation/m.manifest:line 2") in [e[:2] for e in errors]
    assert all("'a\\ud800b' holds \\ud800" in e[2] for e in errors if e[0] == "TEXT_ENCODING")


def test_a_manifest_source_ref_with_a_lone_surrogate_is_an_error_not_a_crash(tmp_path) -> None:
    _manifest(str(tmp_path), [{"source-ref": "0.jpg", "class": 0}, {"source-ref": "\udc001.jpg", "class": 1}])
    assert [e[:2] for e in _errors(str(tmp_path))] == [
        ("TEXT_ENCODING", "train/m.manifest:line 2"),
        ("TEXT_ENCODING", "validation/m.manifest:line 2"),
    ]


def test_an_annotations_label_with_a_lone_surrogate_is_an_error(tmp_path) -> None:
    for channel in ("train", "validation"):
        write_file(str(tmp_path / channel / "0.jpg"), jpeg(8, 8))
        doc = {"labels": ["cat", LONE], "images": [{"path": "0.jpg", "label": 0}]}
        write_file(str(tmp_path / channel / "annotations.json"), json.dumps(doc))
    found = [e[:2] for e in _errors(str(tmp_path))]
    assert ("TEXT_ENCODING", "train/annotations.json") in found
    assert ("TEXT_ENCODING", "validation/annotations.json") in found


def _recordio(root: str, labels: bytes) -> None:
    for channel in ("train", "validation"):
        write_rec(os.path.join(root, channel, f"{channel}.rec"), [(0, jpeg(8, 8)), (1, jpeg(8, 8))])
        write_file(os.path.join(root, channel, "labels.json"), labels)


def test_labels_json_with_a_byte_order_mark_is_read(tmp_path) -> None:
    _recordio(str(tmp_path), b"\xef\xbb\xbf" + json.dumps(["cat", "dog"]).encode())
    report = validate_path(str(tmp_path), ValidationOptions(workers=1, decode_images=False))
    assert report["valid"] is True and report["label_names"] == ["cat", "dog"]


@pytest.mark.parametrize(
    "labels, says",
    [(b"[" * 100_000, "nested too deeply to read"), (json.dumps(["cat", LONE]).encode(), "holds \\ud800")],
)
def test_labels_json_too_deep_or_with_a_lone_surrogate_is_invalid(tmp_path, labels: bytes, says: str) -> None:
    _recordio(str(tmp_path), labels)
    errors = _errors(str(tmp_path))
    assert [e[:2] for e in errors] == [
        ("LABEL_NAMES_INVALID", "train/labels.json"),
        ("LABEL_NAMES_INVALID", "validation/labels.json"),
    ]
    assert all(says in e[2] for e in errors)


def test_pack_refuses_a_manifest_with_a_lone_surrogate_and_writes_nothing(tmp_path, cli) -> None:
    rows: List[Dict[str, object]] = [
        {"source-ref": "0.jpg", "class": 0, "class-metadata": {"class-name": "cat"}},
        {"source-ref": "1.jpg", "class": 1, "class-metadata": {"class-name": LONE}},
    ]
    _manifest(str(tmp_path / "src"), rows)
    (tmp_path / "out").mkdir()
    code, out, err = cli("pack", str(tmp_path / "src" / "train" / "m.manifest"), str(tmp_path / "out" / "p"))
    assert code == 1 and "TEXT_ENCODING m.manifest:line 2" in out + err and "Traceback" not in out + err
    assert os.listdir(tmp_path / "out") == []


def test_a_long_string_with_a_lone_surrogate_is_shown_by_its_first_80_characters() -> None:
    with pytest.raises(json_text.JSONTextError) as caught:
        json_text.loads(json.dumps(["x" * 100 + "\ud800"]))
    message = f"the string '{'x' * 80}' holds \\ud800, half of a UTF-16 surrogate pair, which is not a character"
    assert (caught.value.code, str(caught.value), caught.value.msg) == ("TEXT_ENCODING", message, message)


@pytest.mark.parametrize(
    "text, code, where, message",
    [
        ("[" * 100_000, "JSON_SYNTAX", "annotations.json:line 1", "nested too deeply to read"),
        (
            json.dumps({"labels": ["cat", LONE], "images": []}),
            "TEXT_ENCODING",
            "annotations.json",
            "the string 'a\\ud800b' holds \\ud800, half of a UTF-16 surrogate pair, which is not a character",
        ),
    ],
    ids=["too-deep", "lone-surrogate"],
)
def test_an_annotations_file_too_deep_or_with_a_lone_surrogate_says_why(
    tmp_path, text: str, code: str, where: str, message: str
) -> None:
    for channel in ("train", "validation"):
        write_file(str(tmp_path / channel / "0.jpg"), jpeg(8, 8))
        write_file(str(tmp_path / channel / "annotations.json"), text)
    errors = [e for e in _errors(str(tmp_path)) if e[0] != "CHANNEL_EMPTY"]  # no sample is read: both are empty
    assert errors == [(code, f"{channel}/{where}", message) for channel in ("train", "validation")]
