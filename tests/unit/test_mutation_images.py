"""images.check_blobs, the worker for images passed as bytes (remote stores, multi-part records):
it decodes every blob and applies the pixel cap and the minimum size of its limits."""

from __future__ import annotations

import numpy as np
import pytest

from image_dataset.images import DecodeSummary, Limits, Problem, RangeJob, check_blobs, check_ranges
from tests.builders import jpeg, png


def test_check_blobs_decodes_each_blob_and_applies_the_limits() -> None:
    blobs = [("s3://b/ok.png", png(6, 4)), ("s3://b/small.png", png(4, 3)), ("s3://b/big.png", png(10, 10))]
    summary = check_blobs((blobs, Limits(max_pixels=50, min_width=5, min_height=1)))
    assert (summary.checked, summary.min_width, summary.min_height, summary.max_width, summary.max_height) == (
        2,
        4,
        3,
        6,
        4,
    )
    assert summary.problems == [
        Problem(
            "s3://b/small.png", "IMG_TOO_SMALL", "4x3 image is smaller than image_shape 5x1 (set resize to scale it up)"
        ),
        Problem("s3://b/big.png", "IMG_TOO_LARGE", "10x10 = 100 pixels, over the cap of 50"),
    ]


def test_check_blobs_without_limits_beyond_the_default_accepts_a_valid_image() -> None:
    summary = check_blobs(([("r#record 0", png(3, 2))], Limits()))
    assert summary.checked == 1 and summary.problems == []


def _range_job(path: str, offsets, lengths) -> RangeJob:
    n = len(offsets)
    return RangeJob(
        path,
        "train.rec",
        np.arange(n, dtype=np.int64) + 3,
        np.array(offsets, np.int64) - 32,
        np.array(offsets, np.int64),
        np.array(lengths, np.int64),
        Limits(),
    )


def test_check_ranges_of_no_image_checks_nothing(tmp_path) -> None:
    summary = check_ranges(_range_job(str(tmp_path / "none.rec"), [], []))
    assert summary == DecodeSummary(0, 1 << 62, 1 << 62, 0, 0, [])


def test_check_ranges_decodes_exactly_each_range(tmp_path) -> None:
    first, second = png(5, 3), png(2, 7)
    path = str(tmp_path / "x.rec")
    with open(path, "wb") as f:
        f.write(b"\0" * 100 + first + b"\0" * 8 + second)
    short = len(first) - 30  # a range that ends inside its image: the rest of the file must not be read
    summary = check_ranges(_range_job(path, [100, 108 + len(first)], [short, len(second)]))
    assert (summary.checked, summary.min_width, summary.max_height) == (1, 2, 7)
    assert [(p.location, p.code) for p in summary.problems] == [("train.rec#record 3 @byte 68", "IMG_TRUNCATED")]


def test_check_image_reports_each_failure_and_echoes_its_token() -> None:
    from image_dataset.images import ImageResult, check_image
    from tests.unit.pixel_corpus import corpus

    good = corpus()["rgb.jpg"]
    cases = [
        (b"", "IMG_EMPTY", "the image has zero bytes"),
        (b"hello world, no image", "IMG_UNKNOWN_FORMAT", "first bytes 68656c6c6f20776f are no image signature"),
        (b"GIF89a" + b"\0" * 20, "IMG_UNSUPPORTED_FORMAT", "GIF image; JPEG or PNG is required"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "IMG_CORRUPT", "the PNG header cannot be read"),
        (png(12, 12), "IMG_TOO_LARGE", "12x12 = 144 pixels, over the cap of 117"),
        (good[:-60], "IMG_TRUNCATED", None),
    ]
    for data, code, message in cases:
        result = check_image(7, data, 117)
        size = (12, 12) if code == "IMG_TOO_LARGE" else (0, 0)  # the cap's refusal still names the size
        assert result[:4] == (7, *size, code), code
        if message is not None:
            assert result.message == message
    assert check_image(7, good[:-60], 117).message.startswith("cannot decode the JPEG: image file is truncated")
    assert check_image(3, good, 117) == ImageResult(3, 13, 9, None, "")


def test_a_jpeg_cut_in_its_header_is_truncated_in_validation_and_serving_alike() -> None:
    """Pillow says "Truncated File Read" (capital T) for a JPEG that ends before its scan."""
    from image_dataset.images import check_image
    from image_dataset.pixels import PixelError, decode

    cut = jpeg(64, 48)[:300]
    message = "cannot decode the JPEG: Truncated File Read"
    assert check_image(0, cut, 10**6)[3:] == ("IMG_TRUNCATED", message)
    with pytest.raises(PixelError) as caught:
        decode(cut)
    assert (caught.value.code, str(caught.value)) == ("IMG_TRUNCATED", message)


def test_check_files_reports_a_file_that_cannot_be_read(tmp_path) -> None:
    from image_dataset.images import check_files

    path = str(tmp_path / "a.png")
    with open(path, "wb") as f:
        f.write(png(3, 2))
    summary = check_files(([("train/a.png", path), ("train/dir.png", str(tmp_path))], Limits()))
    assert summary.checked == 1 and (summary.max_width, summary.max_height) == (3, 2)
    assert summary.problems == [Problem("train/dir.png", "FILE_UNREADABLE", "Is a directory")]


def test_sniff_knows_webp_only_by_both_of_its_marks() -> None:
    from image_dataset.images import sniff

    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff(b"RIFF\x10\x00\x00\x00WAVEfmt ") is None
    assert sniff(b"RIFX\x10\x00\x00\x00WEBPVP8 ") is None
    assert sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR") == "png" and sniff(b"\xff\xd8\xff\xe0") == "jpeg"


def test_the_pixel_cap_is_ours_even_above_pillows_own_limit() -> None:
    """--max-pixels above Pillow's hard limit (178,956,970) had no effect: Pillow refused the
    header first. The header is now read without Pillow's limit; the cap is checked on it."""
    from PIL import Image

    from image_dataset.images import check_image, open_header
    from tests.builders import png_bomb

    saved = Image.MAX_IMAGE_PIXELS
    assert open_header(png_bomb(), "png").size == (30000, 30000)  # 900,000,000 pixels: no error
    assert saved == Image.MAX_IMAGE_PIXELS
    result = check_image(5, png_bomb(), 899_999_999)
    assert tuple(result) == (
        5,
        30000,
        30000,
        "IMG_TOO_LARGE",
        "30000x30000 = 900000000 pixels, over the cap of 899999999",
    )


def test_an_image_too_large_once_resized_is_refused_when_validating_with_resize(tmp_path) -> None:
    """Training (and serving) scale the shorter side to --resize: a thin image explodes."""
    from image_dataset.images import Limits, check_files, resized

    assert resized(2_000_000, 1, 32) == (64_000_000, 32) and resized(3, 5, 2) == (2, 3)
    path = str(tmp_path / "thin.png")
    with open(path, "wb") as f:
        f.write(png(4000, 1))
    summary = check_files(([("train/a/thin.png", path)], Limits(max_pixels=127_999, resize=32)))
    assert [tuple(p) for p in summary.problems] == [
        (
            "train/a/thin.png",
            "IMG_TOO_LARGE",
            "4000x1 image resized to a shorter side of 32 is 128000x32 = 4096000 pixels, over the cap of 127999",
        )
    ]
    assert check_files(([("train/a/thin.png", path)], Limits(max_pixels=4_096_000, resize=32))).problems == []
