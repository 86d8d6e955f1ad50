"""The framework-free inference contract: request checks, preprocessing, response formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from image_training.serving import (
    JSON,
    JSONLINES,
    VERBOSE,
    RequestError,
    check_content_type,
    decode,
    preprocess,
    render,
    response_type,
)
from tests.builders import jpeg, png, png_bomb

MEAN, STD = (123.68, 116.779, 103.939), (58.393, 57.12, 57.375)


@pytest.mark.parametrize("value", ["image/jpeg", "image/png", "application/x-image", "IMAGE/JPEG; charset=x"])
def test_image_content_types_are_accepted(value) -> None:
    check_content_type(value)


@pytest.mark.parametrize("value", [None, "", "text/plain", "application/json", "image/gif"])
def test_other_content_types_are_415(value) -> None:
    with pytest.raises(RequestError) as err:
        check_content_type(value)
    assert err.value.status == 415


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("application/json;verbose", VERBOSE),
        ("application/json; verbose", VERBOSE),
        ("application/jsonlines", JSONLINES),
        ("text/html, application/json", JSON),
    ],
)
def test_accept_header_picks_the_format(accept, expected) -> None:
    assert response_type(accept) == expected


def test_unknown_accept_is_406() -> None:
    with pytest.raises(RequestError) as err:
        response_type("text/csv")
    assert err.value.status == 406


@pytest.mark.parametrize(
    "body, status",
    [
        (b"", 400),
        (b"hello", 400),
        (jpeg()[:40], 400),
        (png_bomb(), 400),
        (b"\xff\xd8\xff" + b"\0" * (7 * 1024 * 1024), 413),
    ],
)
def test_bad_images_are_4xx(body, status) -> None:
    with pytest.raises(RequestError) as err:
        decode(body)
    assert err.value.status == status


def test_preprocess_shape_and_normalisation() -> None:
    tensor = preprocess(png(60, 40, (123, 117, 104)), (3, 32, 32), 36, MEAN, STD)
    assert tensor.shape == (1, 3, 32, 32) and tensor.dtype == np.float32
    assert np.abs(tensor).max() < 0.05  # the colour is the mean: normalised to about 0
    gray = preprocess(png(20, 30), (1, 16, 16), None, MEAN, STD)
    assert gray.shape == (1, 1, 16, 16)


def test_render_every_format() -> None:
    probs, labels = [0.1, 0.7, 0.2], ["cat", "dog", "eel"]
    body, kind = render(probs, labels, JSON)
    assert kind == JSON and json.loads(body) == probs
    body, kind = render(probs, labels, JSONLINES)
    assert kind == JSONLINES and body.endswith("\n") and json.loads(body) == {"prediction": probs}
    body, kind = render(probs, labels, VERBOSE, top_k=2)
    verbose = json.loads(body)
    assert verbose["predicted_label"] == "dog" and verbose["labels"] == labels and verbose["probabilities"] == probs
    assert verbose["top_k"] == [{"label": "dog", "probability": 0.7}, {"label": "eel", "probability": 0.2}]


# -- RecordIO bodies (batch transform of a .rec): more in tests/unit/test_serving_recordio.py ------


def test_a_recordio_body_is_answered_record_by_record() -> None:
    from image_dataset.recordio import frame, pack
    from image_training.serving import RECORDIO, Records, is_recordio, per_record, record_images, record_lines

    images = [png(8, 8), b"GIF89a", jpeg(8, 8)]
    body = b"".join(frame(pack(float(i), image)) for i, image in enumerate(images))
    assert is_recordio(RECORDIO) and record_images(body) == images
    second, third = len(frame(pack(0.0, images[0]))), len(frame(pack(0.0, images[0])) + frame(pack(1.0, images[1])))
    for broken, offset in ((body[:second] + b"JUNK" + body[second + 4 :], second), (body[:-7], third)):
        with pytest.raises(RequestError) as err:
            record_images(broken)
        assert err.value.status == 400 and f"@byte {offset}:" in str(err.value)
    answers = per_record(lambda image: decode(image).shape[:2], record_images(body))
    assert isinstance(answers, Records) and answers[0] == (8, 8) and answers[1].status == 400
    text, kind = record_lines(answers, lambda shape: json.dumps(list(shape)))
    assert kind == JSONLINES and text.split("\n") == [
        "[8, 8]",
        '{"error": {"code": 400, "message": "the body is not a JPEG or PNG image"}}',
        "[8, 8]",
    ]
