"""imgclf_core.batch and imgclf_core.batch_request: the exact output line of each answer (the
message of an error, the label of a prediction), the line of a RecordIO answer's error, the
resume point after a line that is not JSON, the fingerprint's bytes, the tally, and the
CreateTransformJob settings of each kind of input.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``.decode("UTF-8")`` / ``.encode("ASCII")`` for ``"utf-8"`` / ``"ascii"`` (_error_message,
  answer_line, record_answer_line, resume_point, fingerprint): Python's codec lookup ignores
  the case of the name.
- ``parsed = ""`` for ``parsed = None`` after a body that is not JSON (_error_message,
  record_answer_line): only ``isinstance(parsed, dict)`` reads it, false for both.
- dumps ``ensure_ascii=None`` / ``allow_nan=None`` for ``False``: json reads both flags by their
  truth, and None is false.
- fingerprint ``json.dumps(list(item))`` without ``ensure_ascii=True``: True is json's default.
- resume_point ``end <= 0`` / ``end < 1`` for ``end < 0``: ``end`` is 0 only when the data
  starts with a newline, and then the empty first line is no JSON, which stops at (0, 0) too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict

import pytest

from imgclf_core import batch as rules
from imgclf_core.batch_request import IMAGES, transform_settings
from tests.builders import VERBOSE_ANSWER as VERBOSE

TOP: Dict[str, Any] = {"top_k": [{"label": "cat", "probability": 1}]}
NO_PREDICTION = "HTTP 200 with something other than a prediction"


def _answer(body: Any) -> bytes:
    return json.dumps(body).encode()


# --- the line of an error answer -------------------------------------------------------------


def test_an_error_body_that_is_not_utf8_is_kept_with_replacement_characters() -> None:
    assert rules.answer_line("a.jpg", 502, b"Bad \xff Gateway\n") == {
        "source": "a.jpg",
        "error": {"code": "MODEL_ERROR", "message": "HTTP 502: Bad \ufffd Gateway"},
    }
    body = b'{"error": "not an image \xfe"}'  # JSON once the bad byte is replaced
    assert rules.answer_line("a.jpg", 400, body)["error"] == {
        "code": "IMAGE_INVALID",
        "message": "HTTP 400: not an image \ufffd",
    }


def test_an_error_message_keeps_its_first_300_characters() -> None:
    text = "".join(str(i % 10) for i in range(400))
    line = rules.answer_line("a.jpg", 413, _answer({"error": text}))
    assert line["error"] == {"code": "IMAGE_INVALID", "message": f"HTTP 413: {text[:300]}"}
    exact = rules.answer_line("a.jpg", 413, _answer({"error": text[:300]}))
    assert exact["error"]["message"] == f"HTTP 413: {text[:300]}"


# --- the line of a 200 that is no prediction -------------------------------------------------


@pytest.mark.parametrize(
    "answer, why",
    [
        ([0.7, 0.3], "the answer is not a JSON object"),
        ({"top_k": []}, "the answer has no top_k"),
        ({"top_k": [{"probability": 0.5}]}, "a top_k entry has no label"),
        ({"top_k": [{"label": "cat", "probability": "0.5"}]}, "a top_k entry has no probability"),
        ({**TOP, "predicted_labels": ["cat", 1]}, "predicted_labels is not a list of labels"),
    ],
)
def test_a_200_that_is_no_prediction_says_why_and_shows_the_body(answer: Any, why: str) -> None:
    body = _answer(answer)
    assert len(body) <= 80
    assert rules.answer_line("c.png", 200, body) == {
        "source": "c.png",
        "error": {"code": "MODEL_ERROR", "message": f"{NO_PREDICTION} ({why}): {body.decode()!r}"},
    }


def test_a_long_200_that_is_no_prediction_shows_its_first_80_bytes() -> None:
    body = _answer({"top_k": [], "padding": "p" * 200})
    message = rules.answer_line("c.png", 200, body)["error"]["message"]
    assert message == f"{NO_PREDICTION} (the answer has no top_k): {body[:80].decode()!r}"


# --- the label of a prediction ---------------------------------------------------------------


def test_the_label_is_the_answers_predicted_label_even_when_it_is_not_the_first_of_top_k() -> None:
    answer = dict(VERBOSE, predicted_label="dog")
    line = rules.prediction_line("a/1.jpg", answer)
    assert line == {
        "source": "a/1.jpg",
        "label": "dog",
        "probability": 0.7,
        "top_k": [{"label": "cat", "probability": 0.7}, {"label": "dog", "probability": 0.2}],
    }


def test_without_a_predicted_label_the_label_is_the_first_of_top_k() -> None:
    answer = {"top_k": [{"label": "fox", "probability": 0.6}, {"label": "cat", "probability": 0.4}]}
    line = rules.answer_line("b.jpg", 200, _answer(answer))
    assert rules.dumps(line) == (
        '{"source": "b.jpg", "label": "fox", "probability": 0.6, '
        '"top_k": [{"label": "fox", "probability": 0.6}, {"label": "cat", "probability": 0.4}]}\n'
    )


# --- the line of a RecordIO answer's error ---------------------------------------------------


@pytest.mark.parametrize("code", [600, 601, 399, 200, "400", True, None])
def test_a_record_error_whose_status_is_no_http_error_is_a_500(code: Any) -> None:
    text = _answer({"error": {"code": code, "message": "broken"}})
    assert rules.record_answer_line("#record 2", text) == {
        "source": "#record 2",
        "error": {"code": "MODEL_ERROR", "message": "HTTP 500: broken"},
    }


def test_a_record_error_with_status_599_keeps_it() -> None:
    text = _answer({"error": {"code": 599, "message": "broken"}})
    assert rules.record_answer_line("#record 2", text)["error"] == {
        "code": "MODEL_ERROR",
        "message": "HTTP 599: broken",
    }


@pytest.mark.parametrize("error", [{"code": 400}, {"code": 400, "message": None}, {"code": 400, "message": ""}])
def test_a_record_error_without_a_message_is_the_status_alone(error: Dict[str, Any]) -> None:
    assert rules.record_answer_line("#record 0", _answer({"error": error})) == {
        "source": "#record 0",
        "error": {"code": "IMAGE_INVALID", "message": "HTTP 400"},
    }


# --- resume ----------------------------------------------------------------------------------


def test_resume_stops_at_a_complete_line_that_is_not_json() -> None:
    first = rules.dumps(rules.prediction_line("a", VERBOSE)).encode()
    second = rules.dumps(rules.prediction_line("b", VERBOSE)).encode()
    sources = ["a", "b", "c"]
    assert rules.resume_point(first + b'{"source": "b", "lab\n' + second, sources) == (len(first), 1)
    assert rules.resume_point(first + b"\xff\xfe\n", sources) == (len(first), 1)
    assert rules.resume_point(b"not json\n" + first, sources) == (0, 0)


# --- the fingerprint -------------------------------------------------------------------------


def test_the_fingerprint_is_the_sha256_of_the_model_and_one_ascii_json_line_per_input() -> None:
    """Its bytes are fixed, so that a run interrupted by one release resumes with the next."""
    inputs = [("a.png", 10, 1), ("#record 3", 4096, 512)]
    expected = hashlib.sha256(b'model-1["a.png", 10, 1]\n["#record 3", 4096, 512]\n').hexdigest()
    assert rules.fingerprint("model-1", inputs) == expected


def test_the_fingerprint_of_a_source_that_is_not_ascii() -> None:
    expected = hashlib.sha256('modèle["\\u00e9t\\u00e9/1.jpg", 3]\n'.encode()).hexdigest()
    assert rules.fingerprint("modèle", [("été/1.jpg", 3)]) == expected
    assert rules.fingerprint("modèle", [("été/1.jpg", 3)]) != rules.fingerprint("modèle", [("ete/1.jpg", 3)])


# --- the tally -------------------------------------------------------------------------------


def test_the_tally_counts_every_classified_input() -> None:
    lines = [rules.prediction_line(source, VERBOSE) for source in ("a", "b", "c")]
    counts = rules.tally(lines)
    assert counts == rules.Tally(3, {}, 0)
    assert rules.summary(counts) == "classified 3 of 3 inputs"


def test_an_error_line_without_a_code_counts_as_a_model_error() -> None:
    lines = [{"source": "a", "error": {"message": "?"}}, rules.error_line("b", "IMAGE_INVALID", "x")]
    counts = rules.tally(lines)
    assert counts == rules.Tally(0, {"MODEL_ERROR": 1, "IMAGE_INVALID": 1}, 0)
    assert rules.summary(counts) == "classified 0 of 2 inputs; 2 failed (1 IMAGE_INVALID, 1 MODEL_ERROR)"


# --- the transform job's settings ------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["MultiRecord", "SingleRecord"])
def test_images_go_one_object_per_request_as_they_are(strategy: str) -> None:
    assert transform_settings(IMAGES, strategy) == {
        "ContentType": "application/x-image",
        "SplitType": "None",
        "BatchStrategy": "SingleRecord",
        "AssembleWith": "None",
    }


@pytest.mark.parametrize("strategy", ["MultiRecord", "SingleRecord"])
def test_a_rec_is_split_on_records_and_its_answers_joined_by_lines(strategy: str) -> None:
    assert transform_settings("recordio", strategy) == {
        "ContentType": "application/x-recordio",
        "SplitType": "RecordIO",
        "BatchStrategy": strategy,
        "AssembleWith": "Line",
    }


def test_a_batch_strategy_that_create_transform_job_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError) as raised:
        transform_settings(IMAGES, "AllAtOnce")
    assert str(raised.value) == "BatchStrategy 'AllAtOnce' is not one of MultiRecord, SingleRecord"
