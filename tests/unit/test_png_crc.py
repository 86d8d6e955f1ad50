"""PNG chunk CRCs as libpng (OpenCV's, so training's, and TensorFlow's decoder) treats them, in
validation and in the shared decoder (pack, serving): a critical chunk (IDAT, IHDR, IEND) that
fails its CRC is refused (Pillow checks no IDAT CRC, so such a file passed validation and then
failed in training); an ancillary one is dropped with a warning and the image decodes (Pillow
refused the file)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from image_dataset.images import check_image, libpng_view
from image_dataset.pixels import PixelError, decode
from tests.builders import png


def _chunks(data: bytes):
    at = 8
    while at < len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        yield at, length, kind
        at += 12 + length


def _damaged(kind: bytes) -> bytes:
    """png(): the CRC of its first ``kind`` chunk flipped."""
    data = bytearray(png(6, 4))
    at, length, _ = next(c for c in _chunks(bytes(data)) if c[2] == kind)
    data[at + 8 + length] ^= 0xFF
    return bytes(data)


def _chunk(kind: bytes, body: bytes, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(kind + body) ^ (0 if crc_ok else 1)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _with_text_chunk(crc_ok: bool, after_idat: bool = False) -> bytes:
    data = png(6, 4)
    at = data.rfind(b"IEND") - 4 if after_idat else 33  # before IEND, or after IHDR (8 + 25 bytes)
    return data[:at] + _chunk(b"tEXt", b"Comment\0hello", crc_ok) + data[at:]


@pytest.mark.parametrize("kind", [b"IHDR", b"IDAT", b"IEND"])
def test_a_critical_chunk_with_a_bad_crc_is_corrupt_everywhere(kind: bytes) -> None:
    data = _damaged(kind)
    at = next(c[0] for c in _chunks(data) if c[2] == kind)
    message = f"the CRC of the {kind.decode()} chunk at byte {at} does not match its data"
    with pytest.raises(ValueError, match=message):
        libpng_view(data)
    result = check_image(3, data, 10**6)
    assert (result.code, result.message) == ("IMG_CORRUPT", f"cannot decode the PNG: {message}")
    with pytest.raises(PixelError) as caught:
        decode(data)
    assert (caught.value.code, str(caught.value)) == ("IMG_CORRUPT", f"cannot decode the PNG: {message}")


def test_good_pngs_and_cut_short_ones_are_read_as_they_are() -> None:
    data = png(6, 4)
    assert libpng_view(data) is data
    assert libpng_view(_with_text_chunk(crc_ok=True)) == _with_text_chunk(crc_ok=True)
    assert libpng_view(data[:40]) == data[:40]  # the decoder reports the truncation
    assert check_image(0, data, 10**6).code is None


@pytest.mark.parametrize("after_idat", [False, True])
def test_an_ancillary_chunk_with_a_bad_crc_is_dropped_as_libpng_drops_it(after_idat: bool) -> None:
    """OpenCV's and TensorFlow's libpng warn ("tEXt: CRC error") and decode the image."""
    data = _with_text_chunk(crc_ok=False, after_idat=after_idat)
    assert libpng_view(data) == png(6, 4)
    assert check_image(0, data, 10**6)[1:] == (6, 4, None, "")
    decoded = decode(data)
    assert np.array_equal(decoded.pixels, decode(png(6, 4)).pixels) and decoded.portable
    two = png(6, 4)[:33] + _chunk(b"gAMA", b"\0\0\xb1\x8f", False) + _with_text_chunk(False)[33:]
    assert libpng_view(two) == png(6, 4)
