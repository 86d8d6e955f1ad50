from __future__ import annotations

import os
from typing import Iterator
from unittest import mock

import pytest

REGION = "us-east-1"


@pytest.fixture()
def aws() -> Iterator[None]:
    """moto for every AWS call, with the environment a Lambda function has."""
    from moto import mock_aws

    env = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, env), mock_aws():
        yield


class Context:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "request"
