"""Image checks: format by magic bytes, full decode, pixel cap; run on every core.

"Decodable" means Pillow's ``load()`` decoded every pixel, not that a header parsed (for a colour
JPEG, every coefficient and the luma pixels: see ``check_image``). Decoding
runs in worker processes that read the bytes themselves (only byte ranges travel), or in
threads where processes are not available (AWS Lambda has no /dev/shm).
"""

from __future__ import annotations

import io
import os
import signal
import struct
import warnings
import zlib
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Deque, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .store import open_fd, open_file

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold
# our own cap (max_pixels, checked on the header) replaces Pillow's warning and its limit
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
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


ORIENTATION_TAG = 0x0112
# OpenCV ignores an EXIF block it cannot parse; Pillow would warn on every such image
warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning)


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) OpenCV applies; 1 when there is none or it cannot be read."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - OpenCV ignores an EXIF block it cannot parse
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def libpng_view(data: bytes) -> bytes:
    """The PNG ``data`` as libpng (the decoder of OpenCV, and so of training, and of TensorFlow)
    reads it: an ancillary chunk whose CRC does not match is dropped, as libpng drops it with a
    warning, where Pillow would refuse the file. ValueError when a critical chunk's (IHDR, PLTE,
    IDAT, IEND) does not match: libpng refuses the image, and Pillow checks no IDAT CRC. A chunk
    cut short or without a valid type is left to the decoder, which reports it."""
    view = memoryview(data)
    dropped: List[Tuple[int, int]] = []
    at = 8
    while at + 12 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, at)
        end = at + 12 + length
        if end > len(view) or not kind.isalpha():
            break
        if zlib.crc32(view[at + 4 : end - 4]) != struct.unpack_from(">I", view, end - 4)[0]:
            if not kind[0] & 0x20:  # an upper-case first letter: critical
                raise ValueError(f"the CRC of the {kind.decode()} chunk at byte {at} does not match its data")
            dropped.append((at, end))
        if kind == b"IEND":
            break
        at = end
    if not dropped:
        return data
    kept, start = [], 0
    for first, end in dropped:
        kept.append(view[start:first])
        start = end
    kept.append(view[start:])
    return b"".join(kept)


def open_header(data: bytes, kind: str) -> Image.Image:
    """``Image.open`` of a JPEG or PNG (its header only) without Pillow's decompression-bomb
    limit: the caller's pixel cap (``--max-pixels``, which may be above Pillow's) is checked on
    the size before anything is decoded, so it is the only one. A PNG is read as libpng reads
    it (:func:`libpng_view`: ValueError for a critical chunk's bad CRC)."""
    if kind == "png":
        data = libpng_view(data)
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(io.BytesIO(data), formats=(kind.upper(),))
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def failure_code(err: BaseException) -> str:
    """IMG_TRUNCATED when a decoder's error says the data ended early (Pillow: "image file is
    truncated", "Truncated File Read", EOFError), else IMG_CORRUPT."""
    return "IMG_TRUNCATED" if isinstance(err, EOFError) or "truncated" in str(err).lower() else "IMG_CORRUPT"


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
        image = open_header(data, kind)
        width, height = image.size
        if width * height > max_pixels:
            return ImageResult(
                token,
                width,
                height,
                "IMG_TOO_LARGE",
                f"{width}x{height} = {width * height} pixels, over the cap of {max_pixels}",
            )
        if kind == "jpeg":
            # libjpeg still entropy-decodes every coefficient of every component, which is where a
            # broken or truncated JPEG fails; for a colour JPEG it then skips what cannot fail:
            # the chroma's inverse DCT, upsampling and colour conversion (a third faster)
            image.draft("L", image.size)
        image.load()
        if orientation(image) >= 5:  # turned a quarter: OpenCV, and so training, sees it upright
            width, height = height, width
    except Image.UnidentifiedImageError:
        return ImageResult(token, 0, 0, "IMG_CORRUPT", f"the {kind.upper()} header cannot be read")
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error) as err:
        text = str(err) or type(err).__name__
        return ImageResult(token, 0, 0, failure_code(err), f"cannot decode the {kind.upper()}: {text}")
    return ImageResult(token, width, height, None, "")


def resized(width: int, height: int, shorter: int) -> Tuple[int, int]:
    """(width, height) once the shorter side is scaled to ``shorter``, with im2rec's and
    ImageRecordIter's integer arithmetic (pack --resize, training's and serving's resize)."""
    if height > width:
        return shorter, shorter * height // width
    return shorter * width // height, shorter


class Limits(NamedTuple):
    """What an image must satisfy besides decoding: pixel cap, minimum size (0: none), and the
    shorter side training resizes it to (0: none), after which it must stay within the cap."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    min_width: int = 0
    min_height: int = 0
    resize: int = 0


class Problem(NamedTuple):
    location: str
    code: str
    message: str


class DecodeSummary(NamedTuple):
    """What a decode job found: only the problems travel back, plus size statistics."""

    checked: int
    min_width: int
    min_height: int
    max_width: int
    max_height: int
    problems: List[Problem]


def _summarise(
    results: Iterable[Tuple[int, ImageResult]], locate: Callable[[int], str], limits: Limits
) -> DecodeSummary:
    """Fold per-image results into a summary; ``locate(i)`` names image ``i``, only for problems."""
    checked, min_w, min_h, max_w, max_h = 0, 1 << 62, 1 << 62, 0, 0
    problems: List[Problem] = []
    for where, result in results:
        if result.code:
            problems.append(Problem(locate(where), result.code, result.message))
            continue
        checked += 1
        w, h = result.width, result.height
        min_w, min_h, max_w, max_h = min(min_w, w), min(min_h, h), max(max_w, w), max(max_h, h)
        if limits.resize and w and h:
            rw, rh = resized(w, h, limits.resize)
            if rw * rh > limits.max_pixels:  # a thin image: 1 x 30,000,000 resized to 32 is 32 x 960,000,000
                message = (
                    f"{w}x{h} image resized to a shorter side of {limits.resize} is {rw}x{rh} = {rw * rh} pixels, "
                    f"over the cap of {limits.max_pixels}"
                )
                problems.append(Problem(locate(where), "IMG_TOO_LARGE", message))
        if w < limits.min_width or h < limits.min_height:
            message = f"{w}x{h} image is smaller than image_shape {limits.min_width}x{limits.min_height} (set resize to scale it up)"
            problems.append(Problem(locate(where), "IMG_TOO_SMALL", message))
    return DecodeSummary(checked, min_w, min_h, max_w, max_h, problems)


class RangeJob(NamedTuple):
    """Images at byte ranges of one RecordIO file; locations are built from ``name``."""

    path: str
    name: str
    records: np.ndarray  # record numbers
    record_offsets: np.ndarray
    offsets: np.ndarray  # image bytes
    lengths: np.ndarray
    limits: Limits


def check_ranges(job: RangeJob) -> DecodeSummary:
    """Worker: decode the images stored at byte ranges of one file (RecordIO payloads).
    The job's records are consecutive, so one read fetches them all."""
    records, record_offsets = job.records.tolist(), job.record_offsets.tolist()
    offsets, lengths = job.offsets.tolist(), job.lengths.tolist()

    def locate(i: int) -> str:
        return f"{job.name}#record {records[i]} @byte {record_offsets[i]}"

    if not offsets:
        return _summarise([], locate, job.limits)
    first = offsets[0]
    fd = open_fd(job.path)
    try:
        span = os.pread(fd, max(o + n for o, n in zip(offsets, lengths)) - first, first)
    finally:
        os.close(fd)
    max_pixels = job.limits.max_pixels
    results = (
        (i, check_image(0, span[o - first : o - first + n], max_pixels))
        for i, (o, n) in enumerate(zip(offsets, lengths))
    )
    return _summarise(results, locate, job.limits)


def check_files(job: Tuple[Sequence[Tuple[str, str]], Limits]) -> DecodeSummary:
    """Worker: decode image files given as ``(location, filesystem path)``."""
    files, limits = job

    def results() -> Iterator[Tuple[int, ImageResult]]:
        for i, (_, path) in enumerate(files):
            try:
                with open_file(path) as f:
                    data = f.read()
            except OSError as err:
                yield i, ImageResult(0, 0, 0, "FILE_UNREADABLE", err.strerror or "cannot be read")
                continue
            yield i, check_image(0, data, limits.max_pixels)

    return _summarise(results(), lambda i: files[i][0], limits)


def check_blobs(job: Tuple[Sequence[Tuple[str, bytes]], Limits]) -> DecodeSummary:
    """Worker: decode images passed as bytes ``(location, data)`` (remote stores, multi-part
    records)."""
    blobs, limits = job
    results = ((i, check_image(0, data, limits.max_pixels)) for i, (_, data) in enumerate(blobs))
    return _summarise(results, lambda i: blobs[i][0], limits)


def default_signals() -> None:
    """A pool worker's initializer: SIGTERM and SIGINT as the operating system handles them.
    A worker forked from a process that set its own SIGTERM handler (``imgclf train`` does)
    would otherwise run that handler when the pool terminates it, live on, and the pool's
    terminate would wait for it forever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _make_executor(workers: int) -> Executor:
    try:
        return ProcessPoolExecutor(max_workers=workers, initializer=default_signals)
    except (OSError, ImportError, NotImplementedError):
        return ThreadPoolExecutor(max_workers=workers)


class DecodePool:
    """Runs decode jobs on ``workers`` processes (threads as a fallback), at most
    ``2 * workers`` jobs in flight, and yields results in submission order."""

    def __init__(self, workers: Optional[int] = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._executor: Optional[Executor] = None
        self._pending: Deque[Future] = deque()

    def submit(self, fn: object, job: object) -> Iterator[DecodeSummary]:
        """Queue a job; yields results of earlier jobs when too many are in flight."""
        if self._executor is None:
            self._executor = _make_executor(self.workers) if self.workers > 1 else ThreadPoolExecutor(1)
        try:
            self._pending.append(self._executor.submit(fn, job))  # type: ignore[arg-type]
        except (OSError, RuntimeError):  # a broken process pool: continue on threads
            self._executor = ThreadPoolExecutor(self.workers)
            self._pending.append(self._executor.submit(fn, job))  # type: ignore[arg-type]
        while len(self._pending) > 2 * self.workers:
            yield self._pending.popleft().result()

    def drain(self) -> Iterator[DecodeSummary]:
        while self._pending:
            yield self._pending.popleft().result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
