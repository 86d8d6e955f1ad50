"""ECR image URIs (imgclf_core.ecr): the registry account, region, repository and tag that the
ECR grant (infra) and the image check (imgclf doctor) both read from one parser."""

from __future__ import annotations

import pytest

from imgclf_core.ecr import ImageUri


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        (
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-training:1.9.0-gpu-py38",
            ImageUri("763104351884", "us-east-1", "mxnet-training", "1.9.0-gpu-py38"),
        ),
        (
            "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/tensorflow-inference:2.20-cpu",
            ImageUri("727897471807", "cn-north-1", "tensorflow-inference", "2.20-cpu"),
        ),
        (
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com/team/model",
            ImageUri("111111111111", "eu-west-1", "team/model"),
        ),
        (
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com/model@sha256:abc",
            ImageUri("111111111111", "eu-west-1", "model", "sha256:abc"),
        ),
    ],
)
def test_an_ecr_uri_is_read_into_its_parts(uri: str, parsed: ImageUri) -> None:
    assert ImageUri.parse(uri) == parsed


@pytest.mark.parametrize(
    "uri",
    [
        "docker.io/library/python:3.11",
        "public.ecr.aws/lambda/python:3.14",
        "12345.dkr.ecr.us-east-1.amazonaws.com/x:1",
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/",
        "111111111111.dkr.ecr.us-east-1.amazonaws.com",
    ],
)
def test_anything_else_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="ECR|account|repository"):
        ImageUri.parse(uri)
