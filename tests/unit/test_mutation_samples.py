"""samples: which s3:// references a dataset may use (a key inside an allowed bucket), and the
code, message and location reported for each one refused."""

from __future__ import annotations

import os

from image_dataset.issues import CollectingSink
from image_dataset.samples import (
    AUTO,
    CLASS_ID,
    CLASS_IDS,
    LABEL_CLASS_IDS,
    LABEL_LIST,
    LABEL_MULTI_HOT,
    MULTI_HOT,
    Sample,
    check_s3_uri,
    decide_list_kinds,
    lst_path_problem,
    parse_s3_uri,
    printable,
    resolve_path,
    utf8_name,
)


def _check(uri: str, allowed=("data",)):
    sink = CollectingSink()
    ok = check_s3_uri(uri, list(allowed), "m.manifest:line 3", sink)
    return ok, [tuple(i) for i in sink.errors + sink.warnings]


def test_parse_s3_uri_splits_at_the_first_slash() -> None:
    assert parse_s3_uri("s3://data/train/cat/1.jpg") == ("data", "train/cat/1.jpg")
    assert parse_s3_uri("s3://data") == ("data", "")


def test_a_key_inside_an_allowed_bucket_may_be_used() -> None:
    assert _check("s3://data/train/cat/1.jpg") == (True, [])
    assert _check("s3://data/a..b/1.jpg") == (True, [])  # '..' inside a name is no step up


def test_a_uri_without_bucket_or_key_or_with_a_step_up_is_unsafe() -> None:
    for uri in ("s3://data/", "s3:///train/1.jpg", "s3://data/train/../../other/1.jpg", "s3://data/.."):
        assert _check(uri) == (
            False,
            [("PATH_UNSAFE", f"{uri!r} is not an s3://bucket/key URI inside a bucket", "m.manifest:line 3")],
        ), uri


def test_a_key_in_another_bucket_names_the_allowed_ones() -> None:
    assert _check("s3://other/k.jpg", ("data", "more")) == (
        False,
        [("PATH_OTHER_BUCKET", "s3://other/k.jpg is in bucket 'other'; allowed: data, more", "m.manifest:line 3")],
    )
    assert _check("s3://other/k.jpg", ()) == (
        False,
        [("PATH_OTHER_BUCKET", "s3://other/k.jpg is in bucket 'other'; allowed: none", "m.manifest:line 3")],
    )


def test_printable_shows_undecodable_bytes_of_a_file_name() -> None:
    assert printable(b"cat\xff.jpg".decode("utf-8", "surrogateescape")) == "cat\\xff.jpg"
    assert printable("chat-été.jpg") == "chat-été.jpg"
    assert printable("a\tb\nc\rd\x00e\x1bf\x7fg.jpg") == "a\\tb\\nc\\rd\\x00e\\x1bf\\x7fg.jpg"
    assert printable(" ~\x80.jpg") == " ~\x80.jpg"  # printable ASCII and a C1 character stay


def _sample(labels, kind=LABEL_LIST) -> Sample:
    return Sample("a.jpg", tuple(float(v) for v in labels), kind, "x")


def test_a_label_format_given_decides_only_the_lists() -> None:
    samples = [_sample([3], CLASS_ID), _sample([0, 1])]
    assert [s.kind for s in decide_list_kinds(samples, LABEL_CLASS_IDS, None)] == [CLASS_ID, CLASS_IDS]
    assert [s.kind for s in decide_list_kinds(samples, LABEL_MULTI_HOT, 2)] == [CLASS_ID, MULTI_HOT]


def test_auto_decides_class_ids_once_a_list_cannot_be_multi_hot_and_keeps_going() -> None:
    samples = [_sample([1, 0, 0]), _sample([0, 2]), _sample([4], CLASS_ID), _sample([0, 1, 0]), _sample([1])]
    assert [s.kind for s in decide_list_kinds(samples, AUTO, None)] == [
        CLASS_IDS,
        CLASS_IDS,
        CLASS_ID,
        CLASS_IDS,
        CLASS_IDS,
    ]
    lengths_differ = [_sample([1, 0, 0]), _sample([0, 1])]
    assert [s.kind for s in decide_list_kinds(lengths_differ, AUTO, None)] == [CLASS_IDS, CLASS_IDS]
    same_length = [_sample([1, 0, 0]), _sample([0, 1, 1])]
    assert [s.kind for s in decide_list_kinds(same_length, AUTO, None)] == [MULTI_HOT, MULTI_HOT]


def test_resolve_path_takes_backslashes_as_separators_and_refuses_drives() -> None:
    sink = CollectingSink()
    assert resolve_path("/data", "train\\cat\\1.jpg", "w", sink) == os.path.join("/data", "train", "cat", "1.jpg")
    assert resolve_path("/data", "a", "w", sink) == os.path.join("/data", "a")
    assert sink.errors == []
    for drive in ("C:", "C:x.jpg"):
        assert resolve_path("/data", drive, "w", sink) is None
    assert [i.code for i in sink.errors] == ["PATH_UNSAFE", "PATH_UNSAFE"]


def test_a_path_with_a_trailing_separator_names_a_folder_and_is_refused() -> None:
    """im2rec and MXNet's list readers open ``cat/1.jpg/`` as given: ENOTDIR, not the image."""
    sink = CollectingSink()
    for path in ("cat/1.jpg/", "cat\\1.jpg\\", "cat/"):
        assert resolve_path("/data", path, "train.lst:3", sink) is None
    assert [(i.code, i.location) for i in sink.errors] == [("PATH_UNSAFE", "train.lst:3")] * 3
    assert sink.errors[0].message == "path 'cat/1.jpg/' ends with a folder separator, so it names a folder, not an image file"
    assert resolve_path("/data", "./cat//1.jpg", "w", CollectingSink()) == os.path.join("/data", "cat", "1.jpg")


def test_a_file_name_that_cannot_be_a_key_or_a_lst_path_is_refused() -> None:
    sink = CollectingSink()
    assert utf8_name("train/cat.jpg", sink)
    bad = b"cat\xff.jpg".decode("utf-8", "surrogateescape")
    assert not utf8_name(bad, sink)
    assert not utf8_name("cat\t1.jpg", sink)
    assert [tuple(i)[:1] + tuple(i)[2:] for i in sink.errors] == [
        ("TEXT_ENCODING", "cat\\xff.jpg"),
        ("PATH_UNSAFE", "cat\\t1.jpg"),  # escaped: a location is one line
    ]
    assert sink.errors[0].message == "the file name is not valid UTF-8, so it cannot become an S3 key"
    assert sink.errors[1].message.startswith("the file name ")


def test_a_file_name_with_a_backslash_is_refused_as_it_would_not_read_back() -> None:
    """A list written from ``cat/a\\b.jpg`` would be read as cat/a/b.jpg (Windows separators)."""
    sink = CollectingSink()
    assert not utf8_name("train/cat/a\\b.jpg", sink)
    assert [tuple(i) for i in sink.errors] == [
        (
            "PATH_UNSAFE",
            "the file name holds a backslash, which .lst, manifest and annotations.json readers take for a "
            "folder separator",
            "train/cat/a\\b.jpg",
        )
    ]
    assert resolve_path("", "cat\\a.jpg", "w", sink) == "cat/a.jpg"  # what a list with it means


def test_lst_path_problem_names_every_breaking_character() -> None:
    assert lst_path_problem("a\tb\nc\rd.jpg") == (
        "holds a tab and a line feed and a carriage return, which the .lst format cannot carry "
        "(it separates fields and lines)"
    )
    assert lst_path_problem("a\rb.jpg") == (
        "holds a carriage return, which the .lst format cannot carry (it separates fields and lines)"
    )
    assert lst_path_problem("cat/ x.jpg") == (
        "has a name that starts or ends with white space (' x.jpg'), which .lst readers strip"
    )
    assert lst_path_problem("cat/x y.jpg") is None


def test_resolve_path_refuses_a_nul_and_joins_without_a_base() -> None:
    sink = CollectingSink()
    assert resolve_path("/data", "a\0b.jpg", "w", sink) is None
    assert [i.message for i in sink.errors] == ["path 'a\\x00b.jpg' holds a NUL byte, which no file name can hold"]
    assert resolve_path("", "./train//cat/1.jpg", "w", sink) == "train/cat/1.jpg"
