"""The inference contract shared by both backends, free of any framework: which requests are
accepted, how an image becomes the network's input, and the response formats.

Preprocessing decodes with OpenCV, as MXNet's ImageRecordIter does in training (shorter side
resized with bilinear interpolation, centre crop, RGB, mean/std), so serving sees the same
tensor as validation did. Without OpenCV, Pillow gives the same pixels within a small tolerance.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON, VERBOSE, JSONLINES = "application/json", "application/json;verbose", "application/jsonlines"
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # SageMaker's real-time invocation payload limit
MAX_PIXELS = 89_478_485


class RequestError(Exception):
    """A request the model cannot answer; ``status`` is the HTTP status to return."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def media_type(header: Optional[str]) -> str:
    return (header or "").split(";")[0].strip().lower()


def check_content_type(content_type: Optional[str]) -> None:
    if media_type(content_type) not in IMAGE_TYPES:
        raise RequestError(
            415, "content type {!r} is not supported; send {}".format(content_type, ", ".join(IMAGE_TYPES))
        )


def response_type(accept: Optional[str]) -> str:
    """The response format for an Accept header (JSON when the client does not say)."""
    for part in (accept or JSON).split(","):
        value = part.strip().lower().replace(" ", "")
        if value in ("", "*/*", JSON, "application/*"):
            return JSON
        if value.startswith(JSON) and "verbose" in value:
            return VERBOSE
        if value.startswith(JSONLINES):
            return JSONLINES
    raise RequestError(406, f"cannot answer in {accept!r}; accept {JSON}, {VERBOSE} or {JSONLINES}")


def _decode_cv2(data: bytes, channels: int) -> np.ndarray:
    import cv2  # noqa: PLC0415 - optional: the TensorFlow environment may not have it

    flag = cv2.IMREAD_COLOR if channels == 3 else cv2.IMREAD_GRAYSCALE
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None:
        raise RequestError(400, "the body is not a decodable JPEG or PNG image")
    return np.ascontiguousarray(image[:, :, ::-1]) if channels == 3 else image[:, :, None]  # BGR -> RGB


def _decode_pil(data: bytes, channels: int) -> np.ndarray:
    import io

    from PIL import Image

    try:
        opened = Image.open(io.BytesIO(data))
        if opened.size[0] * opened.size[1] > MAX_PIXELS:
            raise RequestError(400, "the image has {}x{} pixels, too many".format(*opened.size))
        image = opened.convert("RGB" if channels == 3 else "L")
    except RequestError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad request
        raise RequestError(400, f"the body is not a decodable image: {err}") from None
    array = np.asarray(image)
    return array if channels == 3 else array[:, :, None]


def decode(data: bytes, channels: int = 3) -> np.ndarray:
    """HWC uint8 RGB (or gray) pixels of an encoded image; RequestError 400 if it is not one."""
    if not data:
        raise RequestError(400, "the request body is empty")
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError(413, f"the image is {len(data)} bytes; the limit is {MAX_REQUEST_BYTES}")
    head = bytes(data[:8])
    if not (head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n")):
        raise RequestError(400, "the body is not a JPEG or PNG image")
    _check_dimensions(data)
    try:
        return _decode_cv2(data, channels)
    except ImportError:
        return _decode_pil(data, channels)


def _check_dimensions(data: bytes) -> None:
    """Refuse decompression bombs before decoding (the header announces the size)."""
    import io

    from PIL import Image

    try:
        width, height = Image.open(io.BytesIO(data)).size
    except Exception:  # noqa: BLE001
        raise RequestError(400, "the body is not a decodable JPEG or PNG image") from None
    if width * height > MAX_PIXELS:
        raise RequestError(400, f"the image has {width}x{height} pixels, more than {MAX_PIXELS}")


def resize_shorter(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the shorter side is ``size``, with ImageRecordIter's integer arithmetic."""
    height, width = image.shape[:2]
    if height > width:
        new_w, new_h = size, size * height // width
    else:
        new_w, new_h = size * width // height, size
    try:
        import cv2  # noqa: PLC0415

        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return resized if resized.ndim == 3 else resized[:, :, None]
    except ImportError:
        from PIL import Image

        bilinear = getattr(Image, "Resampling", Image).BILINEAR  # Pillow < 9.1 has no Resampling
        pil = Image.fromarray(image if image.shape[2] == 3 else image[:, :, 0]).resize((new_w, new_h), bilinear)
        array = np.asarray(pil)
        return array if array.ndim == 3 else array[:, :, None]


def preprocess(
    data: bytes, image_shape: Sequence[int], resize: Optional[int], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """One encoded image -> the (1, C, H, W) float32 input the network was validated on."""
    channels, height, width = image_shape
    image = decode(data, channels)
    if resize:
        image = resize_shorter(image, resize)
    rows, cols = image.shape[:2]
    if rows < height or cols < width:
        image = resize_shorter(image, max(height, width))
        rows, cols = image.shape[:2]
    top, left = (rows - height) // 2, (cols - width) // 2
    pixels = image[top : top + height, left : left + width].astype(np.float32)
    normalised = (pixels - np.asarray(mean[:channels], np.float32)) / np.asarray(std[:channels], np.float32)
    return normalised.astype(np.float32).transpose(2, 0, 1)[None]


def render(
    probabilities: Sequence[float], labels: List[str], accept: str, top_k: int = 5, multi_label: bool = False
) -> Tuple[str, str]:
    """(body, content type) of a prediction in the requested format. Multi-label models give
    independent probabilities; the verbose answer then also lists every label at 0.5 or more."""
    probs = [float(p) for p in probabilities]
    if accept == JSON:
        return json.dumps(probs), JSON
    if accept == JSONLINES:
        return json.dumps({"prediction": probs}) + "\n", JSONLINES
    order = sorted(range(len(probs)), key=lambda i: -probs[i])[: max(1, top_k)]
    body: Dict[str, Any] = {
        "probabilities": probs,
        "labels": labels,
        "predicted_label": labels[order[0]],
        "top_k": [{"label": labels[i], "probability": probs[i]} for i in order],
    }
    if multi_label:
        body["predicted_labels"] = [labels[i] for i, p in enumerate(probs) if p >= 0.5]
    return json.dumps(body), VERBOSE
