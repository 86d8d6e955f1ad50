"""The batch request's rules (lambdas/batch/logic.py): what a batch.json may say, the order of
the inputs (imgclf batch's walk), the model package chosen, and the join's lines."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import pytest

from imgclf_core import batch as rules
from imgclf_core.batch_request import Rejected, execution_name, parse_request
from lambdas.batch.logic import (
    job_name,
    join,
    manifest,
    ordered_inputs,
    output_relatives,
    package_arn,
    plan,
    read_manifest,
)

BUCKET = "imgclf-dev-datasets-111111111111-us-east-1"
KEY = "batch/flowers/batch.json"
GROUP = "imgclf-dev-models"
ARN = f"arn:aws:sagemaker:us-east-1:111111111111:model-package/{GROUP}/3"


def request(**raw: Any) -> Any:
    return parse_request(BUCKET, KEY, json.dumps(raw).encode())


def test_relative_and_absolute_inputs() -> None:
    assert request(input="images/").input_key == "batch/flowers/images/"
    assert request(input=f"s3://{BUCKET}/datasets/cats/v1/train/").input_key == "datasets/cats/v1/train/"
    one = request(input="a.JPG", model_package=2)
    assert (one.input_key, one.is_prefix, one.model_package) == ("batch/flowers/a.JPG", False, 2)
    assert request(input="x/", model_package=ARN).model_package == ARN


@pytest.mark.parametrize(
    "raw, reason",
    [
        ({}, 'no "input"'),
        ({"input": ""}, "s3:// URI"),
        ({"input": "/abs/"}, 'must not start with "/"'),
        ({"input": "a//b/"}, "empty"),
        ({"input": f"s3://{BUCKET}/packed/x/"}, "under batch/ or datasets/"),
        ({"input": "notes.txt"}, "neither a folder"),
        ({"input": "x.rec"}, "RecordIO"),
        ({"input": "x/", "model_package": 0}, "from 1"),
        ({"input": "x/", "model_package": True}, "version number"),
        ({"input": "x/", "model_package": "arn:aws:sagemaker:us-east-1:1:model-package/g/x"}, "version number"),
    ],
)
def test_bad_requests_say_why(raw: Dict[str, Any], reason: str) -> None:
    with pytest.raises(Rejected, match=reason.replace("(", r"\(")):
        request(**raw)


def test_keys_that_are_no_request() -> None:
    with pytest.raises(Rejected, match="batch/<name>/batch.json"):
        parse_request(BUCKET, "batch/a/b/batch.json", b"{}")
    with pytest.raises(Rejected, match="batch name"):
        parse_request(BUCKET, "batch/bad name!/batch.json", b'{"input": "x/"}')
    with pytest.raises(Rejected, match="not JSON"):
        parse_request(BUCKET, KEY, b"\xff")


def test_names_are_stable_and_fit() -> None:
    assert execution_name("flowers", '"abc"') == execution_name("flowers", '"abc"')
    assert execution_name("flowers", '"abc"') != execution_name("flowers", '"abd"')
    name = job_name("imgclf-a-long-stage-name", "x" * 80)
    assert len(name) <= 63 and name.startswith("imgclf-a-long-stage-name-batch-")


def test_inputs_in_the_order_imgclf_batch_walks_a_folder() -> None:
    prefix = "batch/f/images/"
    keys = [
        prefix + k for k in ("a-b/2.jpg", "a.png", "a/1.png", "c.JPEG", ".hidden.png", "x/.git/y.png", "n.txt", "d/")
    ]
    relatives, skipped = ordered_inputs(prefix, keys)
    assert relatives == ["a.png", "c.JPEG", "a/1.png", "a-b/2.jpg"] and skipped == 1


def test_the_plan_and_its_manifest() -> None:
    found, relatives = plan(
        request(input="images/"), "flowers-0a", "imgclf-dev", "art", ARN, ["batch/flowers/images/b.png"]
    )
    assert relatives == ["b.png"] and found["inputs"] == 1
    assert found["manifest_uri"] == f"s3://art/batch-jobs/{found['job_name']}/manifest.json"
    assert found["output_uri"].endswith("/output/") and found["model_name"] == found["job_name"]
    data = manifest(BUCKET, found["input_prefix"], relatives)
    assert read_manifest(data) == (f"s3://{BUCKET}/batch/flowers/images/", ["b.png"])
    with pytest.raises(Rejected, match="no JPEG or PNG"):
        plan(request(input="images/"), "e", "imgclf-dev", "art", ARN, ["batch/flowers/images/n.txt"])
    with pytest.raises(Rejected, match="does not exist"):
        plan(request(input="images/a.png"), "e", "imgclf-dev", "art", ARN, [])


def test_the_model_package_chosen() -> None:
    versions: Dict[int, Dict[str, Any]] = {
        3: {"ModelPackageArn": ARN, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "PendingManualApproval"},
        4: {"ModelPackageArn": "x4", "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Rejected"},
    }

    def describe(version: int) -> Optional[Dict[str, Any]]:
        return versions.get(version)

    assert package_arn(GROUP, None, describe, lambda: "latest") == "latest"
    assert package_arn(GROUP, 3, describe, lambda: None) == ARN
    assert package_arn(GROUP, ARN, describe, lambda: None) == ARN
    for choice, reason in (
        (None, "no Approved"),
        (4, "rejected"),
        (9, "does not exist"),
        (ARN.replace(GROUP, "other"), "not in"),
    ):
        with pytest.raises(Rejected, match=reason):
            package_arn(GROUP, choice, describe, lambda: None)


def test_the_join_keeps_input_order_and_marks_missing_outputs() -> None:
    answer = {"predicted_label": "rose", "top_k": [{"label": "rose", "probability": 0.9}]}
    outputs = {"b.png": json.dumps(answer).encode(), "c.png": b"<html>"}
    lines = join(["a.png", "b.png", "c.png"], outputs, "ClientError: See job logs")
    assert [line["source"] for line in lines] == ["a.png", "b.png", "c.png"]
    assert lines[0]["error"]["code"] == rules.MODEL_ERROR and "ClientError" in lines[0]["error"]["message"]
    assert lines[1] == rules.prediction_line("b.png", answer)
    assert lines[2]["error"]["code"] == rules.MODEL_ERROR
    found = output_relatives("o/", ["o/a.png.out", "o/x/b.png.out", "o/manifest.json"])
    assert found == {"a.png": "o/a.png.out", "x/b.png": "o/x/b.png.out"}
