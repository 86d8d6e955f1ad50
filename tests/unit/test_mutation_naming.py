"""naming: the exact bounds and messages of the dataset-name and CustomerMetadataValue rules
(written to kill mutmut's survivors: each test pins a bound or a message a user reads)."""

from __future__ import annotations

import pytest

from image_dataset.naming import (
    MAX_METADATA_VALUE,
    RULE,
    DatasetNameError,
    check_dataset_location,
    metadata_value,
    metadata_value_problem,
    name_problem,
)


def test_a_metadata_value_of_one_character_and_of_the_maximum_is_valid() -> None:
    assert metadata_value_problem("a") is None
    assert metadata_value_problem("a" * MAX_METADATA_VALUE) is None
    assert MAX_METADATA_VALUE == 256


def test_a_metadata_value_that_is_empty_or_too_long_is_refused_with_its_length() -> None:
    assert metadata_value_problem("") == "0 characters, not 1-256"
    assert metadata_value_problem("a" * 257) == "257 characters, not 1-256"


def test_the_refusal_lists_each_bad_character_once_in_order_and_the_allowed_punctuation() -> None:
    assert metadata_value_problem("b$a#$") == "'#' '$' not allowed (letters, digits, spaces and _ . : / = + - @ only)"


def test_a_metadata_value_of_nothing_valid_is_a_dash() -> None:
    assert metadata_value("") == "-"
    assert metadata_value("#") == "-"
    assert metadata_value("a#b") == "a-b"


def test_a_dataset_name_or_version_is_checked_with_its_own_word() -> None:
    check_dataset_location("pets", "v1")
    with pytest.raises(DatasetNameError) as caught:
        check_dataset_location("pets/x", "v1")
    assert str(caught.value) == f"dataset name 'pets/x': '/' not allowed; {RULE}"
    with pytest.raises(DatasetNameError) as caught:
        check_dataset_location("pets", "v#1")
    assert str(caught.value) == f"dataset version 'v#1': '#' not allowed; {RULE}"


def test_path_steps_and_lengths_are_refused() -> None:
    assert name_problem("name", ".") == f"dataset name '.' is a path step; {RULE}"
    assert name_problem("version", "..") == f"dataset version '..' is a path step; {RULE}"
    assert name_problem("name", "...") is None
    assert name_problem("name", "a" * 64) is None
    assert name_problem("name", "a" * 65) == f"dataset name {'a' * 65!r} has 65 characters; {RULE}"
    assert name_problem("name", "b" * 100) == f"dataset name {'b' * 80!r} has 100 characters; {RULE}"
    assert name_problem("name", "") == f"dataset name '' has 0 characters; {RULE}"
