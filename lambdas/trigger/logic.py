"""From an uploaded ``dataset.json`` to the workflow's input and execution name.

The name is derived from the dataset version and a hash of the effective configuration, so S3's
repeated deliveries and concurrent uploads of the same version start one run, while a changed
configuration or a ``rerun`` tag starts a new one."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, Mapping, NamedTuple, Optional

from image_dataset.descriptor import FILE_NAME, Descriptor, DescriptorError, parse_descriptor
from image_dataset.naming import DatasetNameError, check_dataset_location
from image_training.errors import HyperparameterError
from image_training.schemas import check_settable

DATASETS_PREFIX = "datasets/"
MAX_NAME = 80
UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


class Upload(NamedTuple):
    bucket: str
    key: str  # .../datasets/<name>/<version>/dataset.json
    name: str
    version: str

    @property
    def prefix(self) -> str:
        """The dataset root: the descriptor's folder, with a trailing slash."""
        return self.key[: -len(FILE_NAME)]


class Rejected(Exception):
    """The upload cannot start a run; the message says why (it goes to the alert topic)."""


def parse_upload(bucket: str, key: str) -> Optional[Upload]:
    """The dataset that a descriptor key announces, or None for keys that are no descriptor."""
    if not key.startswith(DATASETS_PREFIX) or not key.endswith("/" + FILE_NAME):
        return None
    parts = key[len(DATASETS_PREFIX) : -len(FILE_NAME) - 1].split("/")
    if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
        raise Rejected(f"s3://{bucket}/{key}: a descriptor must sit at datasets/<name>/<version>/{FILE_NAME}")
    return Upload(bucket, key, parts[0], parts[1])


def effective_hyperparameters(backend: str, defaults: Mapping[str, str], descriptor: Descriptor) -> Dict[str, str]:
    """Config defaults, then the descriptor's overrides (which pass the allowlist)."""
    try:
        overrides = check_settable(backend, descriptor.hyperparameters)
    except HyperparameterError as err:
        raise Rejected(f"{FILE_NAME}: {err}") from None
    return {**defaults, **overrides}


def execution_name(name: str, version: str, config: Mapping[str, Any], rerun: str = "") -> str:
    """The run of one dataset version under one configuration, in the cloud (the Step Functions
    execution) and locally (imgclf pipeline run): at most 80 characters of [A-Za-z0-9-_],
    readable name and version, then a hash of the exact name, version and configuration (so
    sanitising never merges two datasets)."""
    digest = hashlib.sha256(
        json.dumps({"name": name, "version": version, "config": config}, sort_keys=True).encode()
    ).hexdigest()[:16]
    suffix = f"-{digest}" + (f"_{rerun}" if rerun else "")
    readable = "-".join(p for p in (UNSAFE.sub("-", name).strip("-"), UNSAFE.sub("-", version).strip("-")) if p)
    readable = readable[: MAX_NAME - len(suffix)].rstrip("-") or "dataset"
    return readable + suffix


def workflow_input(
    upload: Upload, descriptor_bytes: bytes, backend: str, defaults: Mapping[str, str], stage_config_hash: str
) -> Dict[str, Any]:
    """The execution's name and input for one descriptor, or :class:`Rejected` (also for a
    dataset name or version that a request of the run could not carry: image_dataset.naming)."""
    try:
        check_dataset_location(upload.name, upload.version)
        descriptor = parse_descriptor(descriptor_bytes)
    except (DatasetNameError, DescriptorError) as err:
        raise Rejected(f"s3://{upload.bucket}/{upload.key}: {err}") from None
    hyperparameters = effective_hyperparameters(backend, defaults, descriptor)
    described = descriptor.as_dict()
    described.pop("rerun", None)
    config = {"stage": stage_config_hash, "hyperparameters": hyperparameters, "descriptor": described}
    return {
        "name": execution_name(upload.name, upload.version, config, descriptor.rerun),
        "input": {
            "dataset": {
                "bucket": upload.bucket,
                "prefix": upload.prefix,
                "name": upload.name,
                "version": upload.version,
                "descriptor": descriptor.as_dict(),
            },
            "hyperparameters": hyperparameters,
        },
    }
