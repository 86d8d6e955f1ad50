"""The deployment side of issue 12, on the synthesized templates and in the offline harness:
what the deployment workflow and the clean-up may do in IAM, the traffic routing SageMaker
accepts for the fleet, what a failure after the switch leaves serving, the teardown order of the
Model Package Group and the API's size limits from API Gateway to the endpoint."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List
from unittest import mock

import boto3
import pytest

from imgclf_core.payload_limits import API_GATEWAY_PAYLOAD, INVOKE_ENDPOINT_PAYLOAD, LAMBDA_SYNC_PAYLOAD, MAX_BODY_BYTES
from infra.app import synthesize
from infra.deployment_workflow import BAKING_SECONDS, traffic_routing

from .asl_harness import ACCOUNT, REGION, WorkflowHarness
from .conftest import stage_context
from .iam_model import Call, PolicyModel, World

Templates = Dict[str, Dict[str, Any]]

SM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
ENDPOINT = f"{SM}:endpoint/imgclf-dev-endpoint"
MODELS = f"{SM}:model/imgclf-dev-*"
CONFIGS = f"{SM}:endpoint-config/imgclf-dev-*"
PACKAGES = f"{SM}:model-package/imgclf-dev-models/*"
# Application Auto Scaling names the alarms of a target-tracking policy TargetTracking-<resource id>-...
ALARM = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:TargetTracking-endpoint/imgclf-dev-endpoint/variant/AllTraffic"
# what a caller of RegisterScalableTarget, PutScalingPolicy and DeregisterScalableTarget needs on
# the target service and CloudWatch ("Permissions required for API actions on target services
# and CloudWatch", SageMaker endpoints), each on the resource it concerns
SCALING_CALLER = [
    ("sagemaker:DescribeEndpoint", ENDPOINT),
    ("sagemaker:DescribeEndpointConfig", f"{SM}:endpoint-config/imgclf-dev-v1-0123abcd"),
    ("sagemaker:UpdateEndpointWeightsAndCapacities", ENDPOINT),
    ("cloudwatch:DescribeAlarms", f"{ALARM}-AlarmHigh-1234"),
    ("cloudwatch:PutMetricAlarm", f"{ALARM}-AlarmLow-1234"),
    ("cloudwatch:DeleteAlarms", f"{ALARM}-AlarmHigh-1234"),
]


# -- IAM over the template ---------------------------------------------------------------------


def serving(templates: Templates) -> Dict[str, Any]:
    return templates["Imgclf-dev-Serving"]


def state_machine_role(world: World) -> str:
    """The deployment state machine's role ARN."""
    return world.state_machine_role(f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:imgclf-dev-deployment")


def function_role(world: World, handler: str) -> str:
    (logical,) = [
        logical
        for _, logical, resource in world.resources_of_type("AWS::Lambda::Function")
        if resource["Properties"].get("Handler") == handler
    ]
    return world.function_role(logical)


def permits(model: PolicyModel, role: str, action: str, arn: str) -> bool:
    return model.decide(Call(role, action, arn, "test")) is None


def test_the_deployment_role_may_tag_what_it_creates(world: World, model: PolicyModel) -> None:
    """Defect 5: CreateModel, CreateEndpointConfig and CreateEndpoint carry Tags, which
    SageMaker authorizes as sagemaker:AddTags on the resource being created."""
    assert model.resources_allowed(state_machine_role(world), "sagemaker:AddTags") == {MODELS, CONFIGS, ENDPOINT}


@pytest.mark.parametrize("who", ["deployment workflow", "cleanup"])
def test_scaling_callers_hold_the_target_service_permissions(world: World, model: PolicyModel, who: str) -> None:
    """Defect 6: Application Auto Scaling checks the caller's own SageMaker and CloudWatch
    permissions when it registers, changes or deregisters an endpoint variant's scaling."""
    role = (
        state_machine_role(world)
        if who == "deployment workflow"
        else function_role(world, "lambdas.cleanup.handler.handler")
    )
    missing = [(action, arn) for action, arn in SCALING_CALLER if not permits(model, role, action, arn)]
    assert not missing, f"the {who} may not: {missing}"
    for action, _ in SCALING_CALLER:
        assert "*" not in model.resources_allowed(role, action), f"{action} is granted on every resource"
    assert not permits(model, role, "cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:other")


# -- traffic routing -------------------------------------------------------------------------


@pytest.mark.parametrize("instances", [1, 2, 3, 10, 19, 20, 100])
def test_traffic_routing_is_valid_for_the_new_fleet(instances: int) -> None:
    routing = traffic_routing(instances)
    assert WorkflowHarness.routing_error(routing, instances) is None, routing
    if instances == 1:  # no canary fits in one instance: all at once, baked under the alarms
        assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": BAKING_SECONDS}
    else:
        assert routing["Type"] == "CANARY" and routing["CanarySize"]["Type"] == "INSTANCE_COUNT"
        assert 1 <= routing["CanarySize"]["Value"] <= instances // 2


@pytest.mark.parametrize(
    "routing, instances",
    [
        ({"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 300}, 1),
        ({"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 2}, "WaitIntervalInSeconds": 300}, 3),
        ({"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60}, "WaitIntervalInSeconds": 300}, 10),
        ({"Type": "CANARY", "WaitIntervalInSeconds": 300}, 4),
        ({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 3601}, 1),
    ],
    ids=["percent-of-one", "two-of-three", "sixty-percent", "no-size", "wait-too-long"],
)
def test_the_harness_refuses_what_sagemaker_refuses(routing: Dict[str, Any], instances: int) -> None:
    assert WorkflowHarness.routing_error(routing, instances)


def update_policy(templates: Templates) -> Dict[str, Any]:
    from infra.diagram import asl_definition

    (machine,) = [
        r for r in serving(templates)["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    states = asl_definition(machine)["States"]
    return {
        "config": states["UpdateEndpoint"]["Parameters"]["DeploymentConfig"],
        "instances": states["CreateEndpointConfig"]["Parameters"]["ProductionVariants"][0]["InitialInstanceCount"],
    }


def test_the_synthesized_update_fits_min_instances(templates: Templates, tmp_path: Path) -> None:
    """The routing is computed from ``endpoint.min_instances`` (the new fleet's size) at synth."""
    for instances in (1, 2, 12):
        if instances == 1:
            found = update_policy(templates)
        else:
            endpoint = {"instance_type": "ml.m5.xlarge", "min_instances": instances, "max_instances": instances + 2}
            found = update_policy(synthesize(stage_context(endpoint=endpoint), str(tmp_path / str(instances))))
        routing = found["config"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
        assert found["instances"] == instances
        assert routing == traffic_routing(instances)
        assert WorkflowHarness.routing_error(routing, instances) is None
        alarms = found["config"]["AutoRollbackConfiguration"]["Alarms"]
        assert [a["AlarmName"] for a in alarms] == ["imgclf-dev-endpoint-5xx", "imgclf-dev-endpoint-latency"]


# -- the deployment workflow in the harness --------------------------------------------------


def approved_package() -> str:
    """A new approved version in the stage's Model Package Group, as the training workflow
    registers it (the stage's inference image, a model under training-jobs/); returns its ARN."""
    from infra.config import parse_stage

    stage = parse_stage("dev", stage_context()["imgclf:stages"]["dev"])
    data = f"s3://{stage.artifacts_bucket}/training-jobs/job/output/model.tar.gz"
    return str(
        boto3.client("sagemaker", region_name=REGION).create_model_package(
            ModelPackageGroupName="imgclf-dev-models",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": stage.image_uri("inference"), "ModelDataUrl": data}],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
    )


def deploy(harness: WorkflowHarness, arn: str) -> Dict[str, Any]:
    execution = harness.start("deployment", {"model_package_arn": arn})
    result = harness.wait(execution)
    result["explained"] = harness.explain(execution)
    return result


@pytest.fixture()
def harness(templates: Templates) -> Iterator[WorkflowHarness]:
    with WorkflowHarness(templates).running() as running:
        yield running


def serving_resources() -> Dict[str, Any]:
    """What the endpoint serves, read back from moto: config name, config and model."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    name = sagemaker.describe_endpoint(EndpointName="imgclf-dev-endpoint")["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return {"name": name, "config": config, "model": model}


@pytest.mark.parametrize("action", ["registerScalableTarget", "putScalingPolicy"])
@pytest.mark.parametrize("path", ["create", "update"])
def test_a_scaling_failure_after_the_switch_keeps_what_the_endpoint_serves(
    harness: WorkflowHarness, action: str, path: str
) -> None:
    """Defect 6: once the endpoint serves the new config, a failure must not delete the model
    and endpoint config it serves; the run fails and says that they were kept."""
    if path == "update":
        first = deploy(harness, approved_package())
        assert first["status"] == "SUCCEEDED", first["explained"]
    harness.scaling_errors[action] = "ValidationException"
    result = deploy(harness, approved_package())
    assert result["status"] == "FAILED", result["explained"]
    live = serving_resources()  # raises if moto no longer has the config or the model
    version = 1 if path == "create" else 2
    assert live["name"].startswith(f"imgclf-dev-v{version}-"), live["name"]
    assert "entered DeployedWithoutScaling" in result["explained"], result["explained"]
    assert "DeleteNewEndpointConfig" not in result["explained"] and "DeleteNewModel" not in result["explained"]


def planted(templates: Templates, routing: Dict[str, Any]) -> Templates:
    """The templates with another TrafficRoutingConfiguration in the deployment definition."""
    changed = copy.deepcopy(templates)
    (machine,) = [r for r in serving(changed)["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    old = json.dumps(traffic_routing(1), separators=(",", ":"))
    new = json.dumps(routing, separators=(",", ":"))
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    hits = [i for i, part in enumerate(parts) if isinstance(part, str) and old in part]
    assert len(hits) == 1, "the definition's routing was not found"
    parts[hits[0]] = parts[hits[0]].replace(old, new)
    return changed


def test_an_invalid_canary_fails_the_update_as_sagemaker_would(templates: Templates) -> None:
    """A canary of 10% on one instance is more than half the fleet: SageMaker answers
    ValidationException, the new model and config are removed and the old one keeps serving."""
    canary = {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 300}
    with WorkflowHarness(planted(templates, canary)).running() as harness:
        first = deploy(harness, approved_package())
        assert first["status"] == "SUCCEEDED", first["explained"]
        before = serving_resources()["name"]
        second = deploy(harness, approved_package())
        assert second["status"] == "FAILED", second["explained"]
        assert "at most 50% of the new fleet" in second["explained"], second["explained"]
        assert "entered DeleteNewEndpointConfig" in second["explained"]
        assert serving_resources()["name"] == before
        configs = boto3.client("sagemaker", region_name=REGION).list_endpoint_configs()["EndpointConfigs"]
        assert not any(c["EndpointConfigName"].startswith("imgclf-dev-v2-") for c in configs)


# -- teardown --------------------------------------------------------------------------------


def test_the_cleanup_runs_before_the_model_package_group_is_deleted(
    templates: Templates, world: World, model: PolicyModel
) -> None:
    """CloudFormation deletes in reverse dependency order: the custom resource that empties the
    group must depend on the group, and its role must be able to list and delete the versions."""
    template = serving(templates)
    resources = template["Resources"]
    (group,) = [k for k, r in resources.items() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"]
    (cleanup,) = [r for r in resources.values() if r["Type"] == "Custom::ImgclfEndpointCleanup"]
    assert group in cleanup.get("DependsOn", []), cleanup.get("DependsOn")
    handler = "lambdas.cleanup.handler.handler"
    role = function_role(world, handler)
    assert model.resources_allowed(role, "sagemaker:ListModelPackages") == {"*"}  # no resource-level permissions
    assert model.resources_allowed(role, "sagemaker:DeleteModelPackage") == {PACKAGES}
    (function,) = [r for r in resources.values() if r["Properties"].get("Handler") == handler]
    assert function["Properties"]["Environment"]["Variables"]["MODEL_PACKAGE_GROUP"] == "imgclf-dev-models"


# -- the API's size limits -------------------------------------------------------------------

# what API Gateway adds around the body in a REST proxy event: headers (at most 10,240 bytes of
# request line and headers) twice (headers, multiValueHeaders), the request context, the identity
EVENT_OVERHEAD = 256 * 1024


def api_event(body: bytes) -> Dict[str, Any]:
    """A REST proxy event with about the most headers API Gateway lets through."""
    headers = {"Content-Type": "image/jpeg", "Host": "abc.execute-api.us-east-1.amazonaws.com", "X-Pad": "x" * 10000}
    return {
        "resource": "/classify",
        "path": "/classify",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": {"resourcePath": "/classify", "stage": "v1", "identity": {"sourceIp": "192.0.2.1"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


class Endpoint:
    """sagemaker-runtime's InvokeEndpoint for a real-time endpoint: bodies over 6 MiB refused."""

    def __init__(self) -> None:
        self.bodies: List[int] = []

    def invoke_endpoint(self, **request: Any) -> Dict[str, Any]:
        from botocore.exceptions import ClientError

        if len(request["Body"]) > INVOKE_ENDPOINT_PAYLOAD:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Request payload is too large"}}, "InvokeEndpoint"
            )
        self.bodies.append(len(request["Body"]))
        return {"Body": io.BytesIO(json.dumps({"predicted_label": "cat"}).encode())}


class Context:
    function_name = "classify"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:classify"
    aws_request_id = "request"


def through_the_api(templates: Templates, body: bytes, endpoint: Endpoint) -> Dict[str, Any]:
    """What a client gets for ``body``: API Gateway's payload quota (its own 413 with a text
    body), then Lambda's limit on the event (the invocation is refused and API Gateway answers
    with its REQUEST_TOO_LARGE gateway response), then the proxy function with the environment
    from the template."""
    resources = serving(templates)["Resources"]
    if len(body) > API_GATEWAY_PAYLOAD:
        return {"statusCode": 413, "body": f"HTTP content length exceeded {API_GATEWAY_PAYLOAD} bytes."}
    event = api_event(body)
    if len(json.dumps(event).encode()) > LAMBDA_SYNC_PAYLOAD:
        (response,) = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::ApiGateway::GatewayResponse"
            and r["Properties"]["ResponseType"] == "REQUEST_TOO_LARGE"
        ] or [{"StatusCode": "413", "ResponseTemplates": {"application/json": '{"message": "Request Too Long"}'}}]
        return {"statusCode": int(response["StatusCode"]), "body": response["ResponseTemplates"]["application/json"]}
    (function,) = [
        r for r in resources.values() if r["Properties"].get("Handler") == "lambdas.classify.handler.handler"
    ]
    from lambdas.classify import handler as module

    environment = {k: str(v) for k, v in function["Properties"]["Environment"]["Variables"].items()}
    with mock.patch.object(module, "runtime", lambda: endpoint), mock.patch.dict(os.environ, environment):
        return dict(module.handler(event, Context()))


def sizes() -> List[int]:
    """Just below, at and just above every limit on the way, and where the event crosses Lambda's."""
    base64_crossing = (LAMBDA_SYNC_PAYLOAD - len(json.dumps(api_event(b"")))) // 4 * 3
    limits = (MAX_BODY_BYTES, base64_crossing, INVOKE_ENDPOINT_PAYLOAD, LAMBDA_SYNC_PAYLOAD, API_GATEWAY_PAYLOAD)
    return sorted({size + delta for size in limits for delta in (-1, 0, 1)})


def test_the_limits_are_ordered_so_the_proxy_decides() -> None:
    """The promised size reaches the proxy in one event and fits InvokeEndpoint."""
    assert MAX_BODY_BYTES <= INVOKE_ENDPOINT_PAYLOAD < API_GATEWAY_PAYLOAD
    assert 4 * -(-(MAX_BODY_BYTES + 1) // 3) + EVENT_OVERHEAD <= LAMBDA_SYNC_PAYLOAD


def test_every_body_size_gets_200_or_a_json_413(templates: Templates) -> None:
    """The API's size promise: up to MAX_BODY_BYTES an image is classified; anything larger is a
    413, never a 5xx, with a JSON error up to API Gateway's own quota."""
    for size in sizes():
        endpoint = Endpoint()
        answer = through_the_api(templates, b"\xff" * size, endpoint)
        expected = 200 if size <= MAX_BODY_BYTES else 413
        assert answer["statusCode"] == expected, (size, answer["statusCode"], str(answer.get("body"))[:200])
        if expected == 413 and size <= API_GATEWAY_PAYLOAD:  # above it, API Gateway's own text
            assert "error" in json.loads(answer["body"]), (size, answer["body"])
        assert all(b <= INVOKE_ENDPOINT_PAYLOAD for b in endpoint.bodies)
