"""The TensorFlow serving handlers (image_training.tf_inference) where the other tests leave them
loose: ``model_fn``, ``predict_fn`` and ``_probabilities`` with a small stand-in for the
``tensorflow`` module (the main environment has no TensorFlow; the stand-in has only what the
handlers touch: ``tf.constant``, ``tf.errors.InvalidArgumentError`` and ``tf.saved_model.load``),
``_graph_error`` on the messages a TensorFlow graph error carries, ``_render``'s RecordIO answer
(the requested format and ``top_k`` for every record), and ``_predict_alone``'s request to TF
Serving (POST, JSON, a 60 s timeout). Also one rule each of tf_hyperparameters and the gate.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``_predictions``: ``400 <= status <= 500`` and ``400 <= status < 501`` (a 500 stays a 500
  either way); ``content.decode('UTF-8', ...)`` (codec names are looked up case-insensitively).
- ``_predict_alone``: ``Request(..., method=None)`` and no ``method`` (urllib's default method
  for a request with data is POST, and the data is never None here); the header spelled
  ``content-type`` or ``CONTENT-TYPE`` (``Request`` stores every header name as
  ``name.capitalize()``: all three are sent as ``Content-type``); ``_predictions(err.code, ...)[1]``
  on the HTTPError path (urllib raises HTTPError only for a status outside 2xx, for which
  ``_predictions`` raises before indexing).
- ``tf_hyperparameters.parse``: ``MIN_IMAGE_SIZE.get(name, 1)`` for ``0`` (image_size is the
  network's native size, 224 or more, or a value the schema held to 32 or more; an image_size of
  0 is falsy and replaced by the native size before the comparison).
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import types
import urllib.request
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

from image_training import tf_inference
from image_training.serving import JSON, JSONLINES, VERBOSE, Records, RequestError
from lambdas.gate.logic import baseline_from_output, evaluation_from_output
from tests.builders import png, tar_gz
from tests.http_stub import http_stub

# -- a stand-in for the tensorflow module -----------------------------------------------------


class FakeTensor:
    """What ``tf.constant`` made, and of what."""

    def __init__(self, value: Any) -> None:
        self.value = value


class FakeOutput:
    """A signature's output tensor: ``numpy()`` gives the batch's rows."""

    def __init__(self, rows: List[List[float]]) -> None:
        self.rows = rows

    def numpy(self) -> np.ndarray:
        return np.array(self.rows, dtype=np.float32)


class InvalidArgumentError(Exception):
    """tf.errors.InvalidArgumentError: the graph's message is ``.message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# what the graph answers for each image (float32-exact values)
ANSWERS: Dict[bytes, List[float]] = {b"cat": [0.75, 0.25], b"dog": [0.125, 0.875]}
# a decoder's refusal as TensorFlow 2 words it, where a signature is called eagerly
GRAPH_MESSAGE = (
    "Graph execution error:\n"
    "\n"
    "Detected at node DecodePng defined at (most recent call last):\n"
    "<stack traces unavailable>\n"
    "Invalid PNG data, size 3\n"
    "\t [[{{node DecodePng}}]] [Op:__inference_signature_wrapper_1234]"
)


class Signature:
    """The SavedModel's ``serving_default``: takes ``image_bytes`` (a batch of one encoded image),
    gives ``probabilities``; refuses the image b"bad" as the graph's decoder does."""

    def __init__(self) -> None:
        self.calls: List[Any] = []

    def __call__(self, *, image_bytes: Any) -> Dict[str, Any]:
        assert isinstance(image_bytes, FakeTensor), image_bytes
        self.calls.append(image_bytes.value)
        (image,) = image_bytes.value
        if image == b"bad":
            raise InvalidArgumentError(GRAPH_MESSAGE)
        return {"probabilities": FakeOutput([ANSWERS[image]])}


class Loaded:
    """What tf.saved_model.load gives: the object that holds the signatures."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.signatures = {"serving_default": Signature()}


@pytest.fixture
def fake_tf(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """``import tensorflow`` gives the stand-in for the test; ``loads`` lists what it loaded."""
    module = types.ModuleType("tensorflow")
    loads: List[Loaded] = []

    def load(path: str) -> Loaded:
        loads.append(Loaded(path))
        return loads[-1]

    module.constant = FakeTensor  # type: ignore[attr-defined]
    module.errors = types.SimpleNamespace(InvalidArgumentError=InvalidArgumentError)  # type: ignore[attr-defined]
    module.saved_model = types.SimpleNamespace(load=load)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorflow", module)
    return types.SimpleNamespace(module=module, loads=loads)


# -- model_fn -----------------------------------------------------------------------------------


def test_model_fn_loads_the_saved_model_named_by_model_info(
    fake_tf: types.SimpleNamespace, tf_loaded: Dict[str, Any], tmp_path: Any
) -> None:
    info = {"saved_model": "saved_model/1", "labels": ["cat", "dog"], "top_k": 1}
    (tmp_path / "model-info.json").write_text(json.dumps(info))
    tf_loaded.clear()
    model = tf_inference.model_fn(str(tmp_path))
    (loaded,) = fake_tf.loads
    assert loaded.path == os.path.join(str(tmp_path), "saved_model/1")
    assert model is tf_inference._LOADED
    assert model == {"info": info, "fn": loaded.signatures["serving_default"], "keep": loaded}
    assert model["fn"] is loaded.signatures["serving_default"] and model["keep"] is loaded


def test_the_handlers_answer_an_image_from_model_dir_to_response(
    fake_tf: types.SimpleNamespace, tf_loaded: Dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model-info.json").write_text(json.dumps({"saved_model": "sm", "labels": ["cat", "dog"]}))
    tf_loaded.clear()
    model = tf_inference.model_fn(str(tmp_path))
    image = tf_inference.input_fn(png(8, 8), "image/png")
    assert isinstance(image, bytes)
    # the signature answers whatever bytes the image became as a "dog"
    monkeypatch.setitem(ANSWERS, image, ANSWERS[b"dog"])
    body, content_type = tf_inference.output_fn(tf_inference.predict_fn(image, model), VERBOSE)
    assert content_type == VERBOSE
    assert json.loads(body)["predicted_label"] == "dog"
    assert model["fn"].calls == [[image]]


# -- predict_fn and _probabilities ----------------------------------------------------------------


def test_predict_fn_gives_the_signature_s_probabilities_of_the_image(fake_tf: types.SimpleNamespace) -> None:
    signature = Signature()
    model = {"fn": signature}
    assert tf_inference.predict_fn(b"cat", model) == [0.75, 0.25]
    dog = tf_inference.predict_fn(b"dog", model)
    assert dog == [0.125, 0.875] and all(type(p) is float for p in dog)
    assert signature.calls == [[b"cat"], [b"dog"]]  # a batch of one image, the request's


def test_predict_fn_answers_each_record_with_its_image_s_probabilities(fake_tf: types.SimpleNamespace) -> None:
    signature = Signature()
    refused = RequestError(400, "the body is not a JPEG or PNG image")
    predictions = tf_inference.predict_fn(Records([b"dog", refused, b"cat"]), {"fn": signature})
    assert isinstance(predictions, Records)
    assert predictions == [[0.125, 0.875], refused, [0.75, 0.25]]
    assert signature.calls == [[b"dog"], [b"cat"]]


def test_an_image_the_graph_cannot_decode_is_a_400_that_says_why(fake_tf: types.SimpleNamespace) -> None:
    with pytest.raises(RequestError) as err:
        tf_inference.predict_fn(b"bad", {"fn": Signature()})
    assert err.value.status == 400
    assert str(err.value) == "the model cannot decode the image: Invalid PNG data, size 3"
    # a record the graph refuses gets that error in its place; the others are answered
    answers = tf_inference.predict_fn(Records([b"cat", b"bad", b"dog"]), {"fn": Signature()})
    assert answers[0] == [0.75, 0.25] and answers[2] == [0.125, 0.875]
    assert isinstance(answers[1], RequestError) and answers[1].status == 400
    assert str(answers[1]) == "the model cannot decode the image: Invalid PNG data, size 3"


# -- _graph_error ---------------------------------------------------------------------------------


def test_the_graph_error_is_its_line_that_says_what_is_wrong() -> None:
    assert tf_inference._graph_error(GRAPH_MESSAGE) == "Invalid PNG data, size 3"
    assert tf_inference._graph_error("  Input is empty.  \n") == "Input is empty."


@pytest.mark.parametrize(
    "noise",
    [
        "Graph execution error:",
        "Detected at node DecodeJpeg defined at (most recent call last):",
        "<stack traces unavailable>",
        "\t [[{{node DecodeJpeg}}]]",
    ],
)
def test_each_line_that_says_where_is_passed_over(noise: str) -> None:
    assert tf_inference._graph_error(f"{noise}\n\nUnknown image file format.") == "Unknown image file format."


def test_a_graph_error_with_nothing_but_where_is_invalid_image_data() -> None:
    assert tf_inference._graph_error("") == "invalid image data"
    assert tf_inference._graph_error("Graph execution error:\n\n<stack traces unavailable>") == "invalid image data"


def test_the_graph_error_is_200_characters_at_most() -> None:
    line = "x" * 150 + "y" * 150
    assert tf_inference._graph_error(f"Graph execution error:\n{line}") == line[:200]


# -- _render: a RecordIO request's answer ---------------------------------------------------------

LABELS = ["a", "b", "c", "d", "e", "f", "g"]
PROBS = [0.05, 0.3, 0.1, 0.2, 0.15, 0.12, 0.08]
ERROR = RequestError(400, "the body is not a JPEG or PNG image")
ERROR_LINE = {"error": {"code": 400, "message": "the body is not a JPEG or PNG image"}}


def record_answer(tf_loaded: Dict[str, Any], info: Dict[str, Any], accept: str) -> List[Any]:
    tf_loaded["info"] = info
    text, content_type = tf_inference.output_fn(Records([PROBS, ERROR]), accept)
    assert content_type == JSONLINES
    return [json.loads(line) for line in text.split("\n")]


def test_each_record_is_answered_in_the_requested_format(tf_loaded: Dict[str, Any]) -> None:
    assert record_answer(tf_loaded, {"labels": LABELS, "top_k": 2}, JSON) == [PROBS, ERROR_LINE]
    assert record_answer(tf_loaded, {"labels": LABELS, "top_k": 2}, JSONLINES) == [{"prediction": PROBS}, ERROR_LINE]


def test_each_record_s_verbose_answer_has_the_model_s_top_k(tf_loaded: Dict[str, Any]) -> None:
    first, second = record_answer(tf_loaded, {"labels": LABELS, "top_k": 1}, VERBOSE)
    assert first["top_k"] == [{"label": "b", "probability": 0.3}] and second == ERROR_LINE
    first, _ = record_answer(tf_loaded, {"labels": LABELS, "top_k": 3}, VERBOSE)
    assert [entry["label"] for entry in first["top_k"]] == ["b", "d", "e"]
    assert first == json.loads(tf_inference.output_fn(PROBS, VERBOSE)[0])  # the image path's answer


def test_without_a_top_k_each_record_s_verbose_answer_has_five(tf_loaded: Dict[str, Any]) -> None:
    for info in ({"labels": LABELS}, {"labels": LABELS, "top_k": None}, {"labels": LABELS, "top_k": 0}):
        first, _ = record_answer(tf_loaded, info, VERBOSE)
        assert [entry["label"] for entry in first["top_k"]] == ["b", "d", "e", "f", "c"]


# -- _predict_alone: one record asked of TF Serving ---------------------------------------------


@pytest.fixture()
def tf_serving() -> Iterator[types.SimpleNamespace]:
    """A stand-in for TF Serving's REST predict that notes each request it gets."""
    seen: List[Dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
            data = json.dumps({"predictions": [[0.4, 0.6]]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with http_stub(Handler) as url:
        yield types.SimpleNamespace(uri=f"{url}/v1/models/model:predict", seen=seen)


def test_a_record_asked_alone_is_a_json_post_of_its_image(tf_serving: types.SimpleNamespace) -> None:
    assert tf_inference._predict_alone(tf_serving.uri, b"good") == [0.4, 0.6]
    (request,) = tf_serving.seen
    assert request["method"] == "POST" and request["path"] == "/v1/models/model:predict"
    content_types = [value for name, value in request["headers"].items() if name.lower() == "content-type"]
    assert content_types == ["application/json"]
    assert request["body"] == tf_inference._instances([b"good"]).encode()


def test_a_record_asked_alone_waits_60_seconds_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: List[Dict[str, Any]] = []

    class Answer:
        status = 200

        def __enter__(self) -> Answer:
            return self

        def __exit__(self, *exc: Any) -> None:
            pass

        def read(self) -> bytes:
            return b'{"predictions": [[0.9, 0.1]]}'

    def urlopen(request: urllib.request.Request, *args: Any, **kwargs: Any) -> Answer:
        asked.append({"request": request, "args": args, "kwargs": kwargs})
        return Answer()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert tf_inference._predict_alone("http://127.0.0.1:9/v1/models/model:predict", b"x") == [0.9, 0.1]
    (call,) = asked
    assert call["args"] == () and call["kwargs"] == {"timeout": 60}
    assert call["request"].get_method() == "POST"
    assert call["request"].get_header("Content-type") == "application/json"


# -- tf_hyperparameters and the gate ------------------------------------------------------------
# tf_hyperparameters.parse's survivor is equivalent: see the module's docstring.


def test_only_a_member_named_exactly_so_is_the_job_s_evaluation_or_baseline() -> None:
    """A leading "./" is SageMaker's; other leading characters make another file."""
    evaluation = json.dumps({"accuracy": 0.9}).encode()
    with pytest.raises(ValueError, match="no evaluation.json"):
        evaluation_from_output(tar_gz({"Xevaluation.json": evaluation}))
    assert baseline_from_output(tar_gz({"XXbaseline.json": b"{}", "evaluation.json": evaluation})) is None
    assert evaluation_from_output(tar_gz({"./evaluation.json": evaluation})) == {"accuracy": 0.9}
