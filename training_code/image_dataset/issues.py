"""Problems found in a dataset: the error-code registry, the error type and the sinks.

Every problem has a stable code from ``CODES`` (documented in docs/dataset-formats.md and
checked by a test), a message, and a location string that starts with the file's path
relative to the dataset root, then ``:line N`` or ``#record N @byte B``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple

ERROR = "error"
WARNING = "warning"


class CodeInfo(NamedTuple):
    severity: str
    summary: str


CODES: Dict[str, CodeInfo] = {
    # dataset layout
    "DATASET_NOT_FOUND": CodeInfo(ERROR, "The path does not exist or cannot be read."),
    "CHANNEL_MISSING": CodeInfo(ERROR, "The dataset has no train channel."),
    "CHANNEL_EMPTY": CodeInfo(ERROR, "A channel holds no samples."),
    "VALIDATION_CHANNEL_MISSING": CodeInfo(
        WARNING, "No validation channel: the MXNet built-in algorithm requires one."
    ),
    "FORMAT_UNKNOWN": CodeInfo(ERROR, "No supported dataset format was found in a channel."),
    "FORMAT_AMBIGUOUS": CodeInfo(ERROR, "A channel holds files of several formats."),
    "FORMAT_MISMATCH": CodeInfo(ERROR, "The channels use formats that cannot be combined."),
    "FILE_UNREADABLE": CodeInfo(
        ERROR, "A file could not be read, or a folder could not be listed (permissions, I/O errors, a link loop)."
    ),
    "FILE_EXTRA": CodeInfo(WARNING, "A file in the channel is not part of the dataset."),
    "FILE_MISSING": CodeInfo(
        ERROR,
        "A file referenced or listed by the dataset does not exist: never there, a broken symbolic link, "
        "or deleted while the dataset was read.",
    ),
    # RecordIO framing
    "REC_BAD_MAGIC": CodeInfo(ERROR, "No RecordIO magic number where a record must start."),
    "REC_BAD_FLAG": CodeInfo(ERROR, "A RecordIO length word has an invalid continuation flag."),
    "REC_BAD_CONTINUATION": CodeInfo(ERROR, "The parts of a multi-part RecordIO record are out of order."),
    "REC_BAD_PADDING": CodeInfo(ERROR, "A record is not padded to a multiple of 4 bytes."),
    "REC_PADDING_NONZERO": CodeInfo(WARNING, "A record's padding bytes are not zero."),
    "REC_TRUNCATED": CodeInfo(ERROR, "The file ends in the middle of a record."),
    "REC_UNESCAPED_MAGIC": CodeInfo(
        WARNING,
        "A payload holds the magic number at an aligned offset; MXNet's writer would have "
        "split it, and splitting readers may cut the record there.",
    ),
    "REC_FALSE_START": CodeInfo(
        ERROR,
        "A payload holds the magic number followed by a length word with flag 0 or 1: MXNet's chunked "
        "readers (ImageRecordIter) take it for a record start and stop with 'Invalid RecordIO Format'.",
    ),
    "REC_BAD_HEADER": CodeInfo(ERROR, "A record is too short for its image-record header."),
    "REC_EMPTY_FILE": CodeInfo(ERROR, "A .rec file holds no record."),
    "LABEL_NAMES_INVALID": CodeInfo(
        ERROR,
        "A RecordIO channel's labels.json is not a list of unique non-empty names covering every class id, "
        "or the channels' lists differ.",
    ),
    "IDX_SYNTAX": CodeInfo(
        ERROR,
        "A .idx line is not 'key<TAB>offset', or its key is beyond 64 bits (unsigned, as record ids) or its offset beyond 63.",
    ),
    "IDX_DUPLICATE_KEY": CodeInfo(ERROR, "A key appears twice in a .idx file."),
    "IDX_BAD_OFFSET": CodeInfo(ERROR, "A .idx offset is not the start of a record."),
    "IDX_MISSING_RECORD": CodeInfo(WARNING, "Records without a .idx entry: readers that use the index skip them."),
    "IDX_EMPTY": CodeInfo(
        ERROR, "A .idx indexes none of its .rec's records: MXNet's ImageRecordIter (path_imgidx) crashes on it."
    ),
    "IDX_BLANK_LINE": CodeInfo(
        WARNING, "A .idx has blank lines: mxnet.recordio.MXIndexedRecordIO cannot read it (ImageRecordIter skips them)."
    ),
    "IDX_KEY_MISMATCH": CodeInfo(WARNING, "A .idx key differs from the record's header id."),
    # list formats
    "LST_SYNTAX": CodeInfo(ERROR, "A .lst line is not 'index<TAB>label[<TAB>label...]<TAB>path'."),
    "LST_BAD_INDEX": CodeInfo(
        ERROR, "A .lst index is not an integer from 0 to 2**63 - 1 (the RecordIO id and .idx key)."
    ),
    "LST_COLUMNS": CodeInfo(ERROR, "A .lst line has a different number of label columns."),
    "JSON_SYNTAX": CodeInfo(ERROR, "A JSON document or JSON line cannot be parsed."),
    "MANIFEST_NO_SOURCE": CodeInfo(ERROR, "A manifest line has no source-ref or image-ref."),
    "MANIFEST_NO_LABEL": CodeInfo(ERROR, "A manifest line has no label attribute."),
    "ANNOTATIONS_SCHEMA": CodeInfo(ERROR, "annotations.json does not have the expected shape."),
    "TEXT_ENCODING": CodeInfo(ERROR, "A text line is not valid UTF-8."),
    # samples and labels
    "LABEL_INVALID": CodeInfo(
        ERROR, "A label is not a finite, non-negative integer class id, or a class-id list names a class twice."
    ),
    "LABEL_UNKNOWN": CodeInfo(ERROR, "A label name is not among the dataset's label names."),
    "LABEL_OUT_OF_RANGE": CodeInfo(ERROR, "A class id is not below num_classes."),
    "LABEL_SHAPE": CodeInfo(ERROR, "A label vector has the wrong length, or single and multi-label samples are mixed."),
    "LABEL_NOT_MULTI_HOT": CodeInfo(ERROR, "A multi-hot label holds values other than 0 and 1."),
    "TOO_MANY_CLASSES": CodeInfo(ERROR, "A class id is 100,000 or more, beyond what imgclf supports."),
    "DUPLICATE_ID": CodeInfo(ERROR, "Two samples share an id or index."),
    "DUPLICATE_PATH": CodeInfo(ERROR, "Two samples point at the same image."),
    "IDS_NOT_SET": CodeInfo(WARNING, "Every record carries the same id, so ids identify nothing."),
    "PATH_UNSAFE": CodeInfo(
        ERROR,
        "A path is absolute, empty, leaves the dataset ('..'), ends with a separator, holds a NUL byte, or has a tab, "
        "line break or white space at a name's ends (a .lst cannot carry it).",
    ),
    "PATH_OTHER_BUCKET": CodeInfo(ERROR, "An s3:// reference points outside the allowed buckets."),
    "PATH_NOT_CHECKED": CodeInfo(WARNING, "s3:// references were not opened by a local check."),
    "CLASS_NOT_IN_TRAIN": CodeInfo(ERROR, "A class appears in validation but not in train."),
    "CLASS_WITHOUT_SAMPLES": CodeInfo(WARNING, "A class has no sample in a channel."),
    "NUM_CLASSES_MISMATCH": CodeInfo(ERROR, "The labels disagree with num_classes."),
    "TOO_FEW_SAMPLES": CodeInfo(ERROR, "A channel has fewer samples than mini_batch_size."),
    # images
    "IMG_EMPTY": CodeInfo(ERROR, "An image has zero bytes."),
    "IMG_UNKNOWN_FORMAT": CodeInfo(ERROR, "An image's first bytes match no image format."),
    "IMG_UNSUPPORTED_FORMAT": CodeInfo(ERROR, "An image is not JPEG or PNG."),
    "IMG_TRUNCATED": CodeInfo(ERROR, "An image's data ends early."),
    "IMG_CORRUPT": CodeInfo(ERROR, "An image cannot be decoded."),
    "IMG_TOO_LARGE": CodeInfo(ERROR, "An image has more pixels than the cap (decompression bomb)."),
    "IMG_TOO_SMALL": CodeInfo(ERROR, "An image is smaller than image_shape and resize is not set."),
}


class Issue(NamedTuple):
    code: str
    message: str
    location: str

    @property
    def severity(self) -> str:
        return CODES[self.code].severity

    def as_dict(self) -> Dict[str, str]:
        return {"code": self.code, "message": self.message, "location": self.location}

    def __str__(self) -> str:
        return f"{self.location}: {self.message} [{self.code}]"


class DatasetError(Exception):
    """The one exception type that reading a dataset raises for bad input."""

    def __init__(self, code: str, message: str, location: str) -> None:
        if code not in CODES:
            raise KeyError("unregistered issue code " + code)
        self.issue = Issue(code, message, location)
        super().__init__(str(self.issue))

    @property
    def code(self) -> str:
        return self.issue.code


class IssueSink:
    """Receives problems while a dataset is read. The base sink raises on the first error."""

    def report(self, code: str, message: str, location: str) -> None:
        if CODES[code].severity == ERROR:
            raise DatasetError(code, message, location)

    @property
    def error_count(self) -> int:
        return 0


class CollectingSink(IssueSink):
    """Keeps every problem up to ``limit_per_code`` of each code and counts the rest."""

    def __init__(self, limit_per_code: int = 50) -> None:
        self.limit_per_code = limit_per_code
        self.errors: List[Issue] = []
        self.warnings: List[Issue] = []
        self.counts: Dict[str, int] = {}

    def report(self, code: str, message: str, location: str) -> None:
        info = CODES[code]  # KeyError for an unregistered code is a programming error
        seen = self.counts.get(code, 0)
        self.counts[code] = seen + 1
        if seen >= self.limit_per_code:
            return
        target = self.errors if info.severity == ERROR else self.warnings
        target.append(Issue(code, message, location))

    @property
    def error_count(self) -> int:
        return sum(n for code, n in self.counts.items() if CODES[code].severity == ERROR)

    def to_state(self) -> Dict[str, Any]:
        """The kept problems and the counts, JSON-ready (for :meth:`absorb`)."""
        return {
            "issues": [list(i) for i in self.errors + self.warnings],
            "counts": dict(self.counts),
        }

    def absorb(self, state: Mapping[str, Any], relocate: Callable[[str], str] = str, skip: Iterable[str] = ()) -> None:
        """Take over another sink's problems, in order, as if they had been reported here;
        ``relocate`` rewrites their locations, codes in ``skip`` are dropped."""
        kept: Dict[str, int] = {}
        for code, message, location in state["issues"]:
            if code not in skip:
                self.report(code, message, relocate(location))
            kept[code] = kept.get(code, 0) + 1
        for code, n in state["counts"].items():
            if code not in skip and n > kept.get(code, 0):
                self.counts[code] = self.counts.get(code, 0) + n - kept.get(code, 0)

    def suppressed(self) -> Dict[str, int]:
        """How many problems of each code were counted but not kept."""
        return {code: n - self.limit_per_code for code, n in sorted(self.counts.items()) if n > self.limit_per_code}
