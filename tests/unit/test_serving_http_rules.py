"""The serving contract's HTTP rules checked as pure functions, in the main environment (no
MXNet, no TensorFlow): Accept negotiation (RFC 9110 12.5.1, q-values 12.4.2), the decoder-free
size check (PNG IHDR, JPEG frame header), the payload and pixel caps, decoding and float32
normalisation, the OpenCV call (with a stand-in cv2), and the files a model archive's code/
receives. Written to kill mutmut's survivors in image_training.serving."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from image_dataset.images import DEFAULT_MAX_PIXELS
from image_dataset.pixels import resize_linear
from image_training import serving, tf_inference
from image_training.serving import (
    DATASET_MODULES,
    JSON,
    JSONLINES,
    MAX_PIXELS,
    MAX_REQUEST_BYTES,
    RESPONSE_TYPES,
    VERBOSE,
    MediaRange,
    RequestError,
    _weight,
    accept_ranges,
    check_encoded,
    copy_inference_code,
    decode,
    decode_image,
    header_size,
    preprocess,
    resize_shorter,
    response_type,
)

# ---------------------------------------------------------------------------------------------
# Accept negotiation


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON), ("", JSON), ("   ", JSON),  # no header, or an empty one: any format
        ("application/json", JSON), ("application/jsonlines", JSONLINES),
        ("application/json;verbose", VERBOSE), ("application/json; verbose=true", VERBOSE),
        ("application/json;verbose=1", VERBOSE), ('application/json;verbose="yes"', VERBOSE),
        ("application/json;verbose=false", JSON), ("application/json;verbose=FALSE", JSON),
        ('application/json;verbose="false"', JSON), ("application/json;verbose=0", JSON),
        ("application/json;verbose = false", JSON), ("application/json;charset=utf-8", JSON),
        ("APPLICATION/JSONLINES", JSONLINES), ("Application/Json;Verbose", VERBOSE),
        ("*/*", JSON), ("application/*", JSON), ("text/html, */*;q=0.1", JSON),
        # equal weights: the range listed first, then the server's order (JSON first)
        ("application/jsonlines, application/json", JSONLINES),
        ("application/json, application/jsonlines", JSON),
        ("application/jsonlines;q=0.5, application/json;q=0.5", JSONLINES),
        ("application/jsonlines, application/json;verbose", JSONLINES),
        ("application/json;verbose, application/jsonlines", VERBOSE),
        # the highest weight wins, wherever it is listed
        ("application/json;q=0.4, application/jsonlines;q=0.6", JSONLINES),
        ("application/jsonlines;q=0.4, application/json;q=0.6", JSON),
        ("application/json;q=0.3, application/json;verbose;q=0.8", VERBOSE),
        ("application/json;verbose;q=0.8, application/json;q=0.3", VERBOSE),
        ("application/json;verbose;q=0.2, application/json;q=0.3", JSON),
        ("application/jsonlines;q=0.001, text/html", JSONLINES),
        ("application/jsonlines;Q=1.000, application/json;q=0.999", JSONLINES),
        # the most specific range decides a format's weight; q=0 excludes it
        ("application/json;q=0, */*", JSONLINES),
        ("application/json;verbose;q=0, */*", JSON),
        ("application/*;q=0.9, application/json;q=0.1", JSONLINES),
        ("application/json;q=0.1, application/*;q=0.9", JSONLINES),
        ("*/*;q=0.2, application/jsonlines;q=0.1", JSON),
        # of two equally specific ranges, the first counts
        ("application/json;q=0.9, application/json;q=0", JSON),
        # empty list elements mean nothing (RFC 9110 5.6.1)
        (", ,application/jsonlines", JSONLINES), ("application/jsonlines,,", JSONLINES),
    ],
)  # fmt: skip
def test_response_type_negotiates_as_rfc_9110_says(accept: Optional[str], expected: str) -> None:
    assert response_type(accept) == expected


@pytest.mark.parametrize(
    "accept",
    ["text/html", "application/xml", "image/*", "text/*;q=1", "application/jsonlines;q=0", "*/*;q=0",
     "application/json;q=0, application/jsonlines;q=0", "application/json;q=0, application/jsonlines;q=0.0"],
)  # fmt: skip
def test_no_acceptable_format_is_406(accept: str) -> None:
    with pytest.raises(RequestError) as err:
        response_type(accept)
    assert err.value.status == 406
    assert str(err.value) == (
        f"cannot answer in {accept!r}; accept application/json, application/json;verbose or "
        "application/jsonlines (with a q above 0)"
    )


@pytest.mark.parametrize("element", ["json", "/json", "application/", "*/json", "/", "*"])
def test_an_element_that_is_not_a_media_range_is_400(element: str) -> None:
    with pytest.raises(RequestError) as err:
        response_type(f"application/json,  {element} ;q=1")
    assert err.value.status == 400
    assert str(err.value) == f"Accept element {element + ' ;q=1'!r} is not a media range (type/subtype)"


@pytest.mark.parametrize(
    "q", ["abc", "", "2", "1.5", "1.001", "-0.1", "-0", "+0.5", ".5", "0.5.5", "1x", "nan", "inf", "1e3"]
)
def test_an_invalid_q_is_400(q: str) -> None:
    with pytest.raises(RequestError) as err:
        response_type(f"application/jsonlines, application/json; q={q} ")
    assert err.value.status == 400
    assert str(err.value) == f"Accept element {'application/json; q=' + q!r}: q must be a number from 0 to 1"


@pytest.mark.parametrize(("q", "value"), [("0", 0.0), ("1", 1.0), ("0.5", 0.5), ("1.000", 1.0), ("0.001", 0.001)])
def test_the_bounds_of_q_are_valid(q: str, value: float) -> None:
    assert accept_ranges(f"text/plain;q={q}")[0].q == value


def test_accept_ranges_parses_types_parameters_weights_and_positions() -> None:
    ranges = accept_ranges(" Application/JSON ; Q = 0.25 ; verbose, , text/* ;charset=utf-8, */*;verbose=0")
    assert ranges == [
        MediaRange("application", "json", True, 0.25, 0),
        MediaRange("text", "*", False, 1.0, 2),
        MediaRange("*", "*", False, 1.0, 3),
    ]
    assert accept_ranges("application/jsonlines") == [MediaRange("application", "jsonlines", False, 1.0, 0)]
    assert accept_ranges(" , ") == []


@pytest.mark.parametrize(
    ("offer", "accept", "weight"),
    [
        (JSON, "text/html", None), (JSONLINES, "application/json", None),
        (JSON, "application/json;verbose", None),  # verbose asks for the verbose answer only
        (VERBOSE, "application/json;verbose;q=0.4", (0.4, 0)),
        (VERBOSE, "application/json;q=0.4", (0.4, 0)),
        (JSONLINES, "application/json, */*;q=0.5", (0.5, 1)),
        (JSON, "application/json;q=0.3, application/json;verbose;q=0.8", (0.3, 0)),
        (VERBOSE, "application/json;q=0.3, application/json;verbose;q=0.8", (0.8, 1)),
        (VERBOSE, "application/json;verbose;q=0.8, application/json;q=0.3", (0.8, 0)),
        (JSON, "application/*;q=0.9, application/json;q=0.1", (0.1, 1)),
        (JSONLINES, "application/*;q=0.9, application/json;q=0.1", (0.9, 0)),
        (JSON, "*/*;q=0.9, application/*;q=0.1", (0.1, 1)),
        (JSON, "application/*;q=0.1, */*;q=0.9", (0.1, 0)),
        (VERBOSE, "*/*;q=0.2, application/*;verbose;q=0.7", (0.7, 1)),
        (JSON, "application/json;q=0.9, application/json;q=0", (0.9, 0)),
        (JSON, "application/json;q=0, application/json;q=0.9", (0.0, 0)),
    ],
)  # fmt: skip
def test_a_format_takes_the_weight_of_its_most_specific_range(
    offer: str, accept: str, weight: Optional[Tuple[float, int]]
) -> None:
    assert _weight(offer, accept_ranges(accept)) == weight


RANGES = ["application/json", "application/jsonlines", "application/*", "*/*", "text/html"]
elements = st.tuples(st.sampled_from(RANGES), st.sampled_from([None, "0", "0.1", "0.5", "1"]), st.booleans())


def header(parts: List[Tuple[str, Optional[str], bool]], sep: str = ", ", param: str = ";") -> str:
    return sep.join(r + (f"{param}verbose" if v else "") + (f"{param}q={q}" if q else "") for r, q, v in parts)


def outcome(accept: str) -> str:
    try:
        return response_type(accept)
    except RequestError as err:
        return f"status {err.status}"


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(elements, min_size=1, max_size=4))
def test_negotiation_ignores_case_whitespace_and_empty_elements(parts: List[Tuple[str, Optional[str], bool]]) -> None:
    accept = header(parts)
    expected = outcome(accept)
    assert expected in RESPONSE_TYPES or expected == "status 406"
    assert outcome(header(parts).upper()) == expected
    assert outcome(header(parts, sep=" ,\t", param=" ; ")) == expected
    assert outcome(accept + ", ,") == expected
    if expected in RESPONSE_TYPES:  # the winner has the highest weight of all formats
        ranges = accept_ranges(accept)
        weights = [w[0] for w in (_weight(offer, ranges) for offer in RESPONSE_TYPES) if w is not None]
        winner = _weight(expected, ranges)
        assert winner is not None and winner[0] == max(weights) > 0


# ---------------------------------------------------------------------------------------------
# Sizes from headers, without a decoder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SOI = b"\xff\xd8"
FRAME_MARKERS = [m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)]
BARE_MARKERS = [0x01, *range(0xD0, 0xDA)]  # TEM, RST0-7, SOI, EOI: no length follows
LENGTH_MARKERS = [m for m in range(0x02, 0xFF) if m not in FRAME_MARKERS and m not in BARE_MARKERS]


def png_header(width: int, height: int, extra: bytes = b"\x08\x02\x00\x00\x00") -> bytes:
    return (
        PNG_SIGNATURE + (13).to_bytes(4, "big") + b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big") + extra
    )


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def frame(width: int, height: int, marker: int = 0xC0) -> bytes:
    components = b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return segment(marker, b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + components)


def pillow(fmt: str, width: int, height: int, **options: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, format=fmt, **options)
    return out.getvalue()


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (pillow("PNG", 37, 19), (37, 19)),
        (pillow("JPEG", 37, 19), (37, 19)),
        (pillow("JPEG", 19, 37, progressive=True), (19, 37)),
        (pillow("JPEG", 300, 2, exif=exif_orientation(6)), (300, 2)),  # APP1 before the frame
        (pillow("JPEG", 2, 300, icc_profile=b"\x00" * 5000), (2, 300)),  # a long APP2
    ],
)  # fmt: skip
def test_header_size_of_real_files(data: bytes, size: Tuple[int, int]) -> None:
    assert header_size(data) == size


def test_header_size_of_a_png_reads_both_32_bit_fields() -> None:
    assert header_size(png_header(0x01020304, 0x0A0B0C0D)) == (0x01020304, 0x0A0B0C0D)
    assert header_size(png_header(70_000, 3)[:24]) == (70_000, 3)  # exactly signature, length, IHDR, size
    assert header_size(png_header(70_000, 3)[:23]) is None
    assert header_size(png_header(70_000, 3).replace(b"IHDR", b"IDAT")) is None
    assert header_size(b"\x89PNG\r\n\x1a\x00" + png_header(5, 5)[8:]) is None


@pytest.mark.parametrize("marker", FRAME_MARKERS)
def test_header_size_reads_every_frame_type(marker: int) -> None:
    assert header_size(SOI + frame(0x0102, 0x0304, marker)) == (0x0102, 0x0304)


@pytest.mark.parametrize("marker", BARE_MARKERS)
def test_markers_without_a_length_are_skipped(marker: int) -> None:
    assert header_size(SOI + bytes([0xFF, marker]) + frame(640, 480)) == (640, 480)


@pytest.mark.parametrize("marker", LENGTH_MARKERS)
def test_other_segments_are_skipped_by_their_length(marker: int) -> None:
    assert header_size(SOI + segment(marker, bytes(range(0xC0, 0xFF))) + frame(640, 480)) == (640, 480)


@pytest.mark.parametrize("fill", [1, 2, 3])
def test_fill_bytes_before_a_marker_are_skipped(fill: int) -> None:
    data = SOI + segment(0xE0, b"JFIF\x00") + b"\xff" * fill + frame(33, 44)
    assert header_size(data) == (33, 44)
    assert header_size(SOI + b"\xff" * fill + frame(33, 44)) == (33, 44)


def test_header_size_needs_the_whole_frame_header() -> None:
    data = SOI + segment(0xDB, b"\x00" * 65) + frame(0x1234, 0x5678)
    end = len(SOI) + 69 + 9  # DQT; the marker, its length, precision, height, width
    assert header_size(data[:end]) == (0x1234, 0x5678)
    assert header_size(data[: end - 1]) is None
    assert header_size(data[: end - 5]) is None


@pytest.mark.parametrize(
    "data",
    [
        b"", b"\xff", SOI, SOI + b"\xff", SOI + b"\xff\xe0", SOI + b"\xff\xe0\x00",
        SOI + segment(0xE0, b"JFIF\x00"),  # no frame header before the end
        SOI + segment(0xE0, b"JFIF\x00")[:-1],  # a segment longer than what is left
        SOI + b"\xff\xe0\xff\xff" + frame(5, 5),  # a length that runs past the end
        SOI + b"\x00\xff" + frame(5, 5)[1:],  # no marker where one must be
        SOI + segment(0xE0, b"JFIF\x00") + b"\x00" + frame(5, 5),
        b"\xff\xd9" + frame(5, 5),  # not a JPEG (no SOI)
        b"GIF89a" + b"\x00" * 30,
    ],
)  # fmt: skip
def test_header_size_is_none_when_no_header_can_be_found(data: bytes) -> None:
    assert header_size(data) is None


# ---------------------------------------------------------------------------------------------
# check_encoded: empty, too large, not JPEG/PNG, too many pixels


def status_of(data: Any) -> Optional[Tuple[int, str]]:  # bytes, bytearray or memoryview
    try:
        check_encoded(data)
    except RequestError as err:
        return err.status, str(err)
    return None


def test_the_caps_are_sagemakers_payload_limit_and_the_training_pixel_cap() -> None:
    assert MAX_REQUEST_BYTES == 6 * 1024 * 1024
    assert MAX_PIXELS == DEFAULT_MAX_PIXELS == 89_478_485


@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
def test_an_empty_body_is_400(empty: Union[bytes, bytearray, memoryview]) -> None:
    assert status_of(empty) == (400, "the request body is empty")


def test_the_payload_limit_is_inclusive() -> None:
    head = SOI + frame(64, 48)
    at_limit = head + bytes(MAX_REQUEST_BYTES - len(head))
    assert len(at_limit) == MAX_REQUEST_BYTES and status_of(at_limit) is None
    over = at_limit + b"\x00"
    assert status_of(over) == (413, f"the image is {MAX_REQUEST_BYTES + 1} bytes; the limit is {MAX_REQUEST_BYTES}")
    assert status_of(b"GIF89a" + bytes(MAX_REQUEST_BYTES)) == (
        413,
        f"the image is {MAX_REQUEST_BYTES + 6} bytes; the limit is {MAX_REQUEST_BYTES}",
    )


@pytest.mark.parametrize(
    "data",
    [b"GIF89a\x01\x00\x01\x00", b"\xff\xd8\x00\x00", b"\xff\xd8", b"\x89PNG\r\n\x1a", b"\x89PNG\r\n\x1a\x00" + b"\x00" * 20,
     b"BM" + b"\x00" * 40, b"\x00\xff\xd8\xff"],
)  # fmt: skip
def test_a_body_that_is_not_jpeg_or_png_is_400(data: bytes) -> None:
    assert status_of(data) == (400, "the body is not a JPEG or PNG image")


@pytest.mark.parametrize(
    ("data", "width", "height"),
    [
        (png_header(14_351, 6_235), 14_351, 6_235),  # 113 * 127 x 5 * 29 * 43 = MAX_PIXELS
        (SOI + frame(14_351, 6_235), 14_351, 6_235),
        (png_header(MAX_PIXELS, 1), MAX_PIXELS, 1),
        (png_header(1, MAX_PIXELS), 1, MAX_PIXELS),
    ],
)  # fmt: skip
def test_exactly_max_pixels_passes(data: bytes, width: int, height: int) -> None:
    assert width * height == MAX_PIXELS
    assert header_size(data) == (width, height)
    assert status_of(data) is None


@pytest.mark.parametrize(
    ("data", "width", "height"),
    [
        (png_header(87_211, 1_026), 87_211, 1_026),  # 87211 * 1026 = MAX_PIXELS + 1
        (png_header(MAX_PIXELS + 1, 1), MAX_PIXELS + 1, 1),
        (png_header(1, MAX_PIXELS + 1), 1, MAX_PIXELS + 1),
        (SOI + frame(14_352, 6_235), 14_352, 6_235),
        (SOI + segment(0xE1, b"Exif\x00\x00" + bytes(40)) + frame(65_535, 65_535, 0xC2), 65_535, 65_535),
    ],
)  # fmt: skip
def test_one_pixel_more_is_400(data: bytes, width: int, height: int) -> None:
    assert width * height > MAX_PIXELS
    assert status_of(data) == (400, f"the image has {width}x{height} pixels, more than {MAX_PIXELS}")
    assert status_of(memoryview(data)) == status_of(bytearray(data)) == status_of(data)


@pytest.mark.parametrize(
    "data",
    [
        pillow("JPEG", 20, 10), pillow("PNG", 20, 10), SOI + b"\xff", SOI + b"\xff" + bytes(30),
        b"\x89PNG\r\n\x1a\n" + bytes(30), png_header(0, 5), png_header(0, MAX_PIXELS + 1), SOI + frame(0, 65_535),
    ],
)  # fmt: skip
def test_what_the_header_check_cannot_judge_is_left_to_the_decoder(data: bytes) -> None:
    assert status_of(data) is None
    assert status_of(memoryview(data)) is None


# ---------------------------------------------------------------------------------------------
# decoding, the crop's boundary, float32 normalisation and the OpenCV call


def rgb_png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def test_decode_gives_three_channels_by_default() -> None:
    data = rgb_png(np.full((10, 20, 3), (200, 30, 30)))
    assert decode_image(data).pixels.shape == (10, 20, 3)
    assert decode(data).shape == (10, 20, 3)
    assert decode(data, 1).shape == (10, 20, 1)


def test_an_undecodable_image_is_400_with_validations_code() -> None:
    truncated = pillow("JPEG", 20, 10)[:200]
    assert status_of(truncated) is None  # its header passes: the decoder is what refuses it
    with pytest.raises(RequestError) as err:
        decode_image(truncated)
    assert err.value.status == 400
    assert str(err.value) == "the body is not a decodable image (IMG_TRUNCATED): cannot decode the JPEG: Truncated File Read"
    from image_dataset.images import check_image

    assert check_image(0, truncated, 10**6)[3:] == ("IMG_TRUNCATED", "cannot decode the JPEG: Truncated File Read")


def coordinates(height: int, width: int) -> np.ndarray:
    """R = column, G = row, B = 7: a crop's position can be read from its pixels."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols, rows, np.full_like(rows, 7)], axis=2)


@pytest.mark.parametrize(("height", "width", "crop"), [(10, 20, (10, 12)), (20, 10, (12, 10)), (10, 10, (10, 10))])
def test_an_image_exactly_as_high_or_wide_as_the_crop_is_not_rescaled(
    height: int, width: int, crop: Tuple[int, int]
) -> None:
    out = preprocess(rgb_png(coordinates(height, width)), (3, *crop), None, (0, 0, 0), (1, 1, 1))
    top, left = (height - crop[0]) // 2, (width - crop[1]) // 2
    assert out[0, 0, 0].tolist() == list(range(left, left + crop[1]))
    assert out[0, 1, :, 0].tolist() == list(range(top, top + crop[0]))


def test_normalisation_is_float32_arithmetic_as_in_training() -> None:
    levels = np.arange(256).reshape(16, 16)
    image = np.stack([levels, levels[::-1], levels.T], axis=2)
    mean, std = (123.68, 116.779, 103.939), (58.393, 57.12, 57.375)  # ImageNet's, in 0-255
    out = preprocess(rgb_png(image), (3, 16, 16), None, mean, std)
    expected = (image.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    assert out.dtype == np.float32
    assert np.array_equal(out[0], expected.transpose(2, 0, 1))  # bit for bit, not approximately


class FakeCv2:
    """cv2.resize's signature and its habit of dropping a single channel, computed by the
    emulation the main environment uses."""

    INTER_LINEAR = 1

    def __init__(self) -> None:
        self.calls: List[Tuple[Tuple[int, ...], Tuple[int, int], int]] = []

    def resize(self, src: np.ndarray, dsize: Tuple[int, int], interpolation: int = 0) -> np.ndarray:
        self.calls.append((src.shape, dsize, interpolation))
        out = resize_linear(src, *dsize)
        return out[:, :, 0] if out.shape[2] == 1 else out


@pytest.mark.parametrize(("shape", "size", "dsize"), [((30, 50, 3), 16, (26, 16)), ((50, 30, 1), 16, (16, 26))])
def test_resize_shorter_calls_opencv_with_width_first_and_keeps_the_channel_axis(
    monkeypatch: pytest.MonkeyPatch, shape: Tuple[int, int, int], size: int, dsize: Tuple[int, int]
) -> None:
    cv2 = FakeCv2()
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    image = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape).astype(np.uint8)
    out = resize_shorter(image, size)
    assert cv2.calls == [(shape, dsize, FakeCv2.INTER_LINEAR)]
    assert out.shape == (dsize[1], dsize[0], shape[2])
    assert np.array_equal(out, resize_linear(image, *dsize))


def test_without_the_decoder_the_tf_hooks_still_check_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS TensorFlow Serving container has no numpy: graph_bytes falls back to check_encoded."""
    monkeypatch.setitem(sys.modules, "image_dataset.pixels", None)  # its import now fails
    body = SOI + frame(64, 48)
    assert tf_inference.graph_bytes(body) == body
    with pytest.raises(RequestError) as err:
        tf_inference.graph_bytes(b"GIF89a" + bytes(10))
    assert (err.value.status, str(err.value)) == (400, "the body is not a JPEG or PNG image")


# ---------------------------------------------------------------------------------------------
# copy_inference_code


def files_under(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)).replace(os.sep, "/") for p in root.rglob("*") if p.is_file())


def test_copy_inference_code_writes_the_handlers_serving_and_the_decoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the sources are found next to the module, wherever the caller is
    code = tmp_path / "code"
    copy_inference_code(str(code), "mxnet_inference.py")
    expected = ["image_dataset/__init__.py", "image_dataset/images.py", "image_dataset/issues.py",
                "image_dataset/pixels.py", "image_dataset/recordio.py", "image_dataset/store.py",
                "image_training/__init__.py", "image_training/mxnet_inference.py", "image_training/serving.py"]  # fmt: skip
    assert files_under(code) == expected
    here = Path(serving.__file__).resolve().parent
    sources = {"image_training": here, "image_dataset": here.parent / "image_dataset"}
    for name in expected:
        package, module = name.split("/")
        assert (code / name).read_bytes() == (sources[package] / module).read_bytes(), name
    assert set(DATASET_MODULES) == {"__init__.py", "images.py", "pixels.py", "recordio.py", "issues.py", "store.py"}

    copy_inference_code(str(code), "tf_inference.py")  # again, into the same folder
    assert files_under(code) == sorted([*expected, "image_training/tf_inference.py"])
    assert (code / "image_training/tf_inference.py").read_bytes() == (here / "tf_inference.py").read_bytes()


@pytest.mark.parametrize("accept", [",", " , ", ",,;", ", ,"])
def test_a_header_of_empty_elements_means_any_format(accept: str) -> None:
    """RFC 9110 5.6.1: empty list elements do not count, so such a header says nothing."""
    assert response_type(accept) == JSON


@pytest.mark.parametrize("q", ["0.1234", "1e-1", "0000.5", "1.0000", "01", ".5", "1.001", " 0.5x"])
def test_a_q_outside_the_qvalue_grammar_is_400(q: str) -> None:
    with pytest.raises(RequestError) as caught:
        response_type(f"application/json;q={q}")
    assert caught.value.status == 400


@pytest.mark.parametrize("q", ["0", "0.", "0.5", "0.123", "1", "1.", "1.000"])
def test_every_qvalue_of_the_grammar_is_accepted(q: str) -> None:
    assert accept_ranges(f"text/plain;q={q}")[0].q == float(q)


def test_a_media_range_with_an_extra_slash_is_400() -> None:
    with pytest.raises(RequestError) as caught:
        response_type("application/json/x")
    assert caught.value.status == 400
