"""The batch workflow, executed offline (asl_harness.py): an uploaded batch.json starts it, the
transform job runs the model's own serving code on every image, or on a .rec split on its records
(transform_job.py), and the join writes the very predictions.jsonl that ``imgclf batch`` writes
for the same inputs and model. Every request is checked against the API's model and every call
against the IAM and key policies (the harness fails a test on either)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List

import boto3
import pytest

from image_dataset.recordio import MAGIC_BYTES, frame, pack
from infra.config import parse_stages
from tests.builders import jpeg, png, write_file, write_rec

from .asl_harness import REGION, WorkflowHarness
from .conftest import stage_context
from .transform_job import request_bodies

pytestmark = pytest.mark.mxnet

START = "lambdas.batch.handler.start"
# a folder's files come before its sub-folders in imgclf batch's walk (not in S3's key order)
IMAGES = {
    "a.png": png(24, 24, (220, 30, 30)),
    "c.jpg": jpeg(24, 24, (30, 200, 30)),
    "a/1.png": png(24, 24, (30, 30, 220)),
    "a-b/2.jpg": jpeg(24, 24, (200, 200, 200)),
    "notes.txt": b"not an image",
}
BROKEN = b"\x89PNG\r\n\x1a\n but broken"  # a PNG signature, then nothing a decoder can read


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real MXNet model (tests/training/test_http_contract's), as model.tar.gz."""
    from tests.training.test_batch_model import _archive
    from tests.training.test_http_contract import MXNET_MODEL

    return _archive(tmp_path_factory.mktemp("batch-cloud-model"), MXNET_MODEL)


@pytest.fixture()
def harness(templates: Dict[str, Dict[str, Any]]):  # type: ignore[no-untyped-def]
    with WorkflowHarness(templates).running() as running:
        yield running


def register_model(harness: WorkflowHarness, archive: Path, status: str = "Approved") -> str:
    """A model package of the stage's group whose model is ``archive``, as the training workflow
    registers one."""
    (stage,) = parse_stages(stage_context()["imgclf:stages"])
    s3 = boto3.client("s3", region_name=REGION)
    key = "training-jobs/job-1/output/model.tar.gz"
    s3.put_object(Bucket=harness.artifacts_bucket, Key=key, Body=archive.read_bytes())
    return str(
        boto3.client("sagemaker", region_name=REGION).create_model_package(
            ModelPackageGroupName=stage.model_package_group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": stage.image_uri("inference"),
                        "ModelDataUrl": f"s3://{harness.artifacts_bucket}/{key}",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                    }
                ],
                "SupportedContentTypes": ["image/jpeg", "image/png", "application/x-image"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
    )


def upload(harness: WorkflowHarness, name: str, request: Any, images: Dict[str, bytes]) -> Dict[str, Any]:
    """The images under batch/<name>/images/ and the request; the start function's answer to
    EventBridge's "Object Created" for batch.json."""
    s3 = boto3.client("s3", region_name=REGION)
    for relative, data in images.items():
        s3.put_object(Bucket=harness.datasets_bucket, Key=f"batch/{name}/images/{relative}", Body=data)
    key = f"batch/{name}/batch.json"
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    s3.put_object(Bucket=harness.datasets_bucket, Key=key, Body=body)
    event = {
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": harness.datasets_bucket}, "object": {"key": key}},
    }
    return dict(harness.invoke(START, event))


def run_batch(harness: WorkflowHarness, name: str, request: Any, images: Dict[str, bytes]) -> Dict[str, Any]:
    started = upload(harness, name, request, images)
    (execution,) = started["executions"]
    arn = harness.state_machines["batch"].replace(":stateMachine:", ":execution:") + f":{execution}"
    result = harness.wait(arn, timeout=240)
    assert result["status"] == "SUCCEEDED", harness.explain(arn)
    return dict(json.loads(result["output"]))


def cloud_lines(harness: WorkflowHarness, output: Dict[str, Any]) -> List[Dict[str, Any]]:
    bucket, _, key = output["result"]["predictions_uri"][5:].partition("/")
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


def local_lines(tmp_path: Path, archive: Path, images: Dict[str, bytes], cli: Any) -> List[Dict[str, Any]]:
    root = tmp_path / "images"
    for relative, data in images.items():
        write_file(str(root / relative), data)
    out = tmp_path / "local.jsonl"
    code, _, err = cli("batch", str(root), "--model", str(archive), "-o", str(out), "--workers", "2")
    assert code in (0, 1), err
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_folder_in_the_cloud_writes_what_imgclf_batch_writes(
    harness: WorkflowHarness, archive: Path, tmp_path: Path, cli: Any
) -> None:
    package = register_model(harness, archive)
    output = run_batch(harness, "flowers", {"input": "images/"}, IMAGES)
    lines = cloud_lines(harness, output)
    assert lines == local_lines(tmp_path, archive, IMAGES, cli)
    assert [line["source"] for line in lines] == ["a.png", "c.jpg", "a/1.png", "a-b/2.jpg"]
    assert output["plan"]["model_package_arn"] == package
    assert output["result"]["classified"] == 4 and output["result"]["skipped"] == 1
    (request,) = harness.transform_requests
    assert request["TransformInput"]["SplitType"] == "None" and request["BatchStrategy"] == "SingleRecord"
    assert request["TransformInput"]["ContentType"] == "application/x-image"
    assert request["TransformOutput"]["AssembleWith"] == "None"
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert request["TransformOutput"]["Accept"] == "application/json;verbose"
    assert request["TransformOutput"]["KmsKeyId"] == request["TransformResources"]["VolumeKmsKeyId"]
    assert request["TransformResources"]["InstanceType"] == "ml.m5.xlarge"
    model = boto3.client("sagemaker", region_name=REGION).list_models()["Models"]
    assert model == [], "the batch's model is deleted at the end"
    (alert,) = [a for a in harness.alerts() if "batch classified" in a.get("Subject", "")]
    message = json.loads(alert["Message"])
    assert message["classified"] == 4 and message["total"] == 4 and message["predictions"].endswith("predictions.jsonl")


def test_an_image_the_model_refuses_gets_an_error_line_in_its_place(harness: WorkflowHarness, archive: Path) -> None:
    register_model(harness, archive)
    images = {"1.png": IMAGES["a.png"], "2.png": b"\x89PNG\r\n\x1a\n but broken", "3.jpg": IMAGES["c.jpg"]}
    output = run_batch(harness, "broken", {"input": "images/"}, images)
    lines = cloud_lines(harness, output)
    assert [line["source"] for line in lines] == ["1.png", "2.png", "3.jpg"]
    assert "top_k" in lines[0] and "top_k" in lines[2]
    assert lines[1]["error"]["code"] == "MODEL_ERROR" and "transform job failed" in lines[1]["error"]["message"]
    assert output["result"]["failed"] == {"MODEL_ERROR": 1}
    assert list(harness.transform_failures) == ["batch/broken/images/2.png"]


def test_a_named_version_is_used_and_a_missing_one_fails_with_an_alert(harness: WorkflowHarness, archive: Path) -> None:
    first = register_model(harness, archive, status="PendingManualApproval")
    register_model(harness, archive)
    output = run_batch(harness, "named", {"input": "images/a.png", "model_package": 1}, {"a.png": IMAGES["a.png"]})
    assert output["plan"]["model_package_arn"] == first
    assert [line["source"] for line in cloud_lines(harness, output)] == ["a.png"]
    started = upload(harness, "missing", {"input": "images/", "model_package": 7}, {"x.png": IMAGES["a.png"]})
    (execution,) = started["executions"]
    arn = harness.state_machines["batch"].replace(":stateMachine:", ":execution:") + f":{execution}"
    assert harness.wait(arn)["status"] == "FAILED"
    failures = [json.loads(a["Message"]) for a in harness.alerts() if "batch failed" in a.get("Subject", "")]
    assert any("version 7" in f["cause"] for f in failures), failures


@pytest.mark.parametrize(
    "request_body, reason",
    [
        (b"{not json", "not JSON"),
        ({"input": "images/", "colour": 1}, "unknown key"),
        ({"input": "s3://elsewhere/x/"}, "datasets bucket"),
        ({"input": "../../datasets/x/"}, '".."'),
        ({"input": "images/packed.idx"}, "nor a .rec"),
        ({"input": "images/", "model_package": "latest"}, "version number"),
    ],
)
def test_a_bad_request_starts_nothing_and_alerts(harness: WorkflowHarness, request_body: Any, reason: str) -> None:
    started = upload(harness, "bad", request_body, {})
    assert started["executions"] == []
    (alert,) = harness.alerts()
    assert alert["Subject"] == "imgclf: batch request rejected" and reason in alert["Message"], alert["Message"]


# -- a .rec ---------------------------------------------------------------------------------------


def with_batch_strategy(templates: Dict[str, Dict[str, Any]], strategy: str) -> Dict[str, Dict[str, Any]]:
    """The templates of a stage whose batch.batch_strategy is ``strategy``: the key reaches the
    state machine in one place, the Plan state's payload (asserted here)."""
    default, wanted = '"batch_strategy":"MultiRecord"', f'"batch_strategy":"{strategy}"'
    assert json.dumps(templates).count("batch_strategy") == 1

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value.replace(default, wanted) if isinstance(value, str) else value

    swapped = swap(copy.deepcopy(templates))
    assert strategy == "MultiRecord" or swapped != templates
    return swapped


def packed(tmp_path: Path, images: List[bytes], with_idx: bool) -> Dict[str, bytes]:
    rec = write_rec(str(tmp_path / "data.rec"), [(float(i), image) for i, image in enumerate(images)], with_idx)
    found = {"data.rec": Path(rec).read_bytes()}
    if with_idx:
        found["data.idx"] = (tmp_path / "data.idx").read_bytes()
    return found


@pytest.mark.parametrize("strategy, with_idx", [("SingleRecord", True), ("MultiRecord", False)])
def test_a_rec_in_the_cloud_writes_what_imgclf_batch_writes(
    templates: Dict[str, Dict[str, Any]],
    archive: Path,
    tmp_path: Path,
    cli: Any,
    strategy: str,
    with_idx: bool,
) -> None:
    """Each record is classified; the one whose image cannot be decoded gets an error line in its
    place, the very line imgclf batch writes for it."""
    images = [IMAGES["a.png"], IMAGES["c.jpg"], BROKEN, IMAGES["a/1.png"], IMAGES["a-b/2.jpg"]]
    files = packed(tmp_path, images, with_idx)
    with WorkflowHarness(with_batch_strategy(templates, strategy)).running() as harness:
        register_model(harness, archive)
        output = run_batch(harness, "packed", {"input": "images/data.rec"}, files)
        lines = cloud_lines(harness, output)
        (request,) = harness.transform_requests
        failures = dict(harness.transform_failures)
    out = tmp_path / "local.jsonl"
    code, _, err = cli("batch", str(tmp_path / "data.rec"), "--model", str(archive), "-o", str(out))
    assert code == 1, err  # the broken record
    assert lines == [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["source"] for line in lines] == [f"#record {n}" for n in range(5)]
    assert lines[2]["error"]["code"] == "IMAGE_INVALID" and lines[2]["error"]["message"].startswith("HTTP 400: ")
    assert all("top_k" in line for i, line in enumerate(lines) if i != 2)
    assert output["plan"]["input_kind"] == "recordio" and output["plan"]["inputs"] == 5
    result = output["result"]
    assert (result["total"], result["classified"], result["failed"]) == (5, 4, {"IMAGE_INVALID": 1})
    assert result["transform_failure"] == "" and failures == {}
    assert request["TransformInput"]["SplitType"] == "RecordIO" and request["BatchStrategy"] == strategy
    assert request["TransformInput"]["ContentType"] == "application/x-recordio"
    assert request["TransformOutput"]["AssembleWith"] == "Line" and request["MaxPayloadInMB"] == 6
    bodies = list(request_bodies(files["data.rec"], request))
    assert len(bodies) == (5 if strategy == "SingleRecord" else 1)  # SageMaker's split, as the harness makes it


@pytest.mark.parametrize("case", ["a record too large", "damaged framing"])
def test_a_rec_that_cannot_be_split_fails_before_any_job(
    harness: WorkflowHarness, archive: Path, tmp_path: Path, case: str
) -> None:
    """SageMaker would fail the job on either (a record must fit MaxPayloadInMB; a split needs
    the framing): the plan's scan refuses the .rec with the record's number and byte offset."""
    register_model(harness, archive)
    second = len(frame(pack(0.0, png(8, 8))))
    if case == "a record too large":
        data = packed(tmp_path, [png(8, 8), bytes(6 << 20)], with_idx=False)["data.rec"]
        why = f"data.rec#record 1 @byte {second} is {(6 << 20) + 32} bytes, more than batch.max_payload_mb (6 MB)"
    else:
        data = packed(tmp_path, [png(8, 8), png(9, 9)], with_idx=False)["data.rec"]
        assert data[second : second + 4] == MAGIC_BYTES
        data = data[:second] + b"JUNK" + data[second + 4 :]
        why = f"data.rec#record 1 @byte {second}: expected the next record"
    started = upload(harness, "unsplittable", {"input": "images/data.rec"}, {"data.rec": data})
    (execution,) = started["executions"]
    arn = harness.state_machines["batch"].replace(":stateMachine:", ":execution:") + f":{execution}"
    assert harness.wait(arn)["status"] == "FAILED"
    failures = [json.loads(a["Message"]) for a in harness.alerts() if "batch failed" in a.get("Subject", "")]
    assert any(why in f["cause"] for f in failures), failures
    assert harness.transform_requests == []


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"MaxPayloadInMB": 101}, "MaxPayloadInMB: 101 is above 100"),
        ({"MaxConcurrentTransforms": 20, "MaxPayloadInMB": 6}, "MaxConcurrentTransforms: 20 x MaxPayloadInMB 6"),
        ({"BatchStrategy": "MultiRecord", "SplitType": "None"}, "MultiRecord needs a TransformInput.SplitType"),
    ],
)
def test_the_request_shapes_know_the_transform_job_s_limits(change: Dict[str, Any], problem: str) -> None:
    from .request_shapes import validate_request

    request: Dict[str, Any] = {
        "TransformJobName": "imgclf-dev-batch-0123456789",
        "ModelName": "imgclf-dev-batch-0123456789",
        "MaxPayloadInMB": 6,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://b/m.json"}},
            "ContentType": "application/x-recordio",
            "SplitType": "RecordIO",
        },
        "TransformOutput": {"S3OutputPath": "s3://b/out/", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    assert validate_request("sagemaker", "CreateTransformJob", request) == []
    split = change.pop("SplitType", None)
    if split:
        request["TransformInput"]["SplitType"] = split
    (found,) = validate_request("sagemaker", "CreateTransformJob", {**request, **change})
    assert problem in found
