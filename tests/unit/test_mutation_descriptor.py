"""descriptor: every rule of dataset.json with its exact message, each bound at its edge, the
text of hyperparameter values and what a dump leaves out.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``parse_descriptor``: ``decode("UTF-8")`` for ``decode("utf-8")``, and ``dump_descriptor``:
  ``encode("UTF-8")`` for ``encode("utf-8")`` (codec names are looked up case-insensitively:
  the same codec).
"""

from __future__ import annotations

import json

import pytest

from image_dataset.descriptor import (
    MAX_ARGUMENT,
    MAX_BYTES,
    Descriptor,
    DescriptorError,
    dump_descriptor,
    parse_descriptor,
)


def _refused(data: bytes) -> str:
    with pytest.raises(DescriptorError) as caught:
        parse_descriptor(data)
    return str(caught.value)


def _doc(**keys: object) -> bytes:
    return json.dumps(keys).encode("utf-8")


def test_the_size_limit_is_inclusive() -> None:
    assert MAX_BYTES == 256 * 1024
    fits = b'{"rerun": ""' + b" " * (MAX_BYTES - 13) + b"}"
    assert len(fits) == MAX_BYTES
    assert parse_descriptor(fits) == Descriptor()
    over = fits + b" "
    assert _refused(over) == f"the descriptor has {MAX_BYTES + 1} bytes, over the limit of {MAX_BYTES}"


def test_text_that_is_not_utf8_json_or_an_object_is_refused() -> None:
    assert _refused(b'{"a": "\xff"}') == "not UTF-8 text (byte 7)"
    assert _refused(b"{") == "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    assert _refused(b"[1]") == "the descriptor must be a JSON object"


def test_an_unknown_key_is_named_with_the_known_ones() -> None:
    assert _refused(_doc(zeta=1, alpha=2, format="lst")) == (
        "alpha: unknown key (known: format, file_count, label_names, label_attribute, hyperparameters, rerun)"
    )


def test_each_key_is_checked_with_its_message() -> None:
    assert _refused(_doc(format="zip")) == "format: 'zip' is not one of recordio, lst, manifest, annotations, folders"
    for count in (0, -1, True, 1.5, "2"):
        assert _refused(_doc(file_count=count)) == f"file_count: {count!r} is not a positive integer"
    for names in ("cat", ["cat", ""], ["cat", 3]):
        assert _refused(_doc(label_names=names)) == "label_names: must be a list of non-empty strings"
    assert _refused(_doc(label_names=["cat", "dog", "cat"])) == "label_names: names repeat"
    for attribute in ("", 3):
        assert _refused(_doc(label_attribute=attribute)) == "label_attribute: must be a non-empty string"
    for attribute in ("a" * (MAX_ARGUMENT + 1), "cl\nass", "cl\u2028ass", "cl\x85ass", "cl\rass"):
        assert _refused(_doc(label_attribute=attribute)) == (
            "label_attribute: at most 256 characters, without line breaks"
        )
    assert _refused(_doc(hyperparameters=["epochs"])) == "hyperparameters: must be an object of name: value"
    for rerun in ("a" * 17, "a b", 3):
        assert _refused(_doc(rerun=rerun)) == f"rerun: {rerun!r} is not up to 16 characters of A-Z, a-z, 0-9 and -"


def test_values_at_their_bounds_are_accepted() -> None:
    got = parse_descriptor(
        _doc(
            format="manifest",
            file_count=1,
            label_names=["cat", "dog"],
            label_attribute="a" * MAX_ARGUMENT,
            hyperparameters={"epochs": 30, "lr": 0.5, "augment": True, "shuffle": False, "opt": "sgd"},
            rerun="Ab-9" * 4,
        )
    )
    assert got == Descriptor(
        format="manifest",
        file_count=1,
        label_names=["cat", "dog"],
        label_attribute="a" * MAX_ARGUMENT,
        hyperparameters={"epochs": "30", "lr": "0.5", "augment": "true", "shuffle": "false", "opt": "sgd"},
        rerun="Ab-9Ab-9Ab-9Ab-9",
    )


def test_a_hyperparameter_that_is_no_single_value_is_named() -> None:
    assert _refused(_doc(hyperparameters={"layers": [1, 2]})) == "hyperparameters.layers: [1, 2] is not a single value"
    assert _refused(_doc(hyperparameters={"x": None})) == "hyperparameters.x: None is not a single value"


def test_a_dump_leaves_out_what_is_unset_and_reads_back() -> None:
    assert Descriptor().as_dict() == {}
    assert dump_descriptor(Descriptor()) == b"{}\n"
    full = Descriptor(format="recordio", file_count=2, hyperparameters={"epochs": "3"}, rerun="r1")
    assert full.as_dict() == {"format": "recordio", "file_count": 2, "hyperparameters": {"epochs": "3"}, "rerun": "r1"}
    assert dump_descriptor(full) == (
        b'{\n  "file_count": 2,\n  "format": "recordio",\n  "hyperparameters": {\n    "epochs": "3"\n  },\n'
        b'  "rerun": "r1"\n}\n'
    )
    assert parse_descriptor(dump_descriptor(full)) == full
