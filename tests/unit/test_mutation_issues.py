"""issues: the sinks' arithmetic — what a CollectingSink keeps and counts, how it absorbs the
state of another (a worker's, a sub-dataset's) and what it reports as suppressed."""

from __future__ import annotations

import pytest

from image_dataset.issues import CODES, ERROR, WARNING, CollectingSink, DatasetError, Issue, IssueSink


def _sink(limit: int, reports) -> CollectingSink:
    sink = CollectingSink(limit_per_code=limit)
    for code, times in reports:
        for i in range(times):
            sink.report(code, f"{code} {i}", f"f:line {i}")
    return sink


def test_a_sink_keeps_up_to_its_limit_per_code_and_counts_all() -> None:
    sink = _sink(2, [("LABEL_INVALID", 5), ("FILE_EXTRA", 2), ("PATH_UNSAFE", 1)])
    assert [i.code for i in sink.errors] == ["LABEL_INVALID", "LABEL_INVALID", "PATH_UNSAFE"]
    assert [i.code for i in sink.warnings] == ["FILE_EXTRA", "FILE_EXTRA"]
    assert sink.counts == {"LABEL_INVALID": 5, "FILE_EXTRA": 2, "PATH_UNSAFE": 1}
    assert sink.error_count == 6
    assert sink.suppressed() == {"LABEL_INVALID": 3}  # FILE_EXTRA: at the limit, nothing suppressed
    assert sink.to_state() == {
        "issues": [list(i) for i in sink.errors + sink.warnings],
        "counts": {"LABEL_INVALID": 5, "FILE_EXTRA": 2, "PATH_UNSAFE": 1},
    }


def test_absorb_reports_the_kept_problems_relocated_and_adds_the_uncounted_rest() -> None:
    worker = _sink(2, [("LABEL_INVALID", 5), ("FILE_EXTRA", 1), ("PATH_UNSAFE", 3)])
    main = CollectingSink()
    main.report("LABEL_INVALID", "own", "train.lst:line 1")
    main.absorb(worker.to_state(), relocate=lambda where: "train/" + where, skip={"PATH_UNSAFE"})
    assert main.errors == [
        Issue("LABEL_INVALID", "own", "train.lst:line 1"),
        Issue("LABEL_INVALID", "LABEL_INVALID 0", "train/f:line 0"),
        Issue("LABEL_INVALID", "LABEL_INVALID 1", "train/f:line 1"),
    ]
    assert main.warnings == [Issue("FILE_EXTRA", "FILE_EXTRA 0", "train/f:line 0")]
    assert main.counts == {"LABEL_INVALID": 6, "FILE_EXTRA": 1}  # the skipped code is not counted at all
    assert main.error_count == 6


def test_absorb_takes_the_counts_of_a_sink_that_kept_nothing() -> None:
    worker = _sink(0, [("LABEL_INVALID", 4), ("FILE_EXTRA", 1)])
    assert worker.errors == [] and worker.warnings == []
    main = CollectingSink()
    main.report("FILE_EXTRA", "own", "x")
    main.absorb(worker.to_state())
    assert main.counts == {"FILE_EXTRA": 2, "LABEL_INVALID": 4}
    assert main.error_count == 4
    assert main.suppressed() == {}


def test_absorb_keeps_the_limit_of_the_absorbing_sink() -> None:
    worker = _sink(50, [("LABEL_INVALID", 3)])
    main = CollectingSink(limit_per_code=1)
    main.absorb(worker.to_state())
    assert [i.message for i in main.errors] == ["LABEL_INVALID 0"]
    assert main.counts == {"LABEL_INVALID": 3}
    assert main.suppressed() == {"LABEL_INVALID": 2}


def test_the_base_sink_raises_on_an_error_and_lets_a_warning_pass() -> None:
    sink = IssueSink()
    sink.report("FILE_EXTRA", "extra", "a")
    with pytest.raises(DatasetError) as caught:
        sink.report("LABEL_INVALID", "bad label", "a.lst:line 2")
    assert caught.value.code == "LABEL_INVALID"
    assert str(caught.value) == "a.lst:line 2: bad label [LABEL_INVALID]"
    assert sink.error_count == 0


def test_an_issue_knows_its_severity_and_its_dict() -> None:
    issue = Issue("FILE_EXTRA", "m", "loc")
    assert issue.severity == WARNING == CODES["FILE_EXTRA"].severity
    assert Issue("IMG_CORRUPT", "m", "loc").severity == ERROR
    assert issue.as_dict() == {"code": "FILE_EXTRA", "message": "m", "location": "loc"}
    with pytest.raises(KeyError, match="unregistered issue code NOPE"):
        DatasetError("NOPE", "m", "loc")


def test_a_collecting_sink_keeps_50_of_a_code_by_default() -> None:
    sink = CollectingSink()
    for i in range(51):
        sink.report("FILE_EXTRA", str(i), "x")
    assert len(sink.warnings) == 50 and sink.suppressed() == {"FILE_EXTRA": 1}
