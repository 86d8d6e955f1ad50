"""CDK assertions on the synthesized templates, cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from aws_cdk.assertions import Match, Template

from infra.app import synthesize

from .conftest import stage_context

Templates = Dict[str, Dict[str, Any]]


def template(templates: Templates, part: str) -> Template:
    return Template.from_json(templates[f"Imgclf-dev-{part}"])


def definition(templates: Templates, part: str) -> Dict[str, Any]:
    """A state machine's ASL with tokens left as placeholders."""
    from infra.diagram import asl_definition

    (machine,) = [
        r
        for r in templates[f"Imgclf-dev-{part}"]["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    return asl_definition(machine)


def test_four_stacks_per_stage(templates: Templates) -> None:
    assert sorted(templates) == ["Imgclf-dev-Batch", "Imgclf-dev-Data", "Imgclf-dev-Serving", "Imgclf-dev-Training"]


def test_buckets_are_encrypted_versioned_private_logged_and_ssl_only(templates: Templates) -> None:
    data = template(templates, "Data")
    data.resource_count_is("AWS::S3::Bucket", 3)
    for name in ("imgclf-dev-datasets-111111111111-us-east-1", "imgclf-dev-artifacts-111111111111-us-east-1"):
        data.has_resource_properties(
            "AWS::S3::Bucket",
            {
                "BucketName": name,
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        Match.object_like(
                            {"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})}
                        )
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": Match.object_like(
                    {"BlockPublicAcls": True, "RestrictPublicBuckets": True}
                ),
                "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
                "LifecycleConfiguration": Match.any_value(),
            },
        )
    data.resource_properties_count_is(
        "Custom::S3BucketNotifications",
        {"NotificationConfiguration": {"EventBridgeConfiguration": {}}, "BucketName": Match.any_value()},
        2,
    )
    policies = data.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3 and all("aws:SecureTransport" in json.dumps(p) for p in policies.values())
    data.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_training_request_has_spot_checkpoints_isolation_and_encryption(templates: Templates) -> None:
    train = definition(templates, "Training")["States"]["Train"]
    assert train["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    request = train["Parameters"]
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400, "MaxWaitTimeInSeconds": 28800}
    assert request["CheckpointConfig"] == {"S3Uri.$": "$.plan.CheckpointS3Uri"}
    assert request["EnableNetworkIsolation"] is True and request["EnableInterContainerTrafficEncryption"] is True
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith("mxnet-training:1.9.0-gpu-py38")
    names = [m["Name"] for m in request["AlgorithmSpecification"]["MetricDefinitions"]]
    assert names == ["train:accuracy", "validation:accuracy"]


def test_large_datasets_fan_out_over_a_distributed_map(templates: Templates) -> None:
    states = definition(templates, "Training")["States"]
    assert states["FansOut"]["Choices"][0] == {
        "Variable": "$.validation.shards",
        "IsPresent": True,
        "Next": "CheckShards",
    }
    check = states["CheckShards"]
    assert check["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert check["ItemReader"]["Resource"].endswith(":states:::s3:getObject")
    assert check["ItemReader"]["Parameters"] == {
        "Bucket.$": "$.validation.work.bucket",
        "Key.$": "$.validation.work.items",
    }
    assert check["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert check["MaxConcurrency"] == 40 and check["ItemSelector"]["shard.$"] == "$$.Map.Item.Value"
    assert check["Catch"] and check["Next"] == "MergeShards"
    assert not {"ToleratedFailureCount", "ToleratedFailurePercentage"} & set(check)  # none tolerated
    inner = check["ItemProcessor"]["States"]["CheckShard"]
    assert "Lambda.TooManyRequestsException" in inner["Retry"][0]["ErrorEquals"]
    assert inner["Retry"][-1]["ErrorEquals"] == ["States.ALL"] and inner["Retry"][-1]["MaxAttempts"] == 1
    handlers = {
        f["Properties"]["Handler"]: f["Properties"]["Environment"]["Variables"]
        for f in template(templates, "Training").find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"].startswith("lambdas.validate.")
    }
    assert set(handlers) == {f"lambdas.validate.handler.{h}" for h in ("handler", "shard_handler", "merge_handler")}
    assert all(env["SHARD_BYTES"] == str(1 << 30) and env["SHARD_IMAGES"] == "5000" for env in handlers.values())
    template(templates, "Data").has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "imgclf-dev-artifacts-111111111111-us-east-1",
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [Match.object_like({"Prefix": "validation/", "ExpirationInDays": 7, "Status": "Enabled"})]
                )
            },
        },
    )


def test_every_task_retries_and_catches(templates: Templates) -> None:
    for part in ("Training", "Serving"):
        for name, state in definition(templates, part)["States"].items():
            if state["Type"] != "Task":
                continue
            assert state.get("Catch"), f"{part} {name} has no Catch"
            if ":lambda:" in json.dumps(state) or "aws-sdk" in state["Resource"] or "sagemaker" in state["Resource"]:
                assert state.get("Retry"), f"{part} {name} has no Retry"


def test_blue_green_update_with_alarms_and_auto_rollback(templates: Templates) -> None:
    update = definition(templates, "Serving")["States"]["UpdateEndpoint"]
    assert update["Resource"].endswith(":states:::aws-sdk:sagemaker:updateEndpoint")
    config = update["Parameters"]["DeploymentConfig"]
    # one instance: no canary fits (at most half the fleet), so all at once with a baking period
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 300,
    }
    alarms = [a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == ["imgclf-dev-endpoint-5xx", "imgclf-dev-endpoint-latency"]
    serving = template(templates, "Serving")
    for alarm in alarms:
        serving.has_resource_properties("AWS::CloudWatch::Alarm", {"AlarmName": alarm, "Namespace": "AWS/SageMaker"})


def test_functions_run_the_newest_python_on_arm(templates: Templates) -> None:
    for part in ("Serving", "Training"):
        functions = template(templates, part).find_resources("AWS::Lambda::Function")
        ours = [f for f in functions.values() if f["Properties"]["Handler"].startswith("lambdas.")]
        assert ours and all(f["Properties"]["Runtime"] == "python3.14" for f in ours)
        assert all(f["Properties"]["Architectures"] == ["arm64"] for f in ours)
        assert all(f["Properties"]["TracingConfig"] == {"Mode": "Active"} for f in ours)


def test_api_takes_binary_images_with_iam_auth_throttling_and_access_logs(templates: Templates) -> None:
    serving = template(templates, "Serving")
    serving.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"BinaryMediaTypes": ["image/jpeg", "image/png", "application/x-image"]}
    )
    serving.has_resource_properties("AWS::ApiGateway::Method", {"HttpMethod": "POST", "AuthorizationType": "AWS_IAM"})
    serving.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100})]
            ),
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
        },
    )


def test_upload_rule_matches_only_descriptors(templates: Templates) -> None:
    rules = template(templates, "Training").find_resources("AWS::Events::Rule")
    (rule,) = rules.values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "datasets/*/*/dataset.json"}]
    assert rule["Properties"]["Targets"][0]["DeadLetterConfig"]


def test_manual_approval_rule_starts_the_deployment(templates: Templates) -> None:
    rules = template(templates, "Serving").find_resources("AWS::Events::Rule")
    (rule,) = rules.values()
    detail = rule["Properties"]["EventPattern"]["detail"]
    assert detail["ModelApprovalStatus"] == ["Approved"] and detail["CustomerMetadataProperties"] == {
        "approval": ["manual"]
    }


def test_teardown_custom_resource(templates: Templates) -> None:
    template(templates, "Serving").resource_count_is("Custom::ImgclfEndpointCleanup", 1)


def test_cognito_option(tmp_path: Path) -> None:
    templates = synthesize(stage_context(api_auth="cognito"), str(tmp_path))
    serving = template(templates, "Serving")
    serving.resource_count_is("AWS::Cognito::UserPool", 1)
    serving.has_resource_properties(
        "AWS::ApiGateway::Method", {"HttpMethod": "POST", "AuthorizationType": "COGNITO_USER_POOLS"}
    )


def test_an_unacknowledged_finding_fails_synth(tmp_path: Path) -> None:
    """cdk-nag runs in the app: a wildcard without its acknowledgement stops synth."""
    from aws_cdk import aws_iam as iam

    import infra.stacks as stacks

    original = stacks.DataStack.__init__

    def with_wildcard(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        role = iam.Role(self, "Careless", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))

    stacks.DataStack.__init__ = with_wildcard  # type: ignore[method-assign]
    try:
        with pytest.raises(Exception, match="ValidationFailed"):
            synthesize(stage_context(), str(tmp_path))
    finally:
        stacks.DataStack.__init__ = original  # type: ignore[method-assign]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules: List[str] = [v["ruleName"] for r in report["pluginReports"] for v in r["violations"]]
    assert "AwsSolutions-IAM5[Action::s3:*]" in rules


def test_cfn_lint_is_clean(assembly_dir: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, sorted(assembly_dir.glob("*.template.json")))],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_diagrams_are_current(templates: Templates) -> None:
    from infra.diagram import OUTPUT, render

    assert OUTPUT.read_text() == render(templates), "run `make diagrams`"
