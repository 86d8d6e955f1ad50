"""RecordIO request bodies (a batch transform of a .rec, ``SplitType: RecordIO``), read by both
backends' handlers: each record is answered as the image path answers its image, one JSON line
per record in record order, a record whose image is refused keeps its place with its error, and a
body whose framing is broken is a 400 that names the record and its byte offset. The handlers'
own functions are called (no server, no framework: the forward pass is replaced)."""

from __future__ import annotations

import base64
import http.server
import json
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

from image_dataset.recordio import MAGIC_BYTES, frame, pack
from image_training import mxnet_inference, tf_inference
from image_training.serving import (
    JSONLINES,
    RECORDIO,
    VERBOSE,
    Records,
    RequestError,
    check_content_type,
    is_recordio,
    per_record,
    preprocess,
    record_images,
    record_lines,
    render,
)
from tests.builders import jpeg, png
from tests.http_stub import http_stub

IMAGES = [png(12, 10, (200, 20, 20)), jpeg(9, 14, (20, 200, 20)), png(16, 16, (20, 20, 200))]
BROKEN = b"\x89PNG\r\n\x1a\n but broken"
INFO = {"image_shape": [3, 8, 8], "resize": 8, "mean_rgb": [0, 0, 0], "std_rgb": [1, 1, 1], "labels": ["a", "b"]}


def body(*images: bytes) -> bytes:
    """Whole records, frame and padding: a MultiRecord request."""
    return b"".join(frame(pack(float(i), image, id=i)) for i, image in enumerate(images))


def status_of(call: Any) -> RequestError:
    with pytest.raises(RequestError) as err:
        call()
    return err.value


# -- reading the body ---------------------------------------------------------------------------


def test_several_records_give_their_images_in_order() -> None:
    assert record_images(body(*IMAGES)) == IMAGES
    assert isinstance(record_images(body(*IMAGES)), Records)
    vector = frame(pack([1.0, 0.0, 1.0], IMAGES[1]))  # a multi-label record: 3 labels before the image
    assert record_images(vector + body(IMAGES[0])) == [IMAGES[1], IMAGES[0]]


def test_a_single_record_is_read_with_or_without_its_padding_or_frame() -> None:
    """SingleRecord: SageMaker removes a record's padding; a body without the frame is read as
    the record's data too."""
    record = pack(3.0, IMAGES[1])
    framed = frame(record)
    assert len(record) % 4, "the test needs a record with padding"
    assert record_images(framed) == [IMAGES[1]]
    assert record_images(framed[: 8 + len(record)]) == [IMAGES[1]]  # without its padding
    assert record_images(record) == [IMAGES[1]]  # without its frame


def test_a_record_in_parts_is_one_record() -> None:
    """MXNet's writer cuts a payload at an aligned magic number; the reader joins the parts."""
    image = IMAGES[0] + b"\0" * (-len(IMAGES[0]) % 4) + MAGIC_BYTES + b"tail"
    data = body(image, IMAGES[1])
    assert data.count(MAGIC_BYTES) > 2  # really in parts
    assert record_images(data) == [image, IMAGES[1]]


def test_a_truncated_record_is_400_with_its_byte_offset() -> None:
    data = body(*IMAGES)
    third = len(body(*IMAGES[:2]))
    err = status_of(lambda: record_images(data[: third + 20]))
    assert err.status == 400
    assert (
        str(err)
        == f"the RecordIO body is broken at request#record 2 @byte {third}: record of "
        + str(len(pack(2.0, IMAGES[2])))
        + " bytes, file ends after 12"
    )
    assert "@byte 0" in str(status_of(lambda: record_images(data[:6])))  # inside the first header


def test_bad_magic_is_400_with_its_byte_offset() -> None:
    data = body(*IMAGES)
    second = len(body(IMAGES[0]))
    broken = data[:second] + b"JUNK" + data[second + 4 :]
    err = status_of(lambda: record_images(broken))
    assert err.status == 400
    assert str(err) == (
        f"the RecordIO body is broken at request#record 1 @byte {second}: "
        f"expected magic 0xced7230a, found 0x{int.from_bytes(b'JUNK', 'little'):08x}"
    )
    # a body that is neither framed nor a record's data (too short for the header)
    err = status_of(lambda: record_images(b"JUNK and more"))
    assert (
        str(err)
        == "the RecordIO body is broken at request#record 0 @byte 0: expected magic 0xced7230a, found 0x4b4e554a"
    )
    # an image sent as RecordIO: its first word is no label count that fits
    assert status_of(lambda: record_images(IMAGES[1])).status == 400
    assert status_of(lambda: record_images(b"")).status == 400


def test_a_record_too_short_for_its_header_keeps_its_place() -> None:
    data = body(IMAGES[0]) + frame(b"short") + body(IMAGES[1])
    first, short, second = record_images(data)
    assert (first, second) == (IMAGES[0], IMAGES[0 + 1])
    assert isinstance(short, RequestError) and short.status == 400
    assert str(short).startswith("record 1 of the request is no image record: record has 5 bytes")


# -- the answer -----------------------------------------------------------------------------------


def test_content_types() -> None:
    assert is_recordio(RECORDIO) and is_recordio("Application/X-RecordIO; charset=binary")
    assert not is_recordio("image/png") and not is_recordio(None)
    err = status_of(lambda: check_content_type(RECORDIO))  # the image path's types stay as they were
    assert err.status == 415 and str(err).endswith("send image/jpeg, image/png, application/x-image")


def test_per_record_keeps_each_record_in_its_place() -> None:
    def step(value: int) -> int:
        if value == 2:
            raise RequestError(413, "too big")
        return value * 10

    done = per_record(step, [1, RequestError(400, "bad"), 2, 3])
    assert isinstance(done, Records) and done[0] == 10 and done[3] == 30
    assert (done[1].status, str(done[1])) == (400, "bad") and (done[2].status, str(done[2])) == (413, "too big")
    with pytest.raises(ZeroDivisionError):  # anything else is the model's failure: the whole request
        per_record(lambda value: 1 / 0, [1])


def test_one_line_per_record_with_the_image_path_s_answer_or_error() -> None:
    labels = ["cat", "dog\nfish"]
    answers = Records([[0.2, 0.8], RequestError(400, "the body is not a JPEG or PNG image"), [0.9, 0.1]])
    for accept in (VERBOSE, "application/json", JSONLINES):
        text, content_type = record_lines(answers, lambda p, a=accept: render(p, labels, a)[0])
        assert content_type == JSONLINES and not text.endswith("\n")
        lines = text.split("\n")
        assert len(lines) == 3
        assert json.loads(lines[0]) == json.loads(render([0.2, 0.8], labels, accept)[0])
        assert json.loads(lines[1]) == {"error": {"code": 400, "message": "the body is not a JPEG or PNG image"}}
        assert json.loads(lines[2]) == json.loads(render([0.9, 0.1], labels, accept)[0])


# -- the MXNet handlers ---------------------------------------------------------------------------


def test_mxnet_handlers_answer_each_record_as_its_image(monkeypatch: pytest.MonkeyPatch) -> None:
    model = {"info": INFO}
    seen: List[np.ndarray] = []

    def scores(data: np.ndarray, loaded: Dict[str, Any]) -> List[float]:
        seen.append(data)
        return [0.25, 0.75] if data.mean() > 0.3 else [0.6, 0.4]

    monkeypatch.setattr(mxnet_inference, "_scores", scores)
    records = mxnet_inference.input_fn(body(IMAGES[0], BROKEN, IMAGES[2]), RECORDIO, model)
    assert isinstance(records, Records) and records[1].status == 400
    assert np.array_equal(records[0], preprocess(IMAGES[0], (3, 8, 8), 8, (0, 0, 0), (1, 1, 1)))
    predictions = mxnet_inference.predict_fn(records, model)
    assert len(seen) == 2 and all(s.shape == (1, 3, 8, 8) for s in seen)  # one forward pass per record
    text, content_type = mxnet_inference.output_fn(predictions, VERBOSE, model)
    lines = [json.loads(line) for line in text.split("\n")]
    image_path = [json.loads(mxnet_inference.output_fn(p, VERBOSE, model)[0]) for p in (predictions[0], predictions[2])]
    assert content_type == JSONLINES and [lines[0], lines[2]] == image_path
    assert lines[1]["error"]["code"] == 400 and "not a decodable image" in lines[1]["error"]["message"]
    single = mxnet_inference.input_fn(IMAGES[0], "image/png", model)  # the image path is unchanged
    assert isinstance(single, np.ndarray) and np.array_equal(single, records[0])
    assert status_of(lambda: mxnet_inference.input_fn(b"JUNK", RECORDIO, model)).status == 400


# -- the TensorFlow handlers ----------------------------------------------------------------------


def test_tf_input_fn_and_predict_fn_answer_record_by_record(
    tf_loaded: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tf_loaded["info"] = dict(INFO, top_k=2)
    records = tf_inference.input_fn(body(IMAGES[0], BROKEN), RECORDIO)
    assert isinstance(records, Records) and records[0] == tf_inference.graph_bytes(IMAGES[0])
    assert records[1].status == 400
    calls: List[bytes] = []
    monkeypatch.setattr(tf_inference, "_probabilities", lambda data, model: calls.append(data) or [0.3, 0.7])
    predictions = tf_inference.predict_fn(records, {})
    assert calls == [records[0]] and predictions[0] == [0.3, 0.7]
    text, content_type = tf_inference.output_fn(predictions, VERBOSE)
    first, second = (json.loads(line) for line in text.split("\n"))
    assert content_type == JSONLINES and first == json.loads(tf_inference.output_fn([0.3, 0.7], VERBOSE)[0])
    assert second["error"]["code"] == 400


class Context:
    """The TF Serving container's context: one object for both hooks of a request."""

    def __init__(self, rest_uri: str = "http://127.0.0.1:9/v1/models/model:predict") -> None:
        self.request_content_type = RECORDIO
        self.accept_header = VERBOSE
        self.rest_uri = rest_uri


def sent_images(request: str) -> List[bytes]:
    return [base64.b64decode(i["image_bytes"]["b64"]) for i in json.loads(request)["instances"]]


def test_tf_serving_hooks_send_the_good_records_and_answer_every_one(tf_loaded: Dict[str, Any]) -> None:
    tf_loaded["info"] = dict(INFO, top_k=2)
    context = Context()
    data = body(IMAGES[0], b"GIF89a" + bytes(20), IMAGES[1])
    request = tf_inference.input_handler(SimpleNamespace(read=lambda: data), context)
    sent = sent_images(request)
    assert sent == [tf_inference.graph_bytes(IMAGES[0]), tf_inference.graph_bytes(IMAGES[1])]
    predictions = {"predictions": [[0.1, 0.9], [0.8, 0.2]]}
    response = SimpleNamespace(status_code=200, content=json.dumps(predictions).encode())
    text, content_type = tf_inference.output_handler(response, context)
    lines = [json.loads(line) for line in text.split("\n")]
    assert content_type == JSONLINES and len(lines) == 3
    assert lines[0]["predicted_label"] == "b" and lines[2]["predicted_label"] == "a"
    assert lines[1] == {"error": {"code": 400, "message": "the body is not a JPEG or PNG image"}}
    assert tf_inference._recall(context) is None  # taken back once
    # the image path of another request (another context) is untouched by what a RecordIO one left
    image = SimpleNamespace(status_code=200, content=json.dumps({"predictions": [[0.1, 0.9]]}).encode())
    other = Context()
    other.request_content_type = "image/png"
    tf_inference.input_handler(SimpleNamespace(read=lambda: IMAGES[0]), other)
    assert json.loads(tf_inference.output_handler(image, other)[0])["predicted_label"] == "b"


def test_tf_serving_hooks_with_every_record_refused_or_a_broken_body(tf_loaded: Dict[str, Any]) -> None:
    tf_loaded["info"] = dict(INFO, top_k=2)
    context = Context()
    request = tf_inference.input_handler(SimpleNamespace(read=lambda: body(b"GIF89a" + bytes(20))), context)
    assert sent_images(request) == []
    refused = SimpleNamespace(status_code=400, content=b'{"error": "no instances"}')
    text, _ = tf_inference.output_handler(refused, context)  # TF Serving's answer to nothing is not used
    assert json.loads(text)["error"]["code"] == 400
    with pytest.raises(ValueError, match=r"^400 the RecordIO body is broken at request#record 0 @byte 0"):
        tf_inference.input_handler(SimpleNamespace(read=lambda: b"JUNK"), Context())
    context = Context()
    tf_inference.input_handler(SimpleNamespace(read=lambda: body(IMAGES[0])), context)
    with pytest.raises(ValueError, match=r"^500 the model cannot answer"):
        tf_inference.output_handler(SimpleNamespace(status_code=503, content=b"down"), context)
    context = Context()
    tf_inference.input_handler(SimpleNamespace(read=lambda: body(IMAGES[0], IMAGES[1])), context)
    with pytest.raises(ValueError, match=r"^500 TF Serving answered 1 predictions for 2 images"):
        tf_inference.output_handler(SimpleNamespace(status_code=200, content=b'{"predictions": [[0.5, 0.5]]}'), context)


@pytest.fixture()
def tf_serving() -> Iterator[str]:
    """A stand-in for TF Serving's REST predict: refuses a batch that holds the image b"bad"
    (the graph's decoder fails the whole batch), answers the others."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            images = sent_images(self.rfile.read(int(self.headers["Content-Length"])).decode())
            if b"bad" in images:
                status, answer = 400, {"error": "Invalid PNG data, size 3"}
            else:
                status, answer = 200, {"predictions": [[0.4, 0.6] for _ in images]}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with http_stub(Handler) as url:
        yield f"{url}/v1/models/model:predict"


def test_when_the_graph_refuses_one_image_of_several_each_record_is_asked_alone(
    tf_loaded: Dict[str, Any], tf_serving: str
) -> None:
    tf_loaded["info"] = dict(INFO, top_k=2)
    context = Context(tf_serving)
    records = Records([b"good-1", b"bad", b"good-2"])
    refused = SimpleNamespace(status_code=400, content=b'{"error": "Invalid PNG data, size 3"}')
    tf_inference._remember(context, records)
    text, _ = tf_inference.output_handler(refused, context)
    lines = [json.loads(line) for line in text.split("\n")]
    assert lines[0]["predicted_label"] == "b" and lines[2]["predicted_label"] == "b"
    assert lines[1]["error"]["code"] == 400
    assert lines[1]["error"]["message"] == 'the model cannot answer: {"error": "Invalid PNG data, size 3"}'


def test_records_left_by_requests_that_never_ended_are_dropped() -> None:
    contexts = [Context() for _ in range(tf_inference._MAX_PENDING + 5)]
    for context in contexts:
        tf_inference._remember(context, Records([b"x"]))
    assert len(tf_inference._PENDING) == tf_inference._MAX_PENDING
    assert tf_inference._recall(contexts[0]) is None and tf_inference._recall(contexts[-1]) == [b"x"]
    tf_inference._PENDING.clear()


def test_the_reader_takes_a_missing_padding_at_the_end_only_when_asked() -> None:
    import io

    from image_dataset.issues import DatasetError
    from image_dataset.recordio import RecordIOReader

    record = pack(1.0, IMAGES[1])
    unpadded = frame(record)[: 8 + len(record)]
    with pytest.raises(DatasetError, match="REC_TRUNCATED"):
        list(RecordIOReader(io.BytesIO(unpadded)))  # a file must be padded
    reader = RecordIOReader(io.BytesIO(unpadded), padded_end=False)
    assert list(reader) == [(0, record)] and reader.offset == len(unpadded)
    with pytest.raises(DatasetError, match="REC_TRUNCATED"):  # a data byte missing is still a truncation
        list(RecordIOReader(io.BytesIO(unpadded[:-1]), padded_end=False))
