"""A batch request, ``batch/<name>/batch.json`` in the datasets bucket: its rules, shared by the
cloud workflow's start function and ``imgclf batch --stage`` (which writes one).

A request::

    {"input": "images/" | "s3://<datasets bucket>/batch/x/images/" | ".../one.jpg" | ".../data.rec",
     "model_package": 3 | "arn:...:model-package/<group>/3"}   (optional: the latest Approved)

A relative ``input`` is below the request's folder (``batch/<name>/``); one that ends in ``/``
is a prefix whose images are all classified; a ``.rec`` has each of its records classified.

Also here: the transform job's settings for each kind of input (``transform_settings``), which
the plan function chooses and the state machine reads.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, NamedTuple, Optional, Union

from image_dataset.layout import RECORDIO, format_of_file, is_image_file
from image_training.serving import IMAGE_TYPES
from image_training.serving import RECORDIO as RECORDIO_TYPE

from . import s3_layout

MAX_REQUEST_BYTES = 64 * 1024
MAX_EXECUTION_NAME = 80
PackageChoice = Union[None, int, str]
PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/([^/]+)/([0-9]+)$")
IMAGES = "images"  # the kind of a folder's or one image's input; a .rec's is RECORDIO
IMAGE_TYPE = IMAGE_TYPES[2]  # application/x-image: the serving contract's type for JPEG and PNG alike
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")  # CreateTransformJob's BatchStrategy


class Rejected(ValueError):
    """A request that cannot start a batch; the message says why (it goes to the alert topic)."""


class BatchRequest(NamedTuple):
    name: str
    bucket: str  # the datasets bucket: the request's and the inputs'
    key: str  # batch/<name>/batch.json
    input_key: str  # an object key, or a prefix ending in "/"
    model_package: PackageChoice

    @property
    def is_prefix(self) -> bool:
        return self.input_key.endswith("/")

    @property
    def kind(self) -> str:
        """RECORDIO for a .rec (each record is an input), IMAGES otherwise."""
        is_rec = not self.is_prefix and format_of_file(self.input_key.rsplit("/", 1)[-1]) == RECORDIO
        return RECORDIO if is_rec else IMAGES

    def as_dict(self) -> Dict[str, Any]:
        return self._asdict()


def request_name(key: str) -> Optional[str]:
    """The batch name of a request key, None for other keys; Rejected for a misplaced request."""
    try:
        return s3_layout.batch_request_key(key)
    except s3_layout.LayoutError as err:
        raise Rejected(f"{key}: {err}") from None


def _input_key(bucket: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Rejected('"input" must be an s3:// URI or a path relative to the request\'s folder')
    if value.startswith("s3://"):
        found_bucket, _, key = value[5:].partition("/")
        if found_bucket != bucket:
            raise Rejected(f'"input" must be in the datasets bucket {bucket}, not {found_bucket}')
    else:
        if value.startswith("/"):
            raise Rejected('a relative "input" must not start with "/"')
        key = f"{s3_layout.BATCH}{name}/{value}"
    parts = key.rstrip("/").split("/")
    if not key.rstrip("/") or any(p in ("", ".", "..") for p in parts):
        raise Rejected(f'"input" {value!r} has an empty, "." or ".." part')
    if not key.startswith(s3_layout.BATCH_INPUT_PREFIXES):
        allowed = " or ".join(s3_layout.BATCH_INPUT_PREFIXES)
        raise Rejected(f'"input" must be under {allowed} of the datasets bucket, not {key}')
    if not key.endswith("/") and format_of_file(parts[-1]) != RECORDIO and not is_image_file(parts[-1]):
        raise Rejected(f'"input" {value!r} is neither a folder (ending in "/"), a JPEG or PNG image, nor a .rec')
    return key


def _model_package(value: Any) -> PackageChoice:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise Rejected('"model_package" must be a version number from 1')
        return value
    if isinstance(value, str) and PACKAGE_ARN.match(value):
        return value
    raise Rejected('"model_package" must be a version number or a model package ARN (default: the latest Approved)')


def parse_request(bucket: str, key: str, body: bytes) -> BatchRequest:
    """The request in ``body``; Rejected for anything that cannot start a batch."""
    name = request_name(key)
    if name is None:
        raise Rejected(f"{key} is no batch request")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$", name):
        raise Rejected(f"batch name {name!r}: 1-40 letters, digits, '.', '_' and '-', starting with a letter or digit")
    if len(body) > MAX_REQUEST_BYTES:
        raise Rejected(f"{s3_layout.BATCH_REQUEST} is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        raw = json.loads(body.decode("utf-8"))
    except ValueError as err:
        raise Rejected(f"{s3_layout.BATCH_REQUEST} is not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise Rejected(f"{s3_layout.BATCH_REQUEST} must be a JSON object")
    unknown = sorted(set(raw) - {"input", "model_package"})
    if unknown:
        raise Rejected(f"unknown key {unknown[0]!r} in {s3_layout.BATCH_REQUEST} (known: input, model_package)")
    if "input" not in raw:
        raise Rejected(f'{s3_layout.BATCH_REQUEST} has no "input"')
    return BatchRequest(
        name, bucket, key, _input_key(bucket, name, raw["input"]), _model_package(raw.get("model_package"))
    )


def execution_name(name: str, etag: str) -> str:
    """One execution per uploaded request: a repeated event of the same upload has the same name,
    a new upload of batch.json (a new ETag) a new one."""
    digest = hashlib.sha256(f"{name}\0{etag}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")[: MAX_EXECUTION_NAME - 20] or "batch"
    return f"{readable}-{digest}"


def transform_settings(kind: str, batch_strategy: str) -> Dict[str, str]:
    """The CreateTransformJob fields (by their API names) that depend on the input's ``kind``.
    Images: one object per request, as it is (``SplitType`` None, ``SingleRecord``), each answer
    its own ``.out``. A .rec: split on RecordIO record boundaries, ``batch_strategy``
    (``SingleRecord``: one record per request; ``MultiRecord``: as many whole records as fit
    ``MaxPayloadInMB``), each record answered with one line and the answers joined by lines into
    one ``.out`` (``AssembleWith`` Line)."""
    if batch_strategy not in BATCH_STRATEGIES:
        raise ValueError(f"BatchStrategy {batch_strategy!r} is not one of {', '.join(BATCH_STRATEGIES)}")
    if kind == RECORDIO:
        return {
            "ContentType": RECORDIO_TYPE,
            "SplitType": "RecordIO",
            "BatchStrategy": batch_strategy,
            "AssembleWith": "Line",
        }
    return {"ContentType": IMAGE_TYPE, "SplitType": "None", "BatchStrategy": "SingleRecord", "AssembleWith": "None"}
