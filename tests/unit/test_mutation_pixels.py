"""pixels, in the main environment (no cv2): decode equals the OpenCV reference stored in
tests/unit/data/pixels_opencv.npz (see tests/unit/pixel_corpus.py) for every image kind — EXIF
orientation 1-8, 16-bit, CMYK, palette, alpha, 1/2/4-bit grey, colour and grey output — and so
does resize_linear; plus the portable flag and bytes, the modes only Pillow 9 gives, and the
error codes every decoding failure carries."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from image_dataset import pixels
from image_dataset.pixels import PixelError, decode, open_image, portable_bytes, resize_linear
from tests.builders import png_bomb
from tests.unit.pixel_corpus import (
    HEIGHT,
    RESIZE_OFF_BY_ONE,
    RESIZES,
    WIDTH,
    corpus,
    digest,
    large_corpus,
    load_large_reference,
    load_reference,
    resize_input,
)

pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # exif_broken.jpg, on purpose

GREY_TOLERANCE = {"rgb16.png": 1, "rgba16.png": 1}  # libpng greys 16-bit RGB before it drops the low byte
NOT_PORTABLE = {f"exif{v}{kind}" for v in range(2, 9) for kind in (".jpg", ".png", "_l.jpg")} | {
    "cmyk.jpg",
    "cmyk_plain.jpg",
}


@pytest.fixture(scope="module")
def files() -> Dict[str, bytes]:
    return corpus()


@pytest.fixture(scope="module")
def reference():
    return load_reference()


def test_the_corpus_is_the_one_the_reference_was_made_from(files, reference) -> None:
    images, _ = reference
    assert sorted(images) == sorted(files)
    changed = [name for name, data in files.items() if digest(data).tobytes() != images[name][2]]
    assert changed == [], "the corpus changed: run .venv/bin/python -m tests.unit.pixel_corpus"


def test_colour_decoding_equals_opencv(files, reference) -> None:
    images, _ = reference
    for name, data in sorted(files.items()):
        decoded = decode(data)
        assert decoded.pixels.dtype == np.uint8 and decoded.pixels.flags["C_CONTIGUOUS"], name
        assert decoded.pixels.shape == images[name][0].shape, name
        assert np.array_equal(decoded.pixels, images[name][0]), name
        assert decoded.portable == (name not in NOT_PORTABLE), name


def test_grey_decoding_equals_opencv(files, reference) -> None:
    images, _ = reference
    for name, data in sorted(files.items()):
        decoded = decode(data, 1)
        assert decoded.pixels.shape == images[name][1].shape + (1,), name
        assert decoded.pixels.flags["C_CONTIGUOUS"], name
        diff = np.abs(decoded.pixels[:, :, 0].astype(int) - images[name][1])
        assert diff.max() <= GREY_TOLERANCE.get(name, 0), name
        assert decoded.portable == (name not in NOT_PORTABLE), name


def test_every_colour_and_16_bit_level_decodes_as_opencv() -> None:
    """Colour cubes (PNG, CMYK JPEG) and every 16-bit grey value: the grey formulas and the
    high byte, value by value (the reference keeps hashes of OpenCV's pixels)."""
    reference = load_large_reference()
    for name, data in sorted(large_corpus().items()):
        source, colour, grey = reference[name]
        assert digest(data).tobytes() == source, "the corpus changed: run .venv/bin/python -m tests.unit.pixel_corpus"
        assert digest(decode(data).pixels.tobytes()).tobytes() == colour, name
        assert digest(decode(data, 1).pixels.tobytes()).tobytes() == grey, name


def test_transparency_is_ignored_without_a_warning(files) -> None:
    """OpenCV ignores tRNS; Pillow would warn on every palette image with alpha bytes."""
    for name in ("p_alpha.png", "p_transparent.png", "l_transparent.png", "rgb_transparent.png"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            decode(files[name])
            decode(files[name], 1)


def test_the_reference_shows_what_opencv_does(files, reference) -> None:
    images, _ = reference
    assert images["exif1.jpg"][0].shape == (HEIGHT, WIDTH, 3)
    for value in (5, 6, 7, 8):  # these turns swap the sides
        assert images[f"exif{value}.png"][0].shape == (WIDTH, HEIGHT, 3)
    upright = images["exif1.png"][0]
    assert np.array_equal(images["exif2.png"][0], upright[:, ::-1])
    assert np.array_equal(images["exif3.png"][0], upright[::-1, ::-1])
    assert np.array_equal(images["exif4.png"][0], upright[::-1])
    assert np.array_equal(images["exif5.png"][0], upright.transpose(1, 0, 2))
    assert np.array_equal(images["exif6.png"][0], np.rot90(upright, -1))
    assert np.array_equal(images["exif7.png"][0], np.rot90(upright, 2).transpose(1, 0, 2))
    assert np.array_equal(images["exif8.png"][0], np.rot90(upright))
    wide = np.asarray(Image.open(io.BytesIO(files["l16.png"]))).astype(int)
    assert np.array_equal(images["l16.png"][1], wide >> 8)


def test_resize_linear_equals_cv2_resize(reference) -> None:
    _, outputs = reference
    for i, (((rows, cols), (height, width)), want) in enumerate(zip(RESIZES, outputs)):
        got = resize_linear(resize_input(rows, cols), width, height)
        assert got.dtype == np.uint8 and got.shape == (height, width, 3)
        diff = np.abs(got.astype(int) - want)
        if i < len(RESIZES) - 1:
            assert diff.max() == 0, (rows, cols, height, width)
        else:
            assert diff.max() <= 1 and int((diff > 0).sum()) <= RESIZE_OFF_BY_ONE


def test_resize_to_the_same_size_is_a_copy() -> None:
    image = resize_input(4, 5)
    same = resize_linear(image, 5, 4)
    assert np.array_equal(same, image) and same is not image
    same[0, 0, 0] ^= 1
    assert not np.array_equal(same, image)


def test_a_png_without_its_end_chunk_decodes_but_is_not_portable(files) -> None:
    data = files["rgb.png"]
    cut = data[: data.rfind(pixels.PNG_END)]
    decoded = decode(cut)
    assert np.array_equal(decoded.pixels, decode(data).pixels)
    assert not decoded.portable and decode(data).portable
    assert decode(files["rgb.jpg"] + b"IEND").portable  # a JPEG needs no end chunk


def test_portable_bytes_are_the_file_itself_or_a_png_of_the_pixels(files) -> None:
    data = files["rgb.jpg"]
    assert portable_bytes(data, decode(data)) is data
    for name in ("exif6.jpg", "cmyk.jpg"):
        for channels in (3, 1):
            decoded = decode(files[name], channels)
            out = portable_bytes(files[name], decoded)
            assert out.startswith(b"\x89PNG\r\n\x1a\n"), name
            again = decode(out, channels)
            assert again.portable and np.array_equal(again.pixels, decoded.pixels), (name, channels)
            assert Image.open(io.BytesIO(out)).mode == ("RGB" if channels == 3 else "L")
            idat = out.index(b"IDAT") + 4
            assert out[idat : idat + 2] == b"\x78\x01"  # zlib's fastest level: made per image while packing


# -- modes Pillow 9 (the Python 3.8 container) gives, that Pillow 11 does not open files as ----


def _sixteen(mode: str) -> Image.Image:
    values = np.array([[0x0000, 0x00FF, 0x0100], [0x7F80, 0xFF00, 0xFFFF]], np.uint16)
    raw = values.astype(">u2" if mode == "I;16B" else "<u2").tobytes()
    if mode == "I":  # Pillow 9's mode for a 16-bit grey PNG: 32-bit integers
        return Image.frombytes("I", (3, 2), values.astype("<i4").tobytes())
    return Image.frombytes(mode, (3, 2), raw)


@pytest.mark.parametrize("mode", ["I", "I;16", "I;16B", "I;16L", "I;16N"])
def test_sixteen_bit_grey_keeps_the_high_byte_in_every_mode(mode: str) -> None:
    high = np.array([[0, 0, 1], [0x7F, 0xFF, 0xFF]], np.uint8)
    rgb = pixels._rgb(_sixteen(mode))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert np.array_equal(rgb, np.repeat(high[:, :, None], 3, axis=2))
    grey = pixels._grey(_sixteen(mode), False)
    assert grey.dtype == np.uint8 and np.array_equal(grey, high)


def test_grey_with_alpha_drops_the_alpha() -> None:
    image = Image.merge("LA", [Image.fromarray(np.array([[10, 200]], np.uint8)), Image.new("L", (2, 1), 0)])
    assert np.array_equal(pixels._rgb(image), np.array([[[10] * 3, [200] * 3]], np.uint8))
    assert np.array_equal(pixels._grey(image, False), np.array([[10, 200]], np.uint8))


def test_a_palette_with_alpha_expands_to_its_colours_without_compositing() -> None:
    image = Image.new("PA", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([(0, 0), (1, 0)])  # index, alpha 0: fully transparent, still its colour
    assert np.array_equal(pixels._rgb(image), np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8))


def test_cmyk_converts_as_opencv_on_the_stored_values() -> None:
    # Pillow gives the Adobe-inverted values; R = K' - ((255 - C') * K' >> 8) on the stored C', K'
    stored = np.array([[[0, 255, 128, 0], [255, 0, 10, 100], [30, 60, 90, 255]]], np.uint8)
    image = Image.frombytes("CMYK", (3, 1), (255 - stored).tobytes())
    c, k = stored[..., :3].astype(int), stored[..., 3:].astype(int)
    want = (k - ((255 - c) * k >> 8)).astype(np.uint8)
    got = pixels._rgb(image)
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    r, g, b = (want[..., i].astype(int) for i in range(3))
    assert np.array_equal(pixels._grey(image, False), ((r * 4899 + g * 9617 + b * 1868 + 8192) >> 14).astype(np.uint8))


def test_colour_greys_with_libpngs_weights() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [1, 2, 3]]], np.uint8)
    got = pixels._grey(Image.fromarray(rgb), False)
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    assert np.array_equal(got, ((r * 9797 + g * 19234 + b * 3737) >> 15).astype(np.uint8))
    assert got.tolist() == [[76, 149, 29, 255, 1]]


# -- errors: validation's codes ------------------------------------------------------------


def _error(data: bytes, **kwargs) -> PixelError:
    with pytest.raises(PixelError) as caught:
        decode(data, **kwargs)
    return caught.value


def test_what_is_no_image_is_refused_with_validations_code(files) -> None:
    assert (_error(b"").code, str(_error(b""))) == ("IMG_EMPTY", "the image has zero bytes")
    unknown = _error(b"hello world, no image")
    assert (unknown.code, str(unknown)) == ("IMG_UNKNOWN_FORMAT", "first bytes 68656c6c6f20776f are no image signature")
    gif = _error(b"GIF89a" + b"\0" * 20)
    assert (gif.code, str(gif)) == ("IMG_UNSUPPORTED_FORMAT", "GIF image; JPEG or PNG is required")


def test_an_image_over_the_pixel_cap_is_too_large(files) -> None:
    error = _error(files["rgb.png"], max_pixels=WIDTH * HEIGHT - 1)
    assert (error.code, str(error)) == ("IMG_TOO_LARGE", f"13x9 = 117 pixels, over the cap of {WIDTH * HEIGHT - 1}")
    assert decode(files["rgb.png"], max_pixels=WIDTH * HEIGHT).pixels.shape == (HEIGHT, WIDTH, 3)


def test_a_truncated_image_is_truncated(files) -> None:
    for name in ("rgb.jpg", "rgb.png"):
        error = _error(files[name][:-60])
        kind = name[-3:].upper().replace("JPG", "JPEG")
        assert error.code == "IMG_TRUNCATED", name
        assert str(error).startswith(f"cannot decode the {kind}: ") and "truncated" in str(error), name


class _Failing:
    def __init__(self, error: BaseException, format: object = "PNG") -> None:
        self.error, self.format = error, format

    def load(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error, code, message",
    [
        (
            OSError("image file is truncated (3 bytes not processed)"),
            "IMG_TRUNCATED",
            "cannot decode the PNG: image file is truncated (3 bytes not processed)",
        ),
        (EOFError(), "IMG_TRUNCATED", "cannot decode the PNG: EOFError"),
        (OSError("broken data stream"), "IMG_CORRUPT", "cannot decode the PNG: broken data stream"),
        (SyntaxError("not a PNG file"), "IMG_CORRUPT", "cannot decode the PNG: not a PNG file"),
        (OSError(), "IMG_CORRUPT", "cannot decode the PNG: OSError"),
        (ValueError("Truncated File Read"), "IMG_TRUNCATED", "cannot decode the PNG: Truncated File Read"),
        (MemoryError(), "IMG_CORRUPT", "cannot decode the PNG: MemoryError"),
        (
            struct.error("unpack requires a buffer of 4 bytes"),
            "IMG_CORRUPT",
            "cannot decode the PNG: unpack requires a buffer of 4 bytes",
        ),
    ],
)
def test_each_error_of_loading_maps_to_a_code(error: BaseException, code: str, message: str) -> None:
    with pytest.raises(PixelError) as caught:
        pixels._load(_Failing(error))  # type: ignore[arg-type]
    assert (caught.value.code, str(caught.value)) == (code, message)
    assert isinstance(caught.value, ValueError) and caught.value.__cause__ is None


def test_an_image_of_no_format_is_named_image() -> None:
    with pytest.raises(PixelError) as caught:
        pixels._load(_Failing(OSError("x"), None))  # type: ignore[arg-type]
    assert str(caught.value) == "cannot decode the IMAGE: x"


def test_open_image_reads_the_header_only(files) -> None:
    image = open_image(files["rgb.jpg"])
    assert (image.format, image.size) == ("JPEG", (WIDTH, HEIGHT))


def test_what_the_header_reader_refuses_is_corrupt_or_too_large() -> None:
    for data, message in (
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "the PNG header cannot be read"),
        (b"\xff\xd8\xff" + b"\0" * 20, "the JPEG header cannot be read"),
    ):
        error = _error(data)
        assert (error.code, str(error)) == ("IMG_CORRUPT", message)
    error = _error(b"\xff\xd8\xff\xe0" + b"\xff" * 40)  # ends inside a marker segment
    assert (error.code, str(error)) == ("IMG_TRUNCATED", "cannot decode the JPEG: Truncated File Read")
    bomb = _error(png_bomb(), max_pixels=899_999_999)  # over Pillow's own limit too: the cap is ours
    assert (bomb.code, str(bomb)) == ("IMG_TOO_LARGE", "30000x30000 = 900000000 pixels, over the cap of 899999999")


def test_an_exif_block_that_cannot_be_read_turns_nothing(files) -> None:
    data = files["rgb.png"]
    body = b"garbage"  # not a TIFF header: Pillow's getexif raises
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    with_exif = data[:33] + chunk + data[33:]  # after IHDR
    assert pixels.orientation(open_image(with_exif)) == 1
    decoded = decode(with_exif)
    assert decoded.portable and np.array_equal(decoded.pixels, decode(data).pixels)
