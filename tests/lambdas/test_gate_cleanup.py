"""The evaluation step and the teardown custom resource, against moto."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterator, List
from unittest import mock

import boto3
import pytest

from imgclf_core.environment import GateEnvironment
from imgclf_core.gate import approval_status, decide
from lambdas.cleanup.logic import remove_deployments
from lambdas.deploy.logic import deployment_plan, version_of
from lambdas.gate.logic import BASELINE_FILE, UnreadableBaseline, baseline_from_output, evaluation_from_output
from tests.builders import tar_gz

from .conftest import REGION, Context


def test_evaluation_is_read_from_output_tar_gz() -> None:
    data = tar_gz({"evaluation.json": json.dumps({"accuracy": 0.9}).encode(), "validation-report.json": b"{}"})
    assert evaluation_from_output(data) == {"accuracy": 0.9}
    with pytest.raises(ValueError, match="no evaluation.json"):
        evaluation_from_output(tar_gz({"other": b""}))
    with pytest.raises(ValueError, match="cannot be read"):
        evaluation_from_output(b"not a tarball")


def test_the_baseline_is_read_from_output_tar_gz_as_the_job_wrote_it() -> None:
    # Given output.tar.gz with baseline.json beside evaluation.json, in SageMaker's ./ form too
    written = b'{"version": 1,\n "labels": ["cat", "dog"]}'
    evaluation = json.dumps({"accuracy": 0.9}).encode()
    # When the gate reads it, Then it gets the job's bytes unchanged (the registry's copy equals the model's)
    assert baseline_from_output(tar_gz({"evaluation.json": evaluation, BASELINE_FILE: written})) == written
    assert baseline_from_output(tar_gz({"./baseline.json": written})) == written
    # a baseline.json below the root is not the job's (output/data is the archive's root)
    assert baseline_from_output(tar_gz({"evaluation.json": evaluation, "sub/baseline.json": written})) is None


def test_a_job_without_a_baseline_has_none_and_still_its_evaluation() -> None:
    data = tar_gz({"evaluation.json": json.dumps({"accuracy": 0.9}).encode()})
    assert baseline_from_output(data) is None
    assert evaluation_from_output(data) == {"accuracy": 0.9}
    with pytest.raises(ValueError, match="cannot be read"):  # no archive at all is no "absent"
        baseline_from_output(b"not a tarball")


@pytest.mark.parametrize(
    "content, problem",
    [
        (b'{"version": 1, "labels": [', "baseline.json in output.tar.gz is not JSON"),
        (b"\xff\xfe\xfa not text", "baseline.json in output.tar.gz is not JSON"),
        (b"[1, 2]", "baseline.json in output.tar.gz is list, not a JSON object"),
    ],
)
def test_an_unreadable_baseline_is_a_clear_error(content: bytes, problem: str) -> None:
    with pytest.raises(UnreadableBaseline, match=re.escape(problem)):
        baseline_from_output(tar_gz({"evaluation.json": b"{}", BASELINE_FILE: content}))


def test_the_gate_reads_the_file_training_writes() -> None:
    from image_training import baseline

    assert BASELINE_FILE == baseline.FILE_NAME


def test_approval_follows_the_gate_and_the_mode() -> None:
    passed, failed = decide({"accuracy": 0.9}, 0.8), decide({"accuracy": 0.7}, 0.8)
    assert approval_status(passed, "auto") == "Approved"
    assert approval_status(passed, "manual") == "PendingManualApproval"
    assert approval_status(failed, "auto") == approval_status(failed, "manual") == "Rejected"
    assert not decide({"accuracy": 0.85}, 0.8, {"accuracy": 0.9}).approved


def run_gate(output: Dict[str, bytes], job: str = "job-1") -> Dict[str, Any]:
    """The gate handler on a job whose output.tar.gz holds ``output``, with no approved model."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="art")
    s3.put_object(Bucket="art", Key=f"training-jobs/{job}/output/output.tar.gz", Body=tar_gz(output))
    boto3.client("sagemaker", region_name=REGION).create_model_package_group(ModelPackageGroupName="g")
    env = GateEnvironment(
        model_package_group="g", accuracy_threshold=0.8, max_regression=0.0, approval_mode="auto"
    ).as_environment()
    from lambdas.gate.handler import handler

    training = {"TrainingJobName": job, "OutputDataConfig": {"S3OutputPath": "s3://art/training-jobs"}}
    with mock.patch.dict(os.environ, env):
        return dict(handler({"training": training}, Context()))


def copies(job: str = "job-1") -> List[str]:
    found = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket="art", Prefix=f"evaluations/{job}/")
    return sorted(o["Key"] for o in found.get("Contents", []))


def test_gate_handler_copies_the_baseline_beside_the_evaluation(aws: None) -> None:
    written = json.dumps({"version": 1, "labels": ["cat", "dog"]}, indent=1).encode()
    result = run_gate({"evaluation.json": json.dumps({"accuracy": 0.91}).encode(), "baseline.json": written})
    assert result["status"] == "Approved"
    assert result["baseline_uri"] == "s3://art/evaluations/job-1/baseline.json"
    assert result["evaluation_uri"] == "s3://art/evaluations/job-1/evaluation.json"
    copy = boto3.client("s3", region_name=REGION).get_object(Bucket="art", Key="evaluations/job-1/baseline.json")
    assert copy["Body"].read() == written and copy["ContentType"] == "application/json"


def test_gate_handler_marks_a_missing_baseline_absent(aws: None) -> None:
    result = run_gate({"evaluation.json": json.dumps({"accuracy": 0.91}).encode()})
    assert result["status"] == "Approved" and "baseline_uri" in result and result["baseline_uri"] is None
    assert copies() == ["evaluations/job-1/evaluation.json"]


def test_gate_handler_registers_without_an_unreadable_baseline(aws: None, caplog: pytest.LogCaptureFixture) -> None:
    """A baseline never costs the model (image_training.baseline.for_model): one that cannot be
    read is left out with a warning that says why, and the model is gated as any other."""
    result = run_gate({"evaluation.json": json.dumps({"accuracy": 0.91}).encode(), "baseline.json": b"{not json"})
    assert result["status"] == "Approved" and result["baseline_uri"] is None
    assert copies() == ["evaluations/job-1/evaluation.json"]
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == "baseline not recorded" and warning.job == "job-1"
    assert warning.reason.startswith("baseline.json in output.tar.gz is not JSON: ")


def test_gate_handler_compares_with_the_approved_model(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="art")
    s3.put_object(
        Bucket="art",
        Key="training-jobs/job-1/output/output.tar.gz",
        Body=tar_gz({"evaluation.json": json.dumps({"accuracy": 0.91}).encode()}),
    )
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    sagemaker.create_model_package(
        ModelPackageGroupName="g",
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"accuracy": "0.95"},
        InferenceSpecification={
            "Containers": [{"Image": "i"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )
    env = GateEnvironment(
        model_package_group="g", accuracy_threshold=0.8, max_regression=0.0, approval_mode="auto"
    ).as_environment()
    from lambdas.gate.handler import handler

    job = {"TrainingJobName": "job-1", "OutputDataConfig": {"S3OutputPath": "s3://art/training-jobs"}}
    with mock.patch.dict(os.environ, env):
        result = handler({"training": job}, Context())
    assert result["status"] == "Rejected" and "0.95" in result["reason"]
    copy = s3.get_object(Bucket="art", Key="evaluations/job-1/evaluation.json")
    assert json.loads(copy["Body"].read())["accuracy"] == 0.91


def test_deployment_plan_paths() -> None:
    package = {"ModelPackageVersion": 3, "ModelPackageArn": "arn:p/3", "ModelApprovalStatus": "Approved"}
    assert deployment_plan(package, None, "imgclf-dev", "run")["action"] == "create"
    serving_v2 = {"EndpointConfigName": "imgclf-dev-v2-abcdef12", "EndpointStatus": "InService"}
    plan = deployment_plan(package, serving_v2, "imgclf-dev", "run")
    assert plan["action"] == "update" and plan["endpoint_config_name"].startswith("imgclf-dev-v3-")
    assert len(plan["model_name"]) <= 63
    assert (
        deployment_plan(package, {**serving_v2, "EndpointConfigName": "imgclf-dev-v3-x"}, "imgclf-dev", "r")["action"]
        == "skip"
    )
    assert deployment_plan(package, {**serving_v2, "EndpointStatus": "Updating"}, "imgclf-dev", "r")["action"] == "busy"
    assert deployment_plan({**package, "ModelApprovalStatus": "Rejected"}, None, "imgclf-dev", "r")["action"] == "skip"
    assert version_of("other-v3-x", "imgclf-dev") is None


def remove_dev_deployments(sagemaker: Any) -> Dict[str, List[str]]:
    """The clean-up of the dev stage, as its custom resource runs it."""
    return remove_deployments(
        sagemaker,
        boto3.client("application-autoscaling", region_name=REGION),
        "imgclf-dev-endpoint",
        "imgclf-dev",
        group="imgclf-dev-models",
    )


def test_cleanup_removes_only_what_the_stage_created(aws: None) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    role = "arn:aws:iam::123456789012:role/r"
    for name in ("imgclf-dev-v1-aaaa", "imgclf-dev-v2-bbbb", "someone-else"):
        sagemaker.create_model(ModelName=name, ExecutionRoleArn=role, PrimaryContainer={"Image": "i"})
        sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InstanceType": "ml.m5.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )
    sagemaker.create_endpoint(EndpointName="imgclf-dev-endpoint", EndpointConfigName="imgclf-dev-v2-bbbb")
    removed = remove_dev_deployments(sagemaker)
    assert removed["endpoints"] == ["imgclf-dev-endpoint"]
    assert sorted(removed["models"]) == ["imgclf-dev-v1-aaaa", "imgclf-dev-v2-bbbb"]
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == ["someone-else"]


@pytest.fixture()
def registry_deletes(aws: None) -> Iterator[None]:
    """DeleteModelPackage and DeleteModelPackageGroup, which moto 5.2.5 lacks (moto_gaps.py)."""
    from tests.moto_gaps import model_package_deletes

    with model_package_deletes():
        yield


def test_cleanup_empties_the_model_package_group(registry_deletes: None) -> None:
    """Deleting the Serving stack deletes the Model Package Group, which SageMaker refuses while
    it holds versions: the clean-up deletes them first, and the group's deletion then succeeds."""
    from botocore.exceptions import ClientError

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName="imgclf-dev-models")
    sagemaker.create_model_package_group(ModelPackageGroupName="other-models")
    spec = {
        "Containers": [{"Image": "i", "ModelDataUrl": "s3://b/model.tar.gz"}],
        "SupportedContentTypes": ["image/jpeg"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    for group, count in (("imgclf-dev-models", 3), ("other-models", 1)):
        for _ in range(count):
            sagemaker.create_model_package(ModelPackageGroupName=group, InferenceSpecification=spec)
    with pytest.raises(ClientError, match="ConflictException"):
        sagemaker.delete_model_package_group(ModelPackageGroupName="imgclf-dev-models")
    removed = remove_dev_deployments(sagemaker)
    assert [arn.rsplit("/", 1)[1] for arn in removed["model_packages"]] == ["1", "2", "3"]
    sagemaker.delete_model_package_group(ModelPackageGroupName="imgclf-dev-models")  # CloudFormation's step
    left = sagemaker.list_model_packages(ModelPackageGroupName="other-models")["ModelPackageSummaryList"]
    assert len(left) == 1
