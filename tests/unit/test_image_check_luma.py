"""``check_image`` decodes a colour JPEG's luma only (every coefficient is still entropy-decoded,
where broken JPEGs fail) and so finds exactly what a full RGB decode finds, on every kind of JPEG
and every kind of damage tried here."""

from __future__ import annotations

import io
import random
from typing import Iterator, List, Tuple

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from image_dataset.images import ImageResult, check_image


def jpeg(mode: str = "RGB", **options: object) -> bytes:
    rng = np.random.default_rng(len(mode) + len(options))
    small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((67, 45), Image.BICUBIC)
    noisy = np.clip(np.asarray(small, np.float64) + rng.normal(0, 20, (45, 67, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(noisy)
    out = io.BytesIO()
    (image if mode == "RGB" else image.convert(mode)).save(out, "JPEG", **options)
    return out.getvalue()


KINDS = {
    "baseline 4:2:0": jpeg(),
    "progressive": jpeg(progressive=True),
    "4:4:4": jpeg(subsampling=0),
    "4:2:0 q50": jpeg(subsampling=2, quality=50),
    "progressive 4:4:4": jpeg(progressive=True, subsampling=0),
    "optimized": jpeg(optimize=True),
    "grey": jpeg("L"),
    "CMYK": jpeg("CMYK"),
}


def damaged(data: bytes, count: int) -> Iterator[bytes]:
    """Truncations, overwritten bytes, inserted and deleted runs."""
    r = random.Random(len(data))
    for _ in range(count):
        d = bytearray(data)
        kind = r.random()
        if kind < 0.3:
            d = d[: r.randrange(2, len(d))]
        elif kind < 0.7:
            for _ in range(r.randint(1, 4)):
                d[r.randrange(2, len(d))] = r.randrange(256)
        elif kind < 0.85:
            i = r.randrange(2, len(d))
            d[i:i] = bytes(r.randrange(256) for _ in range(r.randint(1, 8)))
        else:
            i = r.randrange(2, len(d))
            del d[i : i + r.randint(1, 16)]
        yield bytes(d)


def verdicts(samples: List[bytes]) -> List[ImageResult]:
    return [check_image(0, sample, 10**8) for sample in samples]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_luma_decoding_finds_what_a_full_decode_finds(kind, monkeypatch) -> None:
    samples = [KINDS[kind], *damaged(KINDS[kind], 150)]
    fast = verdicts(samples)
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda self, mode, size: None)
    full = verdicts(samples)  # the plain RGB decode
    assert fast == full
    assert fast[0].code is None and {r.code for r in fast} > {None}  # good and bad ones were both tried


def test_a_colour_jpeg_is_decoded_as_luma_and_a_png_as_it_is(monkeypatch) -> None:
    calls: List[Tuple[str, Tuple[int, int]]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):  # type: ignore[no-untyped-def]
        calls.append((mode, size))
        return draft(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    assert check_image(0, KINDS["baseline 4:2:0"], 10**8) == ImageResult(0, 67, 45, None, "")
    assert calls == [("L", (67, 45))]
    out = io.BytesIO()
    Image.new("RGB", (5, 4)).save(out, "PNG")
    assert check_image(0, out.getvalue(), 10**8) == ImageResult(0, 5, 4, None, "")
    assert len(calls) == 1
