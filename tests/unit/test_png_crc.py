"""A PNG whose critical chunk (IDAT, IHDR, IEND) fails its CRC is refused as OpenCV's libpng
refuses it, by validation and by the shared decoder (pack, serving): Pillow checks no IDAT CRC,
so such a file passed validation and then failed in training."""

from __future__ import annotations

import struct
import zlib

import pytest

from image_dataset.images import check_image, png_crc_problem
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


def _with_text_chunk(crc_ok: bool) -> bytes:
    data = png(6, 4)
    body = b"tEXtComment\0hello"
    crc = zlib.crc32(body) ^ (0 if crc_ok else 1)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", crc)
    return data[:33] + chunk + data[33:]  # after IHDR (8 + 25 bytes)


@pytest.mark.parametrize("kind", [b"IHDR", b"IDAT", b"IEND"])
def test_a_critical_chunk_with_a_bad_crc_is_corrupt_everywhere(kind: bytes) -> None:
    data = _damaged(kind)
    at = next(c[0] for c in _chunks(data) if c[2] == kind)
    message = f"the CRC of the {kind.decode()} chunk at byte {at} does not match its data"
    assert png_crc_problem(data) == message
    if kind != b"IHDR":  # Pillow refuses a bad IHDR itself, with its own words
        result = check_image(3, data, 10**6)
        assert (result.code, result.message) == ("IMG_CORRUPT", f"cannot decode the PNG: {message}")
        with pytest.raises(PixelError) as caught:
            decode(data)
        assert (caught.value.code, str(caught.value)) == ("IMG_CORRUPT", f"cannot decode the PNG: {message}")


def test_good_pngs_and_cut_short_ones_have_no_crc_problem() -> None:
    assert png_crc_problem(png(6, 4)) is None
    assert png_crc_problem(_with_text_chunk(crc_ok=True)) is None
    assert png_crc_problem(png(6, 4)[:40]) is None  # the decoder reports the truncation
    assert check_image(0, png(6, 4), 10**6).code is None


def test_an_ancillary_chunk_s_crc_is_not_ours_to_check() -> None:
    """libpng only warns about it; what Pillow does with it is unchanged."""
    assert png_crc_problem(_with_text_chunk(crc_ok=False)) is None
