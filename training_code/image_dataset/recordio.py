"""MXNet RecordIO, byte-compatible with ``mxnet.recordio`` and dmlc-core.

On disk a record is ``magic (u32) | lrecord (u32) | data | zero padding to 4 bytes`` where
``lrecord = cflag << 29 | length``. dmlc's writer never lets the magic number appear at a
4-byte-aligned offset of a payload: it cuts the payload there into parts (cflag 1 = first,
2 = middle, 3 = last; 0 = whole record) and drops those 4 bytes, which the reader puts back.
An image record's data is ``IRHeader (flag u32, label f32, id u64, id2 u64)``, then ``flag``
float32 labels when ``flag > 0``, then the encoded image.

The reading and writing need only the standard library (numpy is imported by the .idx fast path
alone): the TensorFlow Serving container's request hooks, which run without numpy, read RecordIO
request bodies with this module.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from typing import IO, TYPE_CHECKING, BinaryIO, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from .issues import DatasetError, IssueSink
from .store import open_file

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_MASK = (1 << 29) - 1
MAX_RECORD_LENGTH = LENGTH_MASK
FRAME = struct.Struct("<II")
IR_HEADER = struct.Struct("<IfQQ")
IR_HEADER_SIZE = IR_HEADER.size  # 24
INT64_MAX = (1 << 63) - 1  # a .idx offset beyond it cannot be a record's
UINT64_MAX = (1 << 64) - 1  # a record's id is 64 bits unsigned, and so is MXNet's .idx key (size_t)

Label = Union[float, Tuple[float, ...]]

if TYPE_CHECKING:
    import numpy as np


class IRHeader(NamedTuple):
    """The image-record header. ``label`` is a float, or a tuple when ``flag > 0``."""

    flag: int
    label: Label
    id: int
    id2: int


def padded(length: int) -> int:
    return (length + 3) & ~3


def location(name: str, record: int, offset: int) -> str:
    return f"{name}#record {record} @byte {offset}"


def pack(label: Union[float, Sequence[float]], image: bytes, id: int = 0, id2: int = 0) -> bytes:
    """Build an image record as ``mxnet.recordio.pack`` does (a sequence label sets ``flag``)."""
    if isinstance(label, (int, float)):
        return IR_HEADER.pack(0, float(label), id, id2) + image
    values = [float(v) for v in label]
    labels = struct.pack(f"<{len(values)}f", *values)
    return IR_HEADER.pack(len(values), 0.0, id, id2) + labels + image


def unpack(record: bytes, where: str = "record") -> Tuple[IRHeader, bytes]:
    """Split an image record into its header and image bytes, as ``mxnet.recordio.unpack``."""
    if len(record) < IR_HEADER_SIZE:
        raise DatasetError(
            "REC_BAD_HEADER",
            f"record has {len(record)} bytes, fewer than the {IR_HEADER_SIZE}-byte image-record header",
            where,
        )
    flag, label, rec_id, id2 = IR_HEADER.unpack_from(record, 0)
    body = record[IR_HEADER_SIZE:]
    if flag == 0:
        return IRHeader(0, label, rec_id, id2), body
    if flag * 4 > len(body):
        raise DatasetError(
            "REC_BAD_HEADER",
            f"header announces {flag} labels ({flag * 4} bytes) but only {len(body)} bytes follow it",
            where,
        )
    labels = struct.unpack_from(f"<{flag}f", body, 0)
    return IRHeader(flag, tuple(labels), rec_id, id2), body[flag * 4 :]


def frame(data: bytes) -> bytes:
    """Encode one record for the file, splitting at aligned magic numbers as dmlc does."""
    if len(data) > MAX_RECORD_LENGTH:
        raise ValueError("a RecordIO record holds at most 2**29 - 1 bytes")
    view = memoryview(data)
    out = bytearray()
    start = 0
    search = 0
    while True:
        hit = data.find(MAGIC_BYTES, search, len(data) & ~3)
        while hit != -1 and hit % 4:
            hit = data.find(MAGIC_BYTES, hit + 1, len(data) & ~3)
        if hit == -1:
            break
        out += FRAME.pack(MAGIC, (1 if start == 0 else 2) << 29 | (hit - start))
        out += view[start:hit]
        start = hit + 4
        search = start
    out += FRAME.pack(MAGIC, (3 if start else 0) << 29 | (len(data) - start))
    out += view[start:]
    out += b"\0" * (padded(len(data)) - len(data))
    return bytes(out)


class RecordIOWriter:
    """Writes a .rec and, when ``idx_path`` is given, a .idx as ``MXIndexedRecordIO`` does."""

    def __init__(self, rec_path: str, idx_path: Optional[str] = None) -> None:
        self._rec: BinaryIO = open(rec_path, "wb")
        self._idx: Optional[IO[str]] = open(idx_path, "w") if idx_path else None

    def write(self, record: bytes, key: Optional[int] = None) -> int:
        """Append a record; returns its byte offset. ``key`` goes to the .idx."""
        offset = self._rec.tell()
        self._rec.write(frame(record))
        if self._idx is not None:
            self._idx.write(f"{offset if key is None else key}\t{offset}\n")
        return offset

    def close(self) -> None:
        self._rec.close()
        if self._idx is not None:
            self._idx.close()

    def __enter__(self) -> RecordIOWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordIOReader:
    """Sequential reader of logical records, with exact byte offsets in its errors.

    It streams: memory is one record at a time, whatever the file size. ``padded_end=False``
    also accepts a stream whose last record lacks its padding (a batch transform request: with
    ``BatchStrategy`` ``SingleRecord``, SageMaker removes a RecordIO record's padding); its data
    must still be whole.
    """

    def __init__(self, stream: BinaryIO, name: str = "<stream>", start: int = 0, padded_end: bool = True) -> None:
        self._stream = stream
        self.name = name
        self.offset = start
        self.record = 0
        self.padded_end = padded_end

    @classmethod
    def open(cls, path: str, name: Optional[str] = None) -> RecordIOReader:
        return cls(open_file(path), name or os.path.basename(path))

    def _fail(self, code: str, message: str, offset: int) -> DatasetError:
        return DatasetError(code, message, location(self.name, self.record, offset))

    def read(self) -> Optional[Tuple[int, bytes]]:
        """The next record as ``(byte offset, data)``, or None at the end of the file."""
        start = self.offset
        parts: List[bytes] = []
        expect_continuation = False
        while True:
            head = self._stream.read(8)
            if not head:
                if expect_continuation:
                    raise self._fail("REC_TRUNCATED", "file ends inside a multi-part record", start)
                return None
            if len(head) < 8:
                raise self._fail(
                    "REC_TRUNCATED",
                    f"file ends {len(head)} bytes into a record header",
                    self.offset,
                )
            magic, lrec = FRAME.unpack(head)
            if magic != MAGIC:
                raise self._fail(
                    "REC_BAD_MAGIC",
                    f"expected magic 0x{MAGIC:08x}, found 0x{magic:08x}",
                    self.offset,
                )
            cflag, length = lrec >> 29, lrec & LENGTH_MASK
            if cflag > 3:
                raise self._fail("REC_BAD_FLAG", f"continuation flag {cflag} is not 0-3", self.offset)
            if expect_continuation != (cflag in (2, 3)):
                raise self._fail(
                    "REC_BAD_CONTINUATION",
                    "part with flag {} {} a multi-part record".format(
                        cflag, "inside" if expect_continuation else "outside"
                    ),
                    self.offset,
                )
            body = self._stream.read(padded(length))
            if len(body) < padded(length) and (self.padded_end or len(body) < length):
                raise self._fail(
                    "REC_TRUNCATED",
                    f"record of {length} bytes, file ends after {len(body)}",
                    self.offset,
                )
            self.offset += 8 + len(body)
            parts.append(body[:length])
            if cflag in (0, 3):
                break
            parts.append(MAGIC_BYTES)
            expect_continuation = True
        self.record += 1
        return start, b"".join(parts)

    def __iter__(self) -> Iterator[Tuple[int, bytes]]:
        while True:
            item = self.read()
            if item is None:
                return
            yield item

    def close(self) -> None:
        self._stream.close()


class IndexEntry(NamedTuple):
    key: int
    offset: int
    line: int


def parse_idx_fast(data: bytes) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Keys (uint64) and offsets (int64) of a well-formed .idx, parsed in bulk; None if any line
    is unusual (then :func:`parse_idx` finds and reports the problem with its line number)."""
    import numpy as np  # noqa: PLC0415 - the module's reading and writing need no numpy

    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    # only digits, and the separators alternate: key TAB offset NEWLINE, no empty field
    if data.translate(None, b"0123456789\t\n") or b"\t\n" in data or b"\n\t" in data or data[:1] in (b"\t", b"\n"):
        return None
    separators = (b"\t\n" * lines)[: None if data.endswith(b"\n") else -1]
    if data.translate(None, b"0123456789") != separators:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns when it stops before the end: malformed
        try:
            values = np.fromstring(data.replace(b"\t", b"\n"), dtype=np.uint64, sep="\n")  # type: ignore[call-overload]
        except (ValueError, DeprecationWarning):
            return None
    if len(values) != 2 * lines or (values == UINT64_MAX).any():  # numpy clamps a larger number to it
        return None
    keys, offsets = values[0::2], values[1::2]
    if (offsets > INT64_MAX).any():
        return None
    offsets = offsets.astype(np.int64)
    ordered = np.sort(keys)
    if len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any():
        return None
    return keys, offsets


def parse_idx(data: bytes, name: str, sink: IssueSink) -> List[IndexEntry]:
    """Parse a .idx (``key<TAB>offset`` per line, as ``MXIndexedRecordIO`` writes it)."""
    entries: List[IndexEntry] = []
    seen = set()
    blank: List[int] = []
    for number, raw in enumerate(io.BytesIO(data), start=1):
        line = raw.strip()
        if not line:
            blank.append(number)
            continue
        fields = line.split(b"\t")
        try:
            if len(fields) != 2:
                raise ValueError
            key, offset = int(fields[0]), int(fields[1])
            if offset < 0:
                raise ValueError
        except ValueError:
            sink.report(
                "IDX_SYNTAX",
                "expected 'key<TAB>offset', got {!r}".format(line[:80].decode("utf-8", "replace")),
                f"{name}:line {number}",
            )
            continue
        if not -INT64_MAX - 1 <= key <= UINT64_MAX or offset > INT64_MAX:
            what = f"an offset beyond {INT64_MAX} (63 bits)" if offset > INT64_MAX else "a key beyond 64 bits"
            sink.report(
                "IDX_SYNTAX", "{}: {!r}".format(what, line[:80].decode("utf-8", "replace")), f"{name}:line {number}"
            )
            continue
        if key in seen:
            sink.report("IDX_DUPLICATE_KEY", f"key {key} appears again", f"{name}:line {number}")
            continue
        seen.add(key)
        entries.append(IndexEntry(key, offset, number))
    if blank:
        sink.report("IDX_BLANK_LINE", f"{len(blank)} blank line(s), from line {blank[0]}", f"{name}:line {blank[0]}")
    return entries


class IndexedRecordIO:
    """Random access to a .rec through its .idx, like ``MXIndexedRecordIO`` in read mode."""

    def __init__(self, rec_path: str, idx_path: str) -> None:
        with open_file(idx_path) as f:
            entries = parse_idx(f.read(), os.path.basename(idx_path), IssueSink())
        self.name = os.path.basename(rec_path)
        self.keys = [e.key for e in entries]
        self._offsets = {e.key: e.offset for e in entries}
        self._file = open_file(rec_path)

    def read_idx(self, key: int) -> bytes:
        offset = self._offsets[key]
        self._file.seek(offset)
        item = RecordIOReader(self._file, self.name, offset).read()
        if item is None:
            raise DatasetError("IDX_BAD_OFFSET", f"key {key} points past the end", location(self.name, 0, offset))
        return item[1]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> IndexedRecordIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
