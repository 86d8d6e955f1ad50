"""Rules of the serving handlers checked on their own, in the main environment (Pillow, no
OpenCV): the shorter-side resize, the centre crop and its upscaling, normalisation, the
content-type check, and the request side of both backends' handlers."""

from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace
from typing import Any, Dict

import numpy as np
import pytest
from PIL import Image

from image_training import mxnet_inference, tf_inference
from image_training.serving import RequestError, check_content_type, media_type, preprocess, resize_shorter
from tests.builders import png


def encoded(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def coordinates(height: int, width: int) -> np.ndarray:
    """R = column, G = row, B = 7: a crop's position can be read from its pixels."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols, rows, np.full_like(rows, 7)], axis=2)


@pytest.mark.parametrize(
    ("shape", "size", "expected"),
    [((30, 50, 3), 16, (16, 26, 3)), ((50, 30, 3), 16, (26, 16, 3)), ((3, 5, 3), 4, (4, 6, 3)),
     ((5, 3, 1), 4, (6, 4, 1)), ((20, 20, 3), 10, (10, 10, 3))],
)  # fmt: skip
def test_resize_shorter_uses_integer_arithmetic_and_keeps_channels(shape, size, expected) -> None:
    assert resize_shorter(np.zeros(shape, np.uint8), size).shape == expected


def test_preprocess_crops_the_centre() -> None:
    out = preprocess(encoded(coordinates(20, 40)), (3, 10, 10), None, (0, 0, 0), (1, 1, 1))
    assert out.shape == (1, 3, 10, 10) and out.dtype == np.float32
    assert out[0, 0, 0].tolist() == list(range(15, 25))  # columns (40 - 10) // 2 = 15 on
    assert out[0, 1, :, 0].tolist() == list(range(5, 15))  # rows (20 - 10) // 2 = 5 on
    assert np.all(out[0, 2] == 7)


def test_preprocess_normalises_each_channel() -> None:
    image = np.zeros((4, 4, 3), np.uint8) + np.array([10, 20, 30], np.uint8)
    out = preprocess(encoded(image), (3, 4, 4), None, (2, 4, 6), (2, 4, 8))
    assert [float(out[0, c, 0, 0]) for c in range(3)] == [4.0, 4.0, 3.0]


@pytest.mark.parametrize(("height", "width"), [(6, 40), (40, 6), (6, 8)])
def test_an_image_smaller_than_the_crop_is_scaled_up_first(height: int, width: int) -> None:
    out = preprocess(encoded(coordinates(height, width)), (3, 12, 12), None, (0, 0, 0), (1, 1, 1))
    assert out.shape == (1, 3, 12, 12)


def test_resize_then_crop() -> None:
    out = preprocess(encoded(coordinates(20, 40)), (3, 8, 8), 10, (0, 0, 0), (1, 1, 1))
    assert out.shape == (1, 3, 8, 8)  # 20x40 -> 10x20 -> centre 8x8


def test_content_type_check_names_what_is_accepted() -> None:
    for accepted in ("image/jpeg", "IMAGE/PNG; charset=x", "application/x-image"):
        check_content_type(accepted)
    with pytest.raises(RequestError) as err:
        check_content_type("text/plain")
    assert err.value.status == 415
    assert (
        str(err.value) == "content type 'text/plain' is not supported; send image/jpeg, image/png, application/x-image"
    )
    with pytest.raises(RequestError):
        check_content_type(None)
    assert media_type(None) == "" and media_type(" Image/PNG ; q=1") == "image/png"


INFO = {"image_shape": [3, 8, 8], "resize": 8, "mean_rgb": [0, 0, 0], "std_rgb": [1, 1, 1], "labels": ["a", "b"]}


def test_mxnet_input_fn_preprocesses_with_the_model_s_info(monkeypatch: pytest.MonkeyPatch) -> None:
    body = encoded(coordinates(16, 32))
    out = mxnet_inference.input_fn(body, "image/png", {"info": INFO})
    assert out.shape == (1, 3, 8, 8)
    assert np.array_equal(out, preprocess(body, (3, 8, 8), 8, (0, 0, 0), (1, 1, 1)))
    monkeypatch.setattr(mxnet_inference, "_LOADED", {"info": dict(INFO, image_shape=[3, 4, 4])})
    assert mxnet_inference.input_fn(body, "image/png").shape == (1, 3, 4, 4)
    with pytest.raises(RequestError) as err:
        mxnet_inference.input_fn(body, "text/plain", {"info": INFO})
    assert err.value.status == 415


def test_tf_input_handler_sends_the_image_to_tf_serving() -> None:
    body = png(8, 8)
    request = tf_inference.input_handler(
        SimpleNamespace(read=lambda: body), SimpleNamespace(request_content_type="image/png")
    )
    instance = json.loads(request)["instances"][0]["image_bytes"]["b64"]
    assert Image.open(io.BytesIO(base64.b64decode(instance))).size == (8, 8)
    assert tf_inference.input_fn(body, "image/png")[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("body", "content_type", "status"), [(b"", "image/png", "400"), (png(4, 4), "text/csv", "415"),
                                                                (b"\x89PNG\r\n\x1a\nbroken", "image/png", "400")])  # fmt: skip
def test_tf_input_handler_refuses_bad_requests_with_their_status(body: bytes, content_type: str, status: str) -> None:
    with pytest.raises(ValueError) as err:
        tf_inference.input_handler(
            SimpleNamespace(read=lambda: body), SimpleNamespace(request_content_type=content_type)
        )
    assert str(err.value).startswith(status + " ")


def test_tf_output_handler_reads_the_default_model_dir(
    tf_loaded: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tf_loaded.clear()
    monkeypatch.delenv("SAGEMAKER_TFS_MODEL_DIR", raising=False)
    seen = []
    monkeypatch.setattr(tf_inference, "_info", lambda folder: seen.append(folder) or dict(INFO))
    response = SimpleNamespace(status_code=200, content=json.dumps({"predictions": [[0.25, 0.75]]}).encode())
    body, content_type = tf_inference.output_handler(response, SimpleNamespace(accept_header="application/json"))
    assert seen == ["/opt/ml/model"]
    assert (json.loads(body), content_type) == ([0.25, 0.75], "application/json")


def test_a_thin_image_whose_resize_would_exceed_the_pixel_cap_is_400_before_allocating() -> None:
    """1 x 2,000,000 pixels (an 8 KB PNG) with a shorter side of 32 would be 32 x 64,000,000: 6 GB."""
    thin = np.zeros((1, 2_000_000, 3), np.uint8)
    with pytest.raises(RequestError) as caught:
        resize_shorter(thin, 32)
    assert caught.value.status == 400
    assert str(caught.value) == (
        "the image has 2000000x1 pixels: resized to a shorter side of 32 it would have 64000000x32, "
        "more than 89478485 (IMG_TOO_LARGE)"
    )
    with pytest.raises(RequestError):
        preprocess(png(2_000_000, 1), (3, 32, 32), 32, (0, 0, 0), (1, 1, 1))
    assert resize_shorter(np.zeros((1, 1000, 3), np.uint8), 32).shape == (32, 32_000, 3)  # within the cap
