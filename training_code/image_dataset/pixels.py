"""The one image decoder of the product: Pillow, giving the pixels that OpenCV's
``cv2.imread(path, cv2.IMREAD_COLOR)`` (im2rec's decoder) gives, as RGB.

What OpenCV 4.8 does, found by experiment and copied here:

- EXIF orientation (JPEG APP1 and PNG eXIf) is applied, by ``imread`` and ``imdecode`` alike;
- alpha is dropped, never composited (LA, RGBA, palette and grey/RGB ``tRNS`` transparency);
- 16-bit samples keep their high byte (``v >> 8``);
- 1-bit and 2/4-bit grey scale to 0..255, palettes expand to their colours;
- CMYK JPEGs are read with Adobe polarity (always, marker or not) and converted as
  ``R = K' - ((255 - C') * K' >> 8)`` on the stored (inverted) values ``C'``, ``K'``;
- JPEGs decode with libjpeg-turbo's accurate integer DCT and fancy upsampling (Pillow's and
  OpenCV's defaults);
- grey output (``IMREAD_GRAYSCALE``): a colour JPEG gives its luma plane, a colour PNG libpng's
  ``(9797 R + 19234 G + 3737 B) >> 15``, CMYK OpenCV's ``(4899 R + 9617 G + 1868 B + 8192) >> 14``.

Errors carry the issue codes of validation (``images.check_image``), so whatever validation
rejects (truncated, corrupt, too many pixels) every decoding path rejects too. Python 3.8, numpy
and Pillow only: model archives ship this module for serving.
"""

from __future__ import annotations

import io
import struct
from typing import NamedTuple, Tuple

import numpy as np
from PIL import Image

from .images import ACCEPTED_FORMATS, DEFAULT_MAX_PIXELS, failure_code, open_header, orientation, sniff

_TRANSPOSE = getattr(Image, "Transpose", Image)  # Pillow < 9.1 has no Transpose enum
# EXIF orientation -> the transpositions that make the image upright, in order
_ORIENT = {
    2: (_TRANSPOSE.FLIP_LEFT_RIGHT,),
    3: (_TRANSPOSE.ROTATE_180,),
    4: (_TRANSPOSE.FLIP_TOP_BOTTOM,),
    5: (_TRANSPOSE.TRANSPOSE,),
    6: (_TRANSPOSE.ROTATE_270,),
    7: (_TRANSPOSE.TRANSVERSE,),
    8: (_TRANSPOSE.ROTATE_90,),
}


class PixelError(ValueError):
    """An image that cannot be decoded; ``code`` is validation's issue code for it."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class Decoded(NamedTuple):
    pixels: np.ndarray  # H x W x C uint8, RGB (C = 3) or grey (C = 1), upright
    portable: bool  # any JPEG/PNG decoder gets these pixels from the bytes (no EXIF turn, no CMYK)


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open a JPEG or PNG (header only) and check its pixel count; PixelError if it is none."""
    if not data:
        raise PixelError("IMG_EMPTY", "the image has zero bytes")
    kind = sniff(bytes(data[:16]))
    if kind is None:
        raise PixelError("IMG_UNKNOWN_FORMAT", f"first bytes {bytes(data[:8]).hex()} are no image signature")
    if kind not in ACCEPTED_FORMATS:
        raise PixelError("IMG_UNSUPPORTED_FORMAT", f"{kind.upper()} image; JPEG or PNG is required")
    try:
        image = open_header(data, kind)
    except Image.UnidentifiedImageError:
        raise PixelError("IMG_CORRUPT", f"the {kind.upper()} header cannot be read") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        raise PixelError(failure_code(err), f"cannot decode the {kind.upper()}: {err or type(err).__name__}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise PixelError("IMG_TOO_LARGE", f"{width}x{height} = {width * height} pixels, over the cap of {max_pixels}")
    return image


PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC


def portable(image: Image.Image, data: bytes) -> bool:
    """Whether decoders other than this one (TensorFlow's, MXNet's built-in OpenCV) see the
    same pixels in ``data`` (opened as ``image``): not when it needs an EXIF turn, is a CMYK
    JPEG, or is a PNG without its end chunk (libpng reads it, TensorFlow's decoder refuses it)."""
    if image.mode == "CMYK" or orientation(image) != 1:
        return False
    return image.format != "PNG" or data.rfind(PNG_END) >= 0


def _load(image: Image.Image) -> None:
    kind = (image.format or "image").upper()
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error) as err:
        text = str(err) or type(err).__name__
        raise PixelError(failure_code(err), f"cannot decode the {kind}: {text}") from None


def _cmyk_to_rgb(image: Image.Image) -> np.ndarray:
    """OpenCV's CMYK -> RGB on the stored (Adobe-inverted) values; Pillow has inverted them."""
    cmyk = np.asarray(image, dtype=np.int32)
    k = 255 - cmyk[:, :, 3:]
    return (k - ((cmyk[:, :, :3] * k) >> 8)).astype(np.uint8)


def _rgb(image: Image.Image) -> np.ndarray:
    """H x W x 3 uint8 as OpenCV's IMREAD_COLOR (RGB order) from a loaded image."""
    mode = image.mode
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grey (Pillow 9 opens it as "I")
        grey = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    image.info.pop("transparency", None)  # OpenCV ignores tRNS (and Pillow would warn about it)
    if mode in ("LA", "La", "PA"):
        image = image.convert(mode[0])  # drop alpha, never composite
    return np.asarray(image.convert("RGB"))


def _grey(image: Image.Image, luma: bool) -> np.ndarray:
    """H x W uint8 as OpenCV's IMREAD_GRAYSCALE; ``luma``: the JPEG decoder gave the Y plane."""
    mode = image.mode
    if luma or mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "LA", "La"):
        return _rgb(image)[:, :, 0]
    rgb = _rgb(image).astype(np.int32)
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    if mode == "CMYK":
        return ((r * 4899 + g * 9617 + b * 1868 + 8192) >> 14).astype(np.uint8)
    return ((r * 9797 + g * 19234 + b * 3737) >> 15).astype(np.uint8)  # libpng's rgb_to_gray


def decode(data: bytes, channels: int = 3, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode a JPEG or PNG fully into upright H x W x ``channels`` uint8 pixels (RGB, or grey
    when ``channels`` is 1), as ``cv2.imread`` would; PixelError when validation would reject it."""
    return decode_opened(open_image(data, max_pixels), data, channels)


def decode_opened(image: Image.Image, data: bytes, channels: int = 3) -> Decoded:
    """:func:`decode` of ``data`` that :func:`open_image` has opened as ``image``."""
    turns = _ORIENT.get(orientation(image), ())
    is_portable = portable(image, data)
    luma = channels == 1 and image.format == "JPEG" and image.mode == "RGB"
    if luma:
        image.draft("L", image.size)  # libjpeg's own grey output: the Y plane, as OpenCV asks for
    _load(image)
    array = _rgb(image) if channels == 3 else _grey(image, luma)[:, :, None]
    if turns:
        turned = Image.fromarray(np.ascontiguousarray(array if channels == 3 else array[:, :, 0]))
        for method in turns:
            turned = turned.transpose(method)
        array = np.asarray(turned) if channels == 3 else np.asarray(turned)[:, :, None]
    return Decoded(np.ascontiguousarray(array), is_portable)


def portable_bytes(data: bytes, decoded: Decoded) -> bytes:
    """``data`` itself when any decoder reads it as ``decoded``, else a lossless PNG of the
    decoded pixels (for decoders that apply no EXIF orientation or convert CMYK otherwise)."""
    if decoded.portable:
        return data
    pixels = decoded.pixels if decoded.pixels.shape[2] == 3 else decoded.pixels[:, :, 0]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _taps(source: int, target: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR taps along one axis: first and second index, 11-bit weights."""
    scale = source / target
    f = ((np.arange(target, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(f).astype(np.int64)
    f = (f - first.astype(np.float32)).astype(np.float32)
    low, high = first < 0, first >= source - 1
    f[low | high] = 0
    first = np.clip(first, 0, source - 1)
    second = np.minimum(first + 1, source - 1)
    w1 = np.rint(f * np.float32(2048)).astype(np.int32)
    w0 = np.rint((np.float32(1) - f) * np.float32(2048)).astype(np.int32)
    return first, second, w0, w1


def resize_linear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` on H x W x C uint8,
    in OpenCV's fixed-point arithmetic (no antialiasing, as im2rec and ImageRecordIter resize)."""
    rows, cols = image.shape[:2]
    if (rows, cols) == (height, width):
        return image.copy()
    y0, y1, b0, b1 = _taps(rows, height)
    x0, x1, a0, a1 = _taps(cols, width)

    def across(band: np.ndarray) -> np.ndarray:
        left, right = band[:, x0].astype(np.int32), band[:, x1].astype(np.int32)
        return left * a0[None, :, None] + right * a1[None, :, None]

    top, bottom = across(image[y0]), across(image[y1])
    # OpenCV's vectorised vertical pass: ((b0 * (t >> 4)) >> 16) + ((b1 * (b >> 4)) >> 16), rounded by 2 bits
    mixed = ((b0[:, None, None] * (top >> 4)) >> 16) + ((b1[:, None, None] * (bottom >> 4)) >> 16)
    return np.clip((mixed + 2) >> 2, 0, 255).astype(np.uint8)
