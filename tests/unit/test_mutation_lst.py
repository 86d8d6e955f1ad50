"""parse_lst: the exact samples (index, labels, path, kind, line) it yields for good .lst lines,
and the exact finding (code, message, ``file:line``) for each bad one, after which the lines
that follow are still read.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``raw.decode("UTF-8")`` for ``"utf-8"``: Python's codec lookup ignores the case of the name.
"""

from __future__ import annotations

import codecs
from typing import List, Tuple

import pytest

from image_dataset.issues import CollectingSink, Issue
from image_dataset.lst import MAX_INDEX, parse_lst
from image_dataset.samples import CLASS_ID, MULTI_HOT

NAME = "train/t.lst"
BAD_INDEX = (
    "is not an integer from 0 to 9223372036854775807 (2**63 - 1, the largest RecordIO id that a .idx key holds)"
)


def _parse(data: bytes, root: str = "train") -> Tuple[List[tuple], List[Issue]]:
    """(index, labels, path, kind, location) of each sample, and the findings."""
    sink = CollectingSink()
    samples = [(s.key, s.labels, s.path, s.kind, s.location) for s in parse_lst(data, NAME, root, sink)]
    return samples, sink.errors + sink.warnings


def test_im2rec_lines_with_a_bom_crlf_blank_lines_and_spaces() -> None:
    data = codecs.BOM_UTF8 + (
        "0\t3\tcat/a b.jpg\r\n"
        "\r\n"
        "   \n"
        f"{MAX_INDEX}\t1.000000\t  dog/b.jpg \r\n"
        "00012\t+2e0\tfrog/ä.png\n"
        "\t\n"
        "7 \t 4.5 \tframes/X"  # no line end after the last line
    ).encode()
    samples, issues = _parse(data)
    assert issues == []
    assert samples == [
        (0, (3.0,), "train/cat/a b.jpg", CLASS_ID, "train/t.lst:line 1"),
        (MAX_INDEX, (1.0,), "train/dog/b.jpg", CLASS_ID, "train/t.lst:line 4"),
        (12, (2.0,), "train/frog/ä.png", CLASS_ID, "train/t.lst:line 5"),
        (7, (4.5,), "train/frames/X", CLASS_ID, "train/t.lst:line 7"),
    ]


def test_several_label_columns_are_a_multi_hot_row() -> None:
    data = b"5\t1\t0.000000\t1e0\ta.jpg\n6\t0\t0\t0\tsub/b.jpg\n"
    samples, issues = _parse(data, "")
    assert issues == []
    assert samples == [
        (5, (1.0, 0.0, 1.0), "a.jpg", MULTI_HOT, "train/t.lst:line 1"),
        (6, (0.0, 0.0, 0.0), "sub/b.jpg", MULTI_HOT, "train/t.lst:line 2"),
    ]


GOOD = b"1\t0\tok.jpg\n"


@pytest.mark.parametrize(
    "bad, issue",
    [
        (b"2\t1\t\xff\xfe.jpg", Issue("TEXT_ENCODING", "byte 4 of the line is not UTF-8", "train/t.lst:line 2")),
        (b"", None),  # a blank line
        (
            b"2\ta.jpg",
            Issue(
                "LST_SYNTAX",
                "expected index, label(s) and path separated by tabs, found 2 field(s)",
                "train/t.lst:line 2",
            ),
        ),
        (b"two\t1\ta.jpg", Issue("LST_BAD_INDEX", f"index 'two' {BAD_INDEX}", "train/t.lst:line 2")),
        (
            b"2\tcat\ta.jpg",
            Issue("LABEL_INVALID", "labels ['cat'] are not numbers", "train/t.lst:line 2"),
        ),
        (
            b"2\t0\t1\ta.jpg",
            Issue("LST_COLUMNS", "2 label columns, earlier lines have 1", "train/t.lst:line 2"),
        ),
        (
            b"2\t1\t../a.jpg",
            Issue(
                "PATH_UNSAFE", "path '../a.jpg' must be relative and stay inside the dataset", "train/t.lst:line 2"
            ),
        ),
    ],
)
def test_a_bad_line_is_reported_and_the_lines_after_it_are_read(bad: bytes, issue: Issue) -> None:
    samples, issues = _parse(GOOD + bad + b"\n3\t2\tlast.jpg\n")
    assert issues == ([issue] if issue else [])
    assert samples == [
        (1, (0.0,), "train/ok.jpg", CLASS_ID, "train/t.lst:line 1"),
        (3, (2.0,), "train/last.jpg", CLASS_ID, "train/t.lst:line 3"),
    ]


def test_labels_that_are_no_numbers_are_shown_with_every_label_column() -> None:
    samples, issues = _parse(b"0\t1\tcat\t0\ta.jpg\n")
    assert samples == []
    assert issues == [Issue("LABEL_INVALID", "labels ['1', 'cat', '0'] are not numbers", "train/t.lst:line 1")]


def test_the_column_count_is_set_by_the_first_good_line() -> None:
    data = b"0\tx\ta.jpg\n1\t1\t0\t1\tb.jpg\n2\t1\tc.jpg\n3\t0\t1\t1\td.jpg\n"
    samples, issues = _parse(data, "")
    assert samples == [
        (1, (1.0, 0.0, 1.0), "b.jpg", MULTI_HOT, "train/t.lst:line 2"),
        (3, (0.0, 1.0, 1.0), "d.jpg", MULTI_HOT, "train/t.lst:line 4"),
    ]
    assert issues == [
        Issue("LABEL_INVALID", "labels ['x'] are not numbers", "train/t.lst:line 1"),
        Issue("LST_COLUMNS", "1 label columns, earlier lines have 3", "train/t.lst:line 3"),
    ]


@pytest.mark.parametrize(
    "index, shown",
    [
        ("x" * 40, "x" * 40),  # up to 40 characters: shown whole
        ("1" * 41, "1" * 37 + "..."),  # longer: cut to 37 and an ellipsis
        ("9" * 39 + "ab", "9" * 37 + "..."),
        ("a" * 37 + "bcdefgh", "a" * 37 + "..."),
        (str(MAX_INDEX + 1), str(MAX_INDEX + 1)),  # an integer out of range
        ("-1", "-1"),
        ("1.0", "1.0"),
    ],
)
def test_a_bad_index_is_shown_cut_to_40_characters(index: str, shown: str) -> None:
    samples, issues = _parse(f"{index}\t1\ta.jpg\n".encode())
    assert samples == []
    assert issues == [Issue("LST_BAD_INDEX", f"index {shown!r} {BAD_INDEX}", "train/t.lst:line 1")]


def test_a_tab_or_space_at_either_end_of_a_line_is_dropped_as_im2rec_drops_it() -> None:
    """im2rec's ``read_list`` strips a line before cutting it at its tabs, and each field after:
    a tab at either end adds no empty field."""
    samples, issues = _parse(b"0\t1\ta.jpg\t\n\t1\t2\tb.jpg\n 2\t 0 \t c.jpg \t\n")
    assert issues == []
    assert samples == [
        (0, (1.0,), "train/a.jpg", CLASS_ID, "train/t.lst:line 1"),
        (1, (2.0,), "train/b.jpg", CLASS_ID, "train/t.lst:line 2"),
        (2, (0.0,), "train/c.jpg", CLASS_ID, "train/t.lst:line 3"),
    ]
