"""``imgclf batch --stage NAME s3://...`` writes the request that starts the stage's batch
workflow (moto's S3), checked by the start function's own rules first; and the local command
still needs its model and output."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator
from unittest import mock

import boto3
import pytest

from app.cli.main import main
from imgclf_core.batch_request import execution_name, parse_request

BUCKET = "imgclf-dev-datasets-111111111111-us-east-1"  # cdk.json's dev stage


def run(*args: str) -> int:
    """The exit code of ``imgclf ARGS`` (a usage error exits through SystemExit)."""
    try:
        return main(list(args))
    except SystemExit as exit:
        return int(exit.code or 0)


@pytest.fixture()
def s3() -> Iterator[Any]:
    from moto import mock_aws

    env = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, env), mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_a_stage_batch_writes_the_request_the_workflow_starts_from(s3: Any, capsys: Any) -> None:
    code = main(
        ["batch", "--stage", "dev", "--name", "spring", "--model-package", "3", f"s3://{BUCKET}/batch/spring/photos/"]
    )
    assert code == 0
    key = "batch/spring/batch.json"
    found = s3.get_object(Bucket=BUCKET, Key=key)
    body = found["Body"].read()
    assert json.loads(body) == {"input": f"s3://{BUCKET}/batch/spring/photos/", "model_package": 3}
    request = parse_request(BUCKET, key, body)  # what the start function reads
    assert request.input_key == "batch/spring/photos/" and request.model_package == 3
    out = capsys.readouterr().out
    assert execution_name("spring", str(found["ETag"])) in out and f"s3://{BUCKET}/{key}" in out


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("s3://another-bucket/batch/x/", "datasets bucket"),
        (f"s3://{BUCKET}/models/x/", "under batch/ or datasets/"),
        (f"s3://{BUCKET}/batch/x/data.idx", "nor a .rec"),
        (f"s3://{BUCKET}/batch/x/notes.txt", "neither a folder"),
    ],
)
def test_a_request_the_workflow_would_refuse_is_never_written(s3: Any, capsys: Any, uri: str, why: str) -> None:
    assert run("batch", "--stage", "dev", "--name", "b", uri) == 2
    assert why in capsys.readouterr().err
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_an_unknown_stage_is_a_usage_error(capsys: Any) -> None:
    assert run("batch", "--stage", "nope", f"s3://{BUCKET}/batch/x/") == 2
    assert "no stage 'nope'" in capsys.readouterr().err


def test_the_local_command_needs_a_model_and_an_output(tmp_path: Any, capsys: Any) -> None:
    assert run("batch", str(tmp_path)) == 2
    assert "--model and --output are required" in capsys.readouterr().err
    assert run("batch", str(tmp_path), "--model", "m.tar.gz") == 2
    assert "--output is required" in capsys.readouterr().err
