"""The inference contract shared by both backends, free of any framework: which requests are
accepted, how an image becomes the network's input, and the response formats.

Preprocessing decodes as OpenCV's imread does (image_dataset.pixels: EXIF orientation, alpha
dropped, 16-bit to 8 by the high byte), then resizes as MXNet's ImageRecordIter does in training
(shorter side, OpenCV's bilinear interpolation, centre crop, RGB, mean/std), so serving sees the
same tensor as validation did, with OpenCV installed or not (within 1 grey level).

A batch transform of a .rec (``SplitType: RecordIO``) sends ``application/x-recordio`` bodies:
one or more image records, each answered as the image path answers its image, one JSON line per
record (``record_images``, ``record_lines``).

The module imports only the standard library: the AWS TensorFlow Serving container runs the
TensorFlow backend's request hooks on a Python without numpy or Pillow (see ``check_encoded``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

if TYPE_CHECKING:
    import numpy as np

    from image_dataset.pixels import Decoded

IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
RECORDIO = "application/x-recordio"  # a batch transform's RecordIO body: image records, not one image
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


def is_recordio(content_type: Optional[str]) -> bool:
    """Whether a request's body is RecordIO image records (a batch transform of a .rec)."""
    return media_type(content_type) == RECORDIO


def check_content_type(content_type: Optional[str]) -> None:
    if media_type(content_type) not in IMAGE_TYPES:
        raise RequestError(
            415, "content type {!r} is not supported; send {}".format(content_type, ", ".join(IMAGE_TYPES))
        )


RESPONSE_TYPES = (JSON, VERBOSE, JSONLINES)  # the formats served, in the server's order of preference


class MediaRange(NamedTuple):
    """One element of an Accept header: ``type/subtype``, the ``verbose`` parameter, its weight."""

    type: str
    subtype: str
    verbose: bool
    q: float
    position: int


_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")  # RFC 9110 12.4.2's qvalue


def _qvalue(text: str, part: str) -> float:
    """RFC 9110 12.4.2: a weight from 0 to 1 with at most three decimals."""
    if not _QVALUE.fullmatch(text):
        raise RequestError(400, f"Accept element {part.strip()!r}: q must be a number from 0 to 1")
    return float(text)


def accept_ranges(accept: str) -> List[MediaRange]:
    """The media ranges of an Accept header (RFC 9110 12.5.1), parameters and weights parsed."""
    ranges = []
    for position, part in enumerate(accept.split(",")):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0]:
            continue  # empty list elements are allowed and mean nothing
        type_, _, subtype = pieces[0].lower().partition("/")
        if not type_ or not subtype or "/" in subtype or (type_ == "*" and subtype != "*"):
            raise RequestError(400, f"Accept element {part.strip()!r} is not a media range (type/subtype)")
        q, verbose = 1.0, False
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name = name.strip().lower()
            if name == "q":
                q = _qvalue(value.strip(), part)
            elif name == "verbose" and value.strip().strip('"').lower() not in ("false", "0"):
                verbose = True
        ranges.append(MediaRange(type_, subtype, verbose, q, position))
    return ranges


def _weight(offer: str, ranges: List[MediaRange]) -> Optional[Tuple[float, int]]:
    """(q, position) of the most specific range that matches ``offer``; None when none does."""
    offer_type, offer_subtype = offer.split(";")[0].split("/")
    best: Optional[Tuple[int, MediaRange]] = None
    for r in ranges:
        if r.type not in ("*", offer_type) or r.subtype not in ("*", offer_subtype):
            continue
        if r.verbose and offer != VERBOSE and (r.type, r.subtype) == ("application", "json"):
            continue  # application/json;verbose asks for the verbose answer only
        specificity = (r.type != "*") + (r.subtype != "*") + (r.verbose and offer == VERBOSE)
        if best is None or specificity > best[0]:
            best = (specificity, r)
    return None if best is None else (best[1].q, best[1].position)


def response_type(accept: Optional[str]) -> str:
    """The response format for an Accept header, negotiated as RFC 9110 12.5.1 says: each format
    takes the weight of the most specific range that matches it; q=0 means "not acceptable"; the
    highest weight wins, then the range listed first, then JSON before the others. No header (or
    an empty one) means any format: plain JSON. ``application/json`` alone means plain JSON;
    ``application/json;verbose`` asks for the verbose answer."""
    ranges = accept_ranges(accept or "")
    if not ranges:  # no header, or only empty elements (RFC 9110 5.6.1): any format
        return JSON
    choices = []
    for preference, offer in enumerate(RESPONSE_TYPES):
        weight = _weight(offer, ranges)
        if weight is not None and weight[0] > 0:
            choices.append((-weight[0], weight[1], preference, offer))
    if not choices:
        raise RequestError(
            406, f"cannot answer in {accept!r}; accept {JSON}, {VERBOSE} or {JSONLINES} (with a q above 0)"
        )
    return min(choices)[3]


# the image_dataset modules that decode_image and record_images need: model archives ship them in
# code/image_dataset/ (recordio.py, issues.py and store.py need only the standard library)
DATASET_MODULES = ("__init__.py", "images.py", "pixels.py", "recordio.py", "issues.py", "store.py")


def copy_inference_code(code_dir: str, handlers: str) -> None:
    """Copy what a model archive's ``code/inference.py`` imports into ``code_dir``: the backend's
    ``handlers`` module (``mxnet_inference.py``, ``tf_inference.py``), this one, and the
    decoder's ``image_dataset`` modules (the serving container has only code/ on its path)."""
    import os
    import shutil

    here = os.path.dirname(os.path.abspath(__file__))
    dataset = os.path.join(os.path.dirname(here), "image_dataset")
    modules = ("__init__.py", "serving.py", handlers)
    for package, source, names in (("image_training", here, modules), ("image_dataset", dataset, DATASET_MODULES)):
        os.makedirs(os.path.join(code_dir, package), exist_ok=True)
        for name in names:
            shutil.copyfile(os.path.join(source, name), os.path.join(code_dir, package, name))


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF markers (not DHT, JPG, DAC)
_JPEG_BARE = frozenset(range(0xD0, 0xDA)) | {0x01}  # markers without a length: RSTn, SOI, EOI, TEM


def header_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) that a PNG's IHDR or a JPEG's frame header announces, read without a
    decoder; None when the header cannot be found."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    at = 2
    while data.startswith(b"\xff\xd8") and at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte
            at += 1
        elif marker in _JPEG_BARE:
            at += 2
        elif marker in _JPEG_FRAMES:
            frame = data[at + 5 : at + 9]
            return (int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[0:2], "big")) if len(frame) == 4 else None
        else:
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def check_encoded(data: bytes) -> None:
    """The checks that need no decoder: RequestError 400 for an empty body, one that is not a
    JPEG or PNG, or one whose header announces more than MAX_PIXELS; 413 above the payload limit."""
    if not data:
        raise RequestError(400, "the request body is empty")
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError(413, f"the image is {len(data)} bytes; the limit is {MAX_REQUEST_BYTES}")
    head = bytes(data[:8])
    if not (head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n")):
        raise RequestError(400, "the body is not a JPEG or PNG image")
    size = header_size(bytes(data))
    if size and size[0] * size[1] > MAX_PIXELS:
        raise RequestError(400, f"the image has {size[0]}x{size[1]} pixels, more than {MAX_PIXELS}")


def decode_image(data: bytes, channels: int = 3) -> Decoded:
    """HWC uint8 RGB (or grey) pixels of an encoded image, as ``cv2.imread`` gives them and as
    training saw them, with or without OpenCV installed (image_dataset.pixels, the product's one
    decoder); RequestError 400 for whatever validation rejects (truncated, corrupt, too many
    pixels, not JPEG or PNG), 413 above the payload limit."""
    from image_dataset.pixels import PixelError  # noqa: PLC0415 - shipped next to this module
    from image_dataset.pixels import decode as decode_pixels  # noqa: PLC0415

    check_encoded(data)
    try:
        return decode_pixels(bytes(data), channels, MAX_PIXELS)
    except PixelError as err:
        raise RequestError(400, f"the body is not a decodable image ({err.code}): {err}") from None


def decode(data: bytes, channels: int = 3) -> np.ndarray:
    """The pixels of ``decode_image``: H x W x ``channels`` uint8."""
    return decode_image(data, channels).pixels


def resize_shorter(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the shorter side is ``size``, with ImageRecordIter's integer arithmetic and
    OpenCV's bilinear interpolation (cv2 where installed, its exact emulation otherwise);
    RequestError 400 when the result would be over MAX_PIXELS."""
    from image_dataset.images import resized as resized_size  # noqa: PLC0415
    from image_dataset.pixels import resize_linear  # noqa: PLC0415

    height, width = image.shape[:2]
    new_w, new_h = resized_size(width, height, size)
    if new_w * new_h > MAX_PIXELS:  # a thin image: 1 x 30,000,000 with a shorter side of 32 is 32 x 960,000,000
        raise RequestError(
            400,
            f"the image has {width}x{height} pixels: resized to a shorter side of {size} it would have "
            f"{new_w}x{new_h}, more than {MAX_PIXELS} (IMG_TOO_LARGE)",
        )
    try:
        import cv2  # noqa: PLC0415 - optional: the AWS containers have no OpenCV
    except ImportError:
        return resize_linear(image, new_w, new_h)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return resized if resized.ndim == 3 else resized[:, :, None]


def preprocess(
    data: bytes, image_shape: Sequence[int], resize: Optional[int], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """One encoded image -> the (1, C, H, W) float32 input the network was validated on."""
    import numpy as np  # noqa: PLC0415 - see the module's docstring

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


# -- RecordIO bodies (batch transform, SplitType RecordIO) ------------------------------------


class Records(List[Any]):
    """The records of one RecordIO request, in record order: what each record has become so far
    (its image, the network's input, the prediction), or the RequestError that stands in its
    place, so that every record keeps its answer's position."""


def record_images(body: bytes) -> Records:
    """The encoded image of each record of a RecordIO body (image_dataset.recordio, the product's
    one reader), in record order; a record too short for its image-record header gets a
    RequestError 400 in its place. A body whose framing is broken (bad magic, a truncated record)
    is a RequestError 400 that names the record and its byte offset in the body: no answer could
    be matched to its record. SageMaker sends whole records (``MultiRecord``) or one record
    without its padding (``SingleRecord``); a body that does not start with the RecordIO magic is
    read as one record's data without its frame, in case the split also drops the header."""
    import io  # noqa: PLC0415

    from image_dataset.issues import DatasetError  # noqa: PLC0415 - shipped next to this module
    from image_dataset.recordio import MAGIC_BYTES, RecordIOReader, unpack  # noqa: PLC0415

    data = bytes(body)
    if not data:
        raise RequestError(400, "the request body is empty")
    payloads: Optional[List[bytes]] = None
    if not data.startswith(MAGIC_BYTES):
        try:
            unpack(data)
            payloads = [data]
        except DatasetError:
            pass  # nor is it a record's data: the reader names what it finds at byte 0
    if payloads is None:
        reader = RecordIOReader(io.BytesIO(data), "request", padded_end=False)
        try:
            payloads = [payload for _, payload in reader]
        except DatasetError as err:
            raise RequestError(
                400, f"the RecordIO body is broken at {err.issue.location}: {err.issue.message}"
            ) from None
    images = Records()
    for number, payload in enumerate(payloads):
        try:
            images.append(unpack(payload)[1])
        except DatasetError as err:
            images.append(RequestError(400, f"record {number} of the request is no image record: {err.issue.message}"))
    return images


def per_record(step: Callable[[Any], Any], records: Iterable[Any]) -> Records:
    """``step`` applied to each record that has no RequestError yet, in order; a RequestError that
    it raises takes that record's place, and the other records go on."""
    done = Records()
    for item in records:
        if isinstance(item, RequestError):
            done.append(item)
            continue
        try:
            done.append(step(item))
        except RequestError as err:
            done.append(err)
    return done


def record_lines(predictions: Iterable[Any], render_one: Callable[[Any], str]) -> Tuple[str, str]:
    """(body, content type) of the answer to a RecordIO request: one JSON line per record, in
    record order, separated by newlines (none at the end: ``AssembleWith: Line`` ends each answer
    with one). A record's line is ``render_one(prediction)``, the body the image path answers for
    its image, on one line; a record without a prediction gets ``{"error": {"code": STATUS,
    "message": ...}}`` with the status and message the image path answers for that image."""
    lines = []
    for item in predictions:
        if isinstance(item, RequestError):
            lines.append(json.dumps({"error": {"code": item.status, "message": str(item)}}))
        else:
            lines.append(render_one(item).rstrip("\n"))
    return "\n".join(lines), JSONLINES
