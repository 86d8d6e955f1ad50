"""The one in-memory form every list format normalises to, and the path rules they share."""

from __future__ import annotations

import math
import posixpath
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .issues import IssueSink

# how a sample's label numbers are meant
CLASS_ID = "class_id"  # one class id
CLASS_IDS = "class_ids"  # several class ids (multi-label)
MULTI_HOT = "multi_hot"  # one 0/1 value per class (multi-label)
LABEL_LIST = "label_list"  # a list not yet known to be CLASS_IDS or MULTI_HOT (see decide_list_kinds)

# how list labels are meant (--label-format): decided from the data, or named
AUTO, LABEL_CLASS_IDS, LABEL_MULTI_HOT = "auto", "class-id", "multi-hot"
LABEL_FORMATS = (AUTO, LABEL_CLASS_IDS, LABEL_MULTI_HOT)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class Sample(NamedTuple):
    """One labelled image of a list format (.lst, manifest, annotations.json, folders)."""

    path: str  # store path relative to the dataset root, or an s3:// URI
    labels: Tuple[float, ...]
    kind: str  # CLASS_ID, CLASS_IDS or MULTI_HOT
    location: str  # where the sample was declared: 'train/train.lst:line 3'
    key: Optional[int] = None  # the .lst index, when there is one


def multi_hot(sample: Sample, num_classes: int) -> List[float]:
    """The sample's labels as a multi-hot vector of ``num_classes`` values."""
    if sample.kind == MULTI_HOT:
        return [v + 0.0 for v in sample.labels]  # + 0.0: -0.0 becomes 0.0
    vector = [0.0] * num_classes
    for label in sample.labels:
        vector[int(label)] = 1.0
    return vector


def record_labels(sample: Sample, num_classes: int) -> Tuple[float, ...]:
    """The label values a RecordIO record carries for a (validated) sample: its class id
    (one value, IRHeader ``flag`` 0), or for a multi-label sample its multi-hot vector of
    ``num_classes`` values (``flag`` = that length). im2rec and SageMaker read the same."""
    if sample.kind == CLASS_ID:
        return tuple(float(int(v)) for v in sample.labels)
    return tuple(multi_hot(sample, num_classes))


def is_class_id(value: float) -> bool:
    return math.isfinite(value) and value >= 0 and value == int(value)


def number(value: object) -> Optional[float]:
    """A JSON label value as a float; None for what is no number (bools, strings, ints too
    large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def is_multi_hot_shape(values: Sequence[float], num_classes: Optional[int]) -> bool:
    """Whether a label list can be a multi-hot vector: 0s and 1s, at least 2 of them, and
    ``num_classes`` of them when that is known."""
    return (
        len(values) >= 2
        and all(v in (0.0, 1.0) for v in values)
        and (num_classes is None or len(values) == num_classes)
    )


def decide_list_kinds(samples: Iterable[Sample], label_format: str, num_classes: Optional[int]) -> Iterator[Sample]:
    """Give the ``LABEL_LIST`` samples of one file their kind, in order.

    ``--label-format`` decides when it names one. Otherwise (``auto``) the file's lists are
    multi-hot vectors when every one of them could be one (:func:`is_multi_hot_shape`) and all
    have the same length; else they are lists of class ids. A list read one way never changes
    meaning with its neighbours: ``[0, 1, 0]`` and ``[1, 0, 0]`` are vectors, ``[0, 2]`` and
    ``[1]`` class ids. Samples are held back only while the file could still be multi-hot.
    """
    if label_format != AUTO:
        kind = MULTI_HOT if label_format == LABEL_MULTI_HOT else CLASS_IDS
        for sample in samples:
            yield sample._replace(kind=kind) if sample.kind == LABEL_LIST else sample
        return
    held: List[Sample] = []
    length: Optional[int] = None
    decided: Optional[str] = None
    for sample in samples:
        if decided is not None:
            yield sample._replace(kind=decided) if sample.kind == LABEL_LIST else sample
            continue
        if sample.kind == LABEL_LIST:
            length = len(sample.labels) if length is None else length
            if len(sample.labels) != length or not is_multi_hot_shape(sample.labels, num_classes):
                decided = CLASS_IDS
                for early in held:
                    yield early._replace(kind=CLASS_IDS) if early.kind == LABEL_LIST else early
                held = []
                yield sample._replace(kind=CLASS_IDS)
                continue
        held.append(sample)
    for sample in held:
        yield sample._replace(kind=MULTI_HOT) if sample.kind == LABEL_LIST else sample


def resolve_path(base: str, relative: str, where: str, sink: IssueSink) -> Optional[str]:
    """Join a dataset-relative path onto ``base``; reports and returns None when the path is
    empty, absolute, leaves the dataset or ends with a separator (a folder: im2rec and MXNet's
    readers open it as given and fail)."""
    text = relative.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not relative.strip() or text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in parts:
        sink.report("PATH_UNSAFE", f"path {relative!r} must be relative and stay inside the dataset", where)
        return None
    problem = lst_path_problem(text)
    if problem is None and "\0" in text:
        problem = "holds a NUL byte, which no file name can hold"
    if problem is None and text.endswith("/"):
        problem = "ends with a folder separator, so it names a folder, not an image file"
    if problem:
        sink.report("PATH_UNSAFE", f"path {relative!r} {problem}", where)
        return None
    return posixpath.join(base, *parts) if base else "/".join(parts)


def lst_path_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be written to a .lst line, or None. im2rec and every .lst reader
    split lines at line breaks and fields at tabs, and strip white space around the path."""
    breaking = [c for c in ("\t", "\n", "\r") if c in path]
    if breaking:
        return "holds {}, which the .lst format cannot carry (it separates fields and lines)".format(
            " and ".join({"\t": "a tab", "\n": "a line feed", "\r": "a carriage return"}[c] for c in breaking)
        )
    for part in path.split("/"):
        if part != part.strip():
            return f"has a name that starts or ends with white space ({part!r}), which .lst readers strip"
    return None


# control characters as escapes, so that a location stays on its line (a name may hold a line feed)
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}
_CONTROLS.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


def printable(path: str) -> str:
    """A file name from the disk with undecodable bytes shown as ``\\xNN``, and tabs, line
    feeds and other control characters as ``\\t``, ``\\n``, ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").translate(_CONTROLS)


def utf8_name(path: str, sink: IssueSink) -> bool:
    """True if a file name from the disk can name a sample: valid UTF-8 (S3 keys must be),
    writable to a .lst line (:func:`lst_path_problem`) and read back as itself (no backslash,
    which :func:`resolve_path` takes for a Windows folder separator); reports it if not."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        sink.report("TEXT_ENCODING", "the file name is not valid UTF-8, so it cannot become an S3 key", printable(path))
        return False
    problem = lst_path_problem(path)
    if problem is None and "\\" in path:  # a list written from it would name another file
        problem = "holds a backslash, which .lst, manifest and annotations.json readers take for a folder separator"
    if problem:
        sink.report("PATH_UNSAFE", f"the file name {problem}", printable(path))
        return False
    return True


def parse_s3_uri(uri: str) -> Tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def check_s3_uri(uri: str, allowed_buckets: Sequence[str], where: str, sink: IssueSink) -> bool:
    """True if an s3:// reference may be used: a key inside one of ``allowed_buckets``."""
    bucket, key = parse_s3_uri(uri)
    parts = key.split("/")
    if not bucket or not key or ".." in parts:
        sink.report("PATH_UNSAFE", f"{uri!r} is not an s3://bucket/key URI inside a bucket", where)
        return False
    if bucket not in allowed_buckets:
        sink.report(
            "PATH_OTHER_BUCKET",
            "{} is in bucket {!r}; allowed: {}".format(uri, bucket, ", ".join(allowed_buckets) or "none"),
            where,
        )
        return False
    return True
