"""serving and the MXNet handlers on RecordIO requests (a batch transform of a .rec): an empty
body is a 400 that says so; a SingleRecord request, whose record SageMaker sends without its
padding or without its frame, is answered as the image path answers its image; a body whose
framing is broken is a 400 that names the request's record and byte offset; ``output_fn`` answers
a RecordIO request with one line per record, each the image path's body (not its content type)
or the record's error. Also the Accept header's ``verbose`` parameter: only ``false`` and ``0``
(quoted or not, any case) turn it off, whatever other text the value holds. The handlers' own
functions are called; the forward pass (``_scores``, which needs MXNet) is not.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``record_images``: ``RecordIOReader(..., padded_end=None)`` (the reader only tests
  ``self.padded_end or ...``: None is falsy as False is).
"""

from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np
import pytest

from image_dataset.recordio import FRAME, MAGIC, frame, pack
from image_training import mxnet_inference
from image_training.serving import (
    JSON,
    JSONLINES,
    RECORDIO,
    VERBOSE,
    Records,
    RequestError,
    record_images,
    response_type,
)
from tests.builders import jpeg, png

IMAGES = [png(12, 10, (200, 20, 20)), jpeg(9, 14, (20, 200, 20))]
INFO: Dict[str, Any] = {
    "image_shape": [3, 8, 8],
    "resize": 8,
    "mean_rgb": [0, 0, 0],
    "std_rgb": [1, 1, 1],
    "labels": ["cat", "dog"],
    "top_k": 2,
}
MODEL = {"info": INFO}


def refused(call: Any) -> RequestError:
    with pytest.raises(RequestError) as err:
        call()
    return err.value


def image_input(image: bytes) -> np.ndarray:
    """What the image path makes of ``image``: the reference every record is answered by."""
    out = mxnet_inference.input_fn(image, "image/png", MODEL)
    assert isinstance(out, np.ndarray)
    return out


# -- the request --------------------------------------------------------------------------------


def test_an_empty_recordio_body_is_400_saying_so() -> None:
    for call in (lambda: record_images(b""), lambda: mxnet_inference.input_fn(b"", RECORDIO, MODEL)):
        err = refused(call)
        assert (err.status, str(err)) == (400, "the request body is empty")


def test_mxnet_input_fn_gives_each_record_the_image_path_s_input_in_order() -> None:
    data = frame(pack(0.0, IMAGES[0])) + frame(pack(1.0, b"GIF89a" + bytes(20))) + frame(pack(2.0, IMAGES[1]))
    records = mxnet_inference.input_fn(data, "application/x-recordio; charset=binary", MODEL)
    assert isinstance(records, Records) and len(records) == 3
    assert np.array_equal(records[0], image_input(IMAGES[0]))
    assert np.array_equal(records[2], image_input(IMAGES[1]))
    assert isinstance(records[1], RequestError)
    assert (records[1].status, str(records[1])) == (400, "the body is not a JPEG or PNG image")


@pytest.mark.parametrize("sent", ["unpadded", "unframed"])
def test_a_single_record_request_is_answered_as_its_image(sent: str) -> None:
    """BatchStrategy SingleRecord: SageMaker drops the record's padding (and maybe its frame)."""
    record = pack(7.0, IMAGES[1], id=7)
    assert len(record) % 4, "the record needs padding for this test"
    data = frame(record)[: 8 + len(record)] if sent == "unpadded" else record
    records = mxnet_inference.input_fn(data, RECORDIO, MODEL)
    assert isinstance(records, Records) and len(records) == 1
    assert np.array_equal(records[0], image_input(IMAGES[1]))


def test_a_broken_frame_is_400_naming_the_request_s_record_and_offset() -> None:
    first = frame(pack(0.0, IMAGES[0]))
    bad_flag = FRAME.pack(MAGIC, 5 << 29 | 4) + b"data"  # continuation flags are 0-3
    err = refused(lambda: mxnet_inference.input_fn(first + bad_flag, RECORDIO, MODEL))
    assert err.status == 400
    assert str(err) == (
        f"the RecordIO body is broken at request#record 1 @byte {len(first)}: continuation flag 5 is not 0-3"
    )


# -- the answer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [JSON, VERBOSE, JSONLINES])
def test_mxnet_output_fn_answers_one_line_per_record(accept: str) -> None:
    predictions = Records([[0.25, 0.75], RequestError(413, "too big"), [0.9, 0.1]])
    text, content_type = mxnet_inference.output_fn(predictions, accept, MODEL)
    assert content_type == JSONLINES
    lines = text.split("\n")
    assert len(lines) == 3
    for line, probabilities in ((lines[0], [0.25, 0.75]), (lines[2], [0.9, 0.1])):
        image_body, image_type = mxnet_inference.output_fn(probabilities, accept, MODEL)
        assert image_type == accept and json.loads(line) == json.loads(image_body)
    assert json.loads(lines[1]) == {"error": {"code": 413, "message": "too big"}}
    if accept == VERBOSE:
        assert [json.loads(line)["predicted_label"] for line in (lines[0], lines[2])] == ["dog", "cat"]


# -- Accept: the verbose parameter --------------------------------------------------------------


@pytest.mark.parametrize("value", ["Xfalse", "falseX", "0X", '"X0"', "XFALSEX"])
def test_verbose_is_off_only_for_exactly_false_or_0(value: str) -> None:
    assert response_type(f"application/json;verbose={value}") == VERBOSE
