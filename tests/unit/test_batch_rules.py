"""imgclf_core.batch: the output line of an answer or an error, the resume point of an
interrupted run's output, the fingerprint and the summary."""

from __future__ import annotations

import json

import pytest

from imgclf_core import batch as rules
from tests.builders import VERBOSE_ANSWER as VERBOSE


def test_a_verbose_answer_becomes_label_probability_and_top_k() -> None:
    line = rules.prediction_line("a/1.jpg", VERBOSE)
    assert line == {
        "source": "a/1.jpg",
        "label": "cat",
        "probability": 0.7,
        "top_k": [{"label": "cat", "probability": 0.7}, {"label": "dog", "probability": 0.2}],
    }
    assert list(line) == ["source", "label", "probability", "top_k"]  # the documented order


def test_a_multi_label_answer_adds_the_labels_over_the_threshold() -> None:
    answer = dict(VERBOSE, predicted_labels=["cat", "dog"])
    assert rules.prediction_line("x", answer)["labels"] == ["cat", "dog"]
    assert rules.prediction_line("x", dict(VERBOSE, predicted_labels=[]))["labels"] == []


@pytest.mark.parametrize(
    "answer",
    [
        [0.7, 0.3],  # the plain JSON answer: no top_k
        {"top_k": []},
        {"top_k": [{"label": "cat"}]},
        {"top_k": [{"label": "cat", "probability": True}]},
        {"top_k": [{"label": 3, "probability": 0.5}]},
        dict(VERBOSE, predicted_labels="cat"),
    ],
)
def test_what_is_no_prediction_is_refused(answer) -> None:
    with pytest.raises(ValueError):
        rules.prediction_line("x", answer)


@pytest.mark.parametrize(
    "status, code",
    [
        (400, "IMAGE_INVALID"),
        (413, "IMAGE_INVALID"),
        (415, "IMAGE_INVALID"),
        (500, "MODEL_ERROR"),
        (503, "MODEL_ERROR"),
    ],
)
def test_an_http_error_becomes_an_error_line(status, code) -> None:
    line = rules.answer_line("b.png", status, json.dumps({"error": "the body is not a JPEG or PNG image"}).encode())
    assert line == {
        "source": "b.png",
        "error": {"code": code, "message": f"HTTP {status}: the body is not a JPEG or PNG image"},
    }


def test_an_error_body_that_is_not_json_is_kept_as_text() -> None:
    line = rules.answer_line("b.png", 502, b"Bad Gateway\n")
    assert line["error"] == {"code": "MODEL_ERROR", "message": "HTTP 502: Bad Gateway"}
    assert rules.answer_line("b.png", 500, b"")["error"]["message"] == "HTTP 500"


def test_a_200_that_is_no_prediction_is_a_model_error() -> None:
    assert rules.answer_line("c", 200, json.dumps(VERBOSE).encode()) == rules.prediction_line("c", VERBOSE)
    for body in (b"[0.5, 0.5]", b"not json", b"\xff\xfe"):
        line = rules.answer_line("c", 200, body)
        assert line["error"]["code"] == "MODEL_ERROR"
        assert "HTTP 200" in line["error"]["message"]


def test_error_messages_are_one_line() -> None:
    assert rules.error_line("s", "IMAGE_UNREADABLE", "cannot read\n  s: gone")["error"]["message"] == (
        "cannot read s: gone"
    )


def test_dumps_is_one_utf8_line_and_refuses_nan() -> None:
    text = rules.dumps({"source": "été/1.jpg", "label": "chat", "probability": 1.0, "top_k": []})
    assert text.endswith("\n") and text.count("\n") == 1 and "été" in text
    with pytest.raises(ValueError):
        rules.dumps({"source": "x", "probability": float("nan")})


def _lines(*sources: str, error_at: int = -1) -> bytes:
    lines = []
    for i, source in enumerate(sources):
        line = (
            rules.error_line(source, "IMAGE_INVALID", "bad")
            if i == error_at
            else rules.prediction_line(source, VERBOSE)
        )
        lines.append(rules.dumps(line))
    return "".join(lines).encode()


def test_resume_keeps_the_complete_lines_of_the_inputs_in_order() -> None:
    sources = ["a", "b", "c", "d"]
    data = _lines("a", "b", error_at=1)
    assert rules.resume_point(data, sources) == (len(data), 2)
    assert rules.resume_point(b"", sources) == (0, 0)
    assert rules.resume_point(_lines(*sources), sources) == (len(_lines(*sources)), 4)


def test_resume_drops_a_torn_last_line() -> None:
    sources = ["a", "b", "c"]
    whole = _lines("a", "b")
    for cut in range(len(_lines("a")) + 1, len(whole)):  # every way the second line can be torn
        assert rules.resume_point(whole[:cut], sources) == (len(_lines("a")), 1)


def test_resume_stops_at_a_line_that_does_not_fit() -> None:
    sources = ["a", "b", "c"]
    assert rules.resume_point(_lines("a", "c"), sources) == (len(_lines("a")), 1)  # another input's line
    assert rules.resume_point(_lines("a") + b'{"source": "b"}\n', sources)[1] == 1  # neither result nor error
    assert rules.resume_point(_lines("a") + b"[1]\n" + _lines("b"), sources)[1] == 1
    assert rules.resume_point(_lines("a", "b", "c", "d"), sources)[1] == 3  # more lines than inputs


def test_the_fingerprint_follows_the_model_and_the_inputs() -> None:
    inputs = [("a.png", 10, 1), ("b.png", 20, 2)]
    base = rules.fingerprint("model-1", inputs)
    assert base == rules.fingerprint("model-1", list(inputs))
    assert base != rules.fingerprint("model-2", inputs)
    assert base != rules.fingerprint("model-1", inputs[::-1])
    assert base != rules.fingerprint("model-1", [("a.png", 10, 1), ("b.png", 21, 2)])
    assert base != rules.fingerprint("model-1", inputs[:1])


def test_summary_counts_every_outcome() -> None:
    lines = [
        rules.prediction_line("a", VERBOSE),
        rules.error_line("b", "IMAGE_INVALID", "x"),
        rules.error_line("c", "IMAGE_UNREADABLE", "y"),
        rules.error_line("d", "IMAGE_INVALID", "z"),
    ]
    counts = rules.tally(lines, skipped=1)
    assert counts == rules.Tally(1, {"IMAGE_INVALID": 2, "IMAGE_UNREADABLE": 1}, 1)
    assert counts.total == 4
    assert rules.summary(counts, "out.jsonl") == (
        "classified 1 of 4 inputs; 3 failed (2 IMAGE_INVALID, 1 IMAGE_UNREADABLE); "
        "skipped 1 file that is not an image; wrote out.jsonl"
    )
    assert rules.summary(rules.Tally(5, {}, 2)) == "classified 5 of 5 inputs; skipped 2 files that are not images"
