"""The pinned frameworks match AWS Deep Learning Containers that SageMaker can run: the version
in each backend's lock has a training image in sagemaker-core's image_uris."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sagemaker.core import image_uris

ROOT = Path(__file__).resolve().parents[2]


def locked(lock: str, package: str) -> str:
    text = (ROOT / "requirements" / lock).read_text()
    match = re.search(rf"^{re.escape(package)}==([0-9.]+)$", text, re.MULTILINE | re.IGNORECASE)
    assert match, f"{package} is not pinned in {lock}"
    return match.group(1)


@pytest.mark.parametrize(
    "lock, package, framework, container_version, python",
    [
        ("tensorflow.txt", "tensorflow_cpu", "tensorflow", None, "py312"),
        ("mxnet.txt", "mxnet", "mxnet", "1.9.0", "py38"),
    ],
)
def test_pinned_framework_has_an_aws_training_container(lock, package, framework, container_version, python) -> None:
    version = locked(lock, package)
    wanted = container_version or ".".join(version.split(".")[:2])
    if container_version:  # MXNet 1.9.1 on PyPI is the 1.9 line the 1.9.0 container runs
        assert version.startswith(container_version.rsplit(".", 1)[0] + ".")
    uri = image_uris.retrieve(
        framework,
        region="us-east-1",
        version=wanted,
        py_version=python,
        instance_type="ml.p3.2xlarge",
        image_scope="training",
    )
    assert f"{framework}-training:{wanted}" in uri
