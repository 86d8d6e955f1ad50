"""From an uploaded ``dataset.json`` to the workflow's input and execution name.

The name is derived from the dataset version and a hash of the effective configuration
(imgclf_core.plan), so S3's repeated deliveries and concurrent uploads of the same version start
one run, while a changed configuration or a ``rerun`` tag starts a new one."""

from __future__ import annotations

from typing import Any, Dict, Mapping, NamedTuple, Optional

from image_dataset.descriptor import FILE_NAME, DescriptorError, parse_descriptor
from image_dataset.naming import DatasetNameError, check_dataset_location
from image_training.errors import HyperparameterError
from imgclf_core import s3_layout
from imgclf_core.plan import plan_run


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
    try:
        found = s3_layout.descriptor_key(key)
    except s3_layout.LayoutError as err:
        raise Rejected(f"s3://{bucket}/{key}: {err}") from None
    return None if found is None else Upload(bucket, key, found.name, found.version)


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
    try:
        run = plan_run(upload.name, upload.version, descriptor, backend, defaults, stage_config_hash)
    except HyperparameterError as err:
        raise Rejected(f"{FILE_NAME}: {err}") from None
    return {
        "name": run.execution,
        "input": {
            "dataset": {
                "bucket": upload.bucket,
                "prefix": upload.prefix,
                "name": upload.name,
                "version": upload.version,
                "descriptor": descriptor.as_dict(),
            },
            "hyperparameters": run.effective,
        },
    }
