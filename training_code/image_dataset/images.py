"""Image checks: format by magic bytes, full decode, pixel cap; run on every core.

"Decodable" means Pillow's ``load()`` decoded every pixel, not that a header parsed. Decoding
runs in worker processes that read the bytes themselves (only byte ranges travel), or in
threads where processes are not available (AWS Lambda has no /dev/shm).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Deque, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from PIL import Image

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold
ACCEPTED_FORMATS = ("jpeg", "png")

_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def sniff(head: bytes) -> Optional[str]:
    """The image format that the first bytes announce, or None."""
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


class ImageResult(NamedTuple):
    token: int  # the caller's id for the image (a row, a sample number)
    width: int
    height: int
    code: Optional[str]  # an issue code, None when the image is good
    message: str


def check_image(token: int, data: bytes, max_pixels: int) -> ImageResult:
    """Fully decode one encoded image and report what is wrong with it, if anything."""
    if not data:
        return ImageResult(token, 0, 0, "IMG_EMPTY", "the image has zero bytes")
    kind = sniff(data[:16])
    if kind is None:
        return ImageResult(token, 0, 0, "IMG_UNKNOWN_FORMAT", f"first bytes {data[:8].hex()} are no image signature")
    if kind not in ACCEPTED_FORMATS:
        return ImageResult(token, 0, 0, "IMG_UNSUPPORTED_FORMAT", f"{kind.upper()} image; JPEG or PNG is required")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                return ImageResult(
                    token,
                    width,
                    height,
                    "IMG_TOO_LARGE",
                    f"{width}x{height} = {width * height} pixels, over the cap of {max_pixels}",
                )
            image.load()
    except Image.DecompressionBombError as err:
        return ImageResult(token, 0, 0, "IMG_TOO_LARGE", str(err))
    except Image.UnidentifiedImageError:
        return ImageResult(token, 0, 0, "IMG_CORRUPT", f"the {kind.upper()} header cannot be read")
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error) as err:
        text = str(err) or type(err).__name__
        code = "IMG_TRUNCATED" if "truncated" in text or isinstance(err, EOFError) else "IMG_CORRUPT"
        return ImageResult(token, 0, 0, code, f"cannot decode the {kind.upper()}: {text}")
    return ImageResult(token, width, height, None, "")


def check_ranges(job: Tuple[str, Sequence[Tuple[int, int, int]], int]) -> List[ImageResult]:
    """Worker: decode images stored at ``(token, offset, length)`` ranges of one file."""
    path, ranges, max_pixels = job
    results = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for token, offset, length in ranges:
            results.append(check_image(token, os.pread(fd, length, offset), max_pixels))
    finally:
        os.close(fd)
    return results


def check_files(job: Tuple[Sequence[Tuple[int, str]], int]) -> List[ImageResult]:
    """Worker: decode image files given as ``(token, path)``."""
    files, max_pixels = job
    results = []
    for token, path in files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as err:
            results.append(ImageResult(token, 0, 0, "FILE_UNREADABLE", err.strerror or str(err)))
            continue
        results.append(check_image(token, data, max_pixels))
    return results


def check_blobs(job: Tuple[Sequence[Tuple[int, bytes]], int]) -> List[ImageResult]:
    """Worker: decode images passed as bytes (remote stores, multi-part records)."""
    blobs, max_pixels = job
    return [check_image(token, data, max_pixels) for token, data in blobs]


def _make_executor(workers: int) -> Executor:
    try:
        return ProcessPoolExecutor(max_workers=workers)
    except (OSError, ImportError, NotImplementedError):
        return ThreadPoolExecutor(max_workers=workers)


class DecodePool:
    """Runs decode jobs on ``workers`` processes (threads as a fallback), at most
    ``2 * workers`` jobs in flight, and yields results in submission order."""

    def __init__(self, workers: Optional[int] = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._executor: Optional[Executor] = None
        self._pending: Deque[Future] = deque()

    def submit(self, fn: object, job: object) -> Iterator[ImageResult]:
        """Queue a job; yields results of earlier jobs when too many are in flight."""
        if self._executor is None:
            self._executor = _make_executor(self.workers) if self.workers > 1 else ThreadPoolExecutor(1)
        try:
            self._pending.append(self._executor.submit(fn, job))  # type: ignore[arg-type]
        except (OSError, RuntimeError):  # a broken process pool: continue on threads
            self._executor = ThreadPoolExecutor(self.workers)
            self._pending.append(self._executor.submit(fn, job))  # type: ignore[arg-type]
        while len(self._pending) > 2 * self.workers:
            yield from self._pending.popleft().result()

    def drain(self) -> Iterator[ImageResult]:
        while self._pending:
            yield from self._pending.popleft().result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_batches(items: Iterable[object], size: int) -> Iterator[List[object]]:
    batch: List[object] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
