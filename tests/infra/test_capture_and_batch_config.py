"""Endpoint data capture (DataCaptureConfig of the deployment's endpoint config) and the batch
stack's configuration, grants and request shapes: the capture request is valid for the API, the
model role may write the captures with the stage key, a stage without capture_percent creates no
capture; the batch keys are checked and a planted missing grant fails the transform job."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Iterator

import boto3
import pytest

from image_dataset.layout import RECORDIO
from imgclf_core.batch_request import IMAGES, transform_settings
from imgclf_core.s3_layout import BATCH_JOBS, CAPTURES, RESULT_PREFIXES, WORKING_PREFIXES
from infra.app import synthesize
from infra.batch_workflow import SETTINGS, transform_request
from infra.config import ConfigError, parse_stage

from .asl_harness import ACCOUNT, REGION, WorkflowHarness
from .aws_calls import Calls
from .conftest import stage_context
from .iam_model import KEY_ARN, PolicyModel, World
from .request_shapes import validate_request
from .test_deployment import approved_package, deploy, serving_resources

Templates = Dict[str, Dict[str, Any]]
BASE: Dict[str, Any] = {"account": "123456789012", "region": "eu-west-1"}
ENDPOINT = "imgclf-dev-endpoint"


@pytest.fixture(scope="module")
def capture_templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    endpoint = {"instance_type": "ml.m5.xlarge", "min_instances": 1, "max_instances": 2, "capture_percent": 20}
    return synthesize(stage_context(endpoint=endpoint), str(tmp_path_factory.mktemp("cdk.out")))


@pytest.fixture()
def capture_harness(capture_templates: Templates) -> Iterator[WorkflowHarness]:
    with WorkflowHarness(capture_templates).running() as running:
        yield running


# -- configuration --------------------------------------------------------------------------------


def test_batch_and_capture_defaults() -> None:
    stage = parse_stage("dev", BASE)
    assert stage.endpoint.capture_percent == 0
    assert (stage.batch.instance_type, stage.batch.instance_count, stage.batch.max_payload_mb) == ("ml.m5.xlarge", 1, 6)
    assert stage.batch.max_concurrent_transforms == 0 and stage.batch_state_machine == "imgclf-dev-batch"
    assert stage.batch.batch_strategy == "MultiRecord"
    gpu = parse_stage("dev", {**BASE, "batch": {"instance_type": "ml.g4dn.xlarge", "instance_count": 2}})
    assert "gpu" in gpu.image_uri("batch") and "cpu" in gpu.image_uri("inference")


@pytest.mark.parametrize(
    "change, key",
    [
        ({"batch": {"instance_type": "ml.p3.2xlarge"}}, "batch.instance_type"),
        ({"batch": {"instance_count": 0}}, "batch.instance_count"),
        ({"batch": {"max_payload_mb": 101}}, "batch.max_payload_mb"),
        ({"batch": {"max_payload_mb": 0}}, "batch.max_payload_mb"),
        ({"batch": {"max_concurrent_transforms": -1}}, "batch.max_concurrent_transforms"),
        ({"batch": {"batch_strategy": "AllAtOnce"}}, "batch.batch_strategy"),
        ({"batch": {"max_payload_mb": 20, "max_concurrent_transforms": 6}}, "batch.max_concurrent_transforms"),
        ({"batch": "big"}, "batch"),
        ({"endpoint": {"capture_percent": 101}}, "endpoint.capture_percent"),
        ({"endpoint": {"capture_percent": 12.5}}, "endpoint.capture_percent"),
        ({"endpoint": {"capture_percent": True}}, "endpoint.capture_percent"),
    ],
)
def test_bad_batch_and_capture_values_name_their_key(change: Dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_stage("dev", {**BASE, **change})
    assert err.value.key == f"imgclf:stages.dev.{key}"


def test_batch_outputs_and_captures_expire() -> None:
    assert BATCH_JOBS in RESULT_PREFIXES and WORKING_PREFIXES[CAPTURES] == 30


def test_transform_requests_are_valid_for_the_api_on_every_instance_kind() -> None:
    class Key:
        key_arn = KEY_ARN

    names = {"TransformJobName": "imgclf-dev-batch-0123456789", "ModelName": "imgclf-dev-batch-0123456789"}
    names.update(S3Uri="s3://b/batch-jobs/j/manifest.json", S3OutputPath="s3://b/batch-jobs/j/output/")

    def resolved(value: Any, settings: Dict[str, str]) -> Any:
        """The request as the state resolves it: the plan's names, locations and settings."""
        if not isinstance(value, dict):
            return value
        found = {}
        for key, item in value.items():
            name = key.removesuffix(".$")
            if key.endswith(".$"):
                found[name] = settings[item.rsplit(".", 1)[-1]] if item.startswith(SETTINGS) else names[name]
            else:
                found[name] = resolved(item, settings)
        return found

    for instance, volume_key, strategy in (
        ("ml.m5.2xlarge", True, "SingleRecord"),
        ("ml.g4dn.xlarge", False, "MultiRecord"),
    ):
        batch = {"instance_type": instance, "max_concurrent_transforms": 4, "batch_strategy": strategy}
        stage = parse_stage("dev", {**BASE, "batch": batch})
        request = transform_request(stage, Key())  # type: ignore[arg-type]
        for kind in (IMAGES, RECORDIO):
            found = resolved(request, transform_settings(kind, stage.batch.batch_strategy))
            assert validate_request("sagemaker", "CreateTransformJob", found) == []
            assert ("VolumeKmsKeyId" in found["TransformResources"]) is volume_key
            assert found["MaxConcurrentTransforms"] == 4
            assert found["BatchStrategy"] == (strategy if kind == RECORDIO else "SingleRecord")


# -- data capture ---------------------------------------------------------------------------------


def _endpoint_config_request(templates: Templates) -> Dict[str, Any]:
    from infra.diagram import asl_definition

    (machine,) = [
        r
        for r in templates["Imgclf-dev-Serving"]["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    return dict(asl_definition(machine)["States"]["CreateEndpointConfig"]["Parameters"])


def test_without_capture_percent_no_capture_is_configured(templates: Templates) -> None:
    assert "DataCaptureConfig" not in _endpoint_config_request(templates)


def test_the_endpoint_config_captures_requests_and_answers(capture_templates: Templates) -> None:
    capture = _endpoint_config_request(capture_templates)["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 20
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json", "application/jsonlines"]}
    assert json.dumps(capture["DestinationS3Uri"]).count("captures") == 1
    assert (
        validate_request(
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "imgclf-dev-v1",
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.xlarge"}],
                "DataCaptureConfig": {
                    **capture,
                    "DestinationS3Uri": f"s3://imgclf-dev-artifacts-{ACCOUNT}-{REGION}/captures",
                    "KmsKeyId": KEY_ARN,
                },
            },
        )
        == []
    )


def test_the_model_role_may_write_captures_with_the_stage_key_and_nothing_else(capture_templates: Templates) -> None:
    world = World(capture_templates)
    model = PolicyModel(world)
    (role,) = {
        world.attrs[stack, logical, "Arn"]
        for stack, logical, _ in world.resources_of_type("AWS::IAM::Role")
        if "DeploymentModelRole" in logical
    }
    bucket = f"imgclf-dev-artifacts-{ACCOUNT}-{REGION}"
    capture = {"DestinationS3Uri": f"s3://{bucket}/captures", "KmsKeyId": KEY_ARN, "InitialSamplingPercentage": 20}
    calls = Calls(world).endpoint_capture(role, ENDPOINT, capture)
    assert calls and all(model.decide(call) is None for call in calls), [model.decide(c) for c in calls]
    other = Calls(world).endpoint_capture(role, "another-endpoint", capture)
    assert any(model.decide(call) for call in other), "the role writes only its endpoint's captures"
    without = PolicyModel(World(_templates_without_capture()))
    (plain_role,) = {
        without.world.attrs[stack, logical, "Arn"]
        for stack, logical, _ in without.world.resources_of_type("AWS::IAM::Role")
        if "DeploymentModelRole" in logical
    }
    assert any(without.decide(call) for call in Calls(without.world).endpoint_capture(plain_role, ENDPOINT, capture))


def _templates_without_capture() -> Templates:
    import tempfile

    return synthesize(stage_context(), tempfile.mkdtemp(prefix="cdk-nocapture-"))


def test_a_deployment_with_capture_is_authorized_end_to_end(capture_harness: WorkflowHarness) -> None:
    result = deploy(capture_harness, approved_package())
    assert result["status"] == "SUCCEEDED", result["explained"]
    config = serving_resources()["config"]
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    captures = [c for c in capture_harness.calls if "data capture" in c.why]
    assert captures and all(c.action in ("s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt") for c in captures)


# -- a planted defect in the batch role fails the transform job ------------------------------------


def test_a_batch_role_without_its_output_grant_fails_the_job(templates: Templates, tmp_path: Path) -> None:
    changed = copy.deepcopy(templates)
    found = 0
    for resource in changed["Imgclf-dev-Batch"]["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or "ModelRole" not in json.dumps(resource["Properties"]["Roles"]):
            continue
        statements = resource["Properties"]["PolicyDocument"]["Statement"]
        kept = [s for s in statements if "s3:PutObject" not in json.dumps(s.get("Action"))]
        found += len(statements) - len(kept)
        resource["Properties"]["PolicyDocument"]["Statement"] = kept
    assert found == 1
    from .test_batch_workflow import IMAGES, register_model, upload

    with WorkflowHarness(changed).running(check_iam=False) as harness:
        archive = tmp_path / "model.tar.gz"
        archive.write_bytes(b"never served: the job fails before it starts")
        register_model(harness, archive)
        (execution,) = upload(harness, "denied", {"input": "images/"}, {"a.png": IMAGES["a.png"]})["executions"]
        arn = harness.state_machines["batch"].replace(":stateMachine:", ":execution:") + f":{execution}"
        harness.wait(arn, timeout=120)
        assert any("s3:PutObject" in text and "batch-jobs/" in text for text in harness.denied), harness.denied
        s3 = boto3.client("s3", region_name=REGION)
        (line,) = [
            json.loads(x)
            for x in s3.get_object(
                Bucket=harness.artifacts_bucket,
                Key=next(
                    o["Key"]
                    for o in s3.list_objects_v2(Bucket=harness.artifacts_bucket, Prefix=BATCH_JOBS)["Contents"]
                    if o["Key"].endswith("predictions.jsonl")
                ),
            )["Body"]
            .read()
            .decode()
            .splitlines()
        ]
        assert line["error"]["code"] == "MODEL_ERROR" and "AccessDenied" not in line["source"]
