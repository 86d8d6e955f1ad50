"""The one in-memory form every list format normalises to, and the path rules they share."""

from __future__ import annotations

import math
import posixpath
from typing import List, NamedTuple, Optional, Sequence, Tuple

from .issues import IssueSink

# how a sample's label numbers are meant
CLASS_ID = "class_id"  # one class id
CLASS_IDS = "class_ids"  # several class ids (multi-label)
MULTI_HOT = "multi_hot"  # one 0/1 value per class (multi-label)

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
        return list(sample.labels)
    vector = [0.0] * num_classes
    for label in sample.labels:
        vector[int(label)] = 1.0
    return vector


def is_class_id(value: float) -> bool:
    return math.isfinite(value) and value >= 0 and value == int(value)


def resolve_path(base: str, relative: str, where: str, sink: IssueSink) -> Optional[str]:
    """Join a dataset-relative path onto ``base``; reports and returns None when the path is
    empty, absolute, or leaves the dataset."""
    text = relative.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if (
        not relative.strip()
        or text.startswith("/")
        or (len(text) > 1 and text[1] == ":")
        or ".." in parts
        or "\0" in text
    ):
        sink.report("PATH_UNSAFE", f"path {relative!r} must be relative and stay inside the dataset", where)
        return None
    return posixpath.join(base, *parts) if base else "/".join(parts)


def printable(path: str) -> str:
    """A file name from the disk with undecodable bytes shown as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def utf8_name(path: str, sink: IssueSink) -> bool:
    """True if a file name from the disk is valid UTF-8 (S3 keys must be); reports it if not."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        sink.report("TEXT_ENCODING", "the file name is not valid UTF-8, so it cannot become an S3 key", printable(path))
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
