"""Each Lambda handler with the event its AWS caller really sends (tests/events/*.json, in the
shape AWS's documentation gives, with every field the service sets), not only the fields we read:
EventBridge's and S3's "Object Created", API Gateway's REST proxy request, CloudFormation's
custom-resource Delete."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List
from unittest import mock

import boto3
import pytest

from imgclf_core.environment import ClassifyEnvironment, CleanupEnvironment, TriggerEnvironment

from .conftest import REGION, Context
from .test_classify import RealTimeEndpoint

EVENTS = Path(__file__).resolve().parents[1] / "events"
DATASETS = "imgclf-dev-datasets-111111111111-us-east-1"


def captured(name: str) -> Dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@pytest.fixture()
def training_workflow(aws: None) -> Iterator[str]:
    """The datasets bucket, a state machine and the alert topic, wired as the trigger's environment."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=DATASETS)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="imgclf-dev-training",
        roleArn=role["Role"]["Arn"],
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="alerts")["TopicArn"]
    env = TriggerEnvironment(machine, "mxnet", {"epochs": "30"}, "0123456789abcdef", topic).as_environment()
    with mock.patch.dict(os.environ, env):
        yield machine


def started(machine: str) -> List[Dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    found = sfn.list_executions(stateMachineArn=machine)["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in found]


@pytest.mark.parametrize(
    ("event", "key"),
    [
        ("s3_object_created_eventbridge.json", "datasets/flowers/v1/dataset.json"),
        ("s3_notification_put.json", "datasets/spring flowers/v=2/dataset.json"),  # S3 URL-encodes the key
    ],
)
def test_an_uploaded_descriptor_starts_one_run(training_workflow: str, event: str, key: str) -> None:
    from lambdas.trigger.handler import handler

    body = {"format": "folders", "hyperparameters": {"epochs": "5"}}
    boto3.client("s3", region_name=REGION).put_object(Bucket=DATASETS, Key=key, Body=json.dumps(body).encode())
    result = handler(captured(event), Context())
    runs = started(training_workflow)
    assert result["executions"] == [r["name"] for r in runs] and len(runs) == 1, result
    run = json.loads(runs[0]["input"])
    assert run["dataset"]["bucket"] == DATASETS and run["dataset"]["prefix"] == key[: -len("dataset.json")]
    assert run["hyperparameters"] == {"epochs": "5"}


def test_an_api_gateway_proxy_request_reaches_the_endpoint() -> None:
    from lambdas.classify import handler as module

    event = captured("apigateway_rest_classify.json")
    endpoint = RealTimeEndpoint()
    env = ClassifyEnvironment("imgclf-dev-endpoint", 4 << 20).as_environment()
    with mock.patch.object(module, "runtime", lambda: endpoint), mock.patch.dict(os.environ, env):
        answer = module.handler(event, Context())
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"predicted_label": "cat"}
    assert endpoint.bodies == [len(base64.b64decode(event["body"]))]


def test_a_stack_deletion_removes_the_deployments_and_answers_cloudformation(aws: None) -> None:
    from lambdas.cleanup import handler as module

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model(
        ModelName="imgclf-dev-v1-aaaa",
        ExecutionRoleArn="arn:aws:iam::111111111111:role/r",
        PrimaryContainer={"Image": "i"},
    )
    event = captured("cloudformation_delete.json")
    answers: List[Dict[str, Any]] = []

    def answer(request: Any, timeout: float) -> Any:
        assert request.full_url == event["ResponseURL"] and request.get_method() == "PUT"
        answers.append(json.loads(request.data))
        return mock.MagicMock()

    env = CleanupEnvironment("imgclf-dev", "imgclf-dev-endpoint", "imgclf-dev-models").as_environment()
    with mock.patch.object(module.urllib.request, "urlopen", answer), mock.patch.dict(os.environ, env):
        module.handler(event, Context())
    assert [a["Status"] for a in answers] == ["SUCCESS"], answers
    assert answers[0]["PhysicalResourceId"] == event["PhysicalResourceId"]
    assert {k: answers[0][k] for k in ("StackId", "RequestId", "LogicalResourceId")} == {
        k: event[k] for k in ("StackId", "RequestId", "LogicalResourceId")
    }
    assert sagemaker.list_models()["Models"] == []
