"""The upload trigger: one workflow run per dataset version and configuration, whatever S3
repeats; descriptors and overrides are checked before anything starts."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List
from unittest import mock

import boto3
import pytest

from imgclf_core.environment import TriggerEnvironment
from imgclf_core.plan import execution_name
from lambdas.trigger.logic import Rejected, parse_upload, workflow_input

from .conftest import REGION, Context

BUCKET = "data"


def eventbridge(key: str) -> Dict[str, Any]:
    return {"detail-type": "Object Created", "detail": {"bucket": {"name": BUCKET}, "object": {"key": key}}}


def s3_notification(key: str) -> Dict[str, Any]:
    from urllib.parse import quote_plus

    return {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key, safe="/")}}}]}


@pytest.fixture()
def deployed(aws: None) -> Dict[str, str]:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    machine = sfn.create_state_machine(
        name="training",
        roleArn=role["Role"]["Arn"],
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    env = TriggerEnvironment(
        state_machine_arn=machine,
        backend="mxnet",
        default_hyperparameters={"epochs": "30"},
        stage_config_hash="abc",
        alert_topic_arn=topic,
    ).as_environment()
    with mock.patch.dict(os.environ, env):
        yield {"machine": machine, "queue": queue}


def handle(event: Dict[str, Any]) -> Dict[str, Any]:
    from lambdas.trigger.handler import handler

    return handler(event, Context())


def executions(machine: str) -> List[Dict[str, Any]]:
    return boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=machine)["executions"]


def put_descriptor(key: str, body: Dict[str, Any]) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())


def test_replayed_and_duplicate_events_start_one_run(deployed: Dict[str, str]) -> None:
    key = "datasets/flowers/v1/dataset.json"
    put_descriptor(key, {"format": "folders", "hyperparameters": {"epochs": "5"}})
    first = handle(eventbridge(key))
    again = handle(eventbridge(key))
    notified = handle(s3_notification(key))
    assert first["executions"] == again["executions"] == notified["executions"]
    runs = executions(deployed["machine"])
    assert len(runs) == 1
    payload = json.loads(
        boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=runs[0]["executionArn"])[
            "input"
        ]
    )
    assert payload["hyperparameters"] == {"epochs": "5"}
    assert payload["dataset"]["prefix"] == "datasets/flowers/v1/"


def test_a_rerun_tag_or_a_new_version_starts_a_new_run(deployed: Dict[str, str]) -> None:
    put_descriptor("datasets/flowers/v1/dataset.json", {})
    handle(eventbridge("datasets/flowers/v1/dataset.json"))
    put_descriptor("datasets/flowers/v1/dataset.json", {"rerun": "again1"})
    rerun = handle(eventbridge("datasets/flowers/v1/dataset.json"))
    put_descriptor("datasets/flowers/v2/dataset.json", {})
    handle(eventbridge("datasets/flowers/v2/dataset.json"))
    assert rerun["executions"][0].endswith("_again1")
    assert len(executions(deployed["machine"])) == 3


def test_spaces_and_unicode_in_keys(deployed: Dict[str, str]) -> None:
    key = "datasets/fête des fleurs/v 1/dataset.json"
    put_descriptor(key, {})
    via_events = handle(eventbridge(key))
    via_s3 = handle(s3_notification(key))
    assert via_events["executions"] == via_s3["executions"]
    name = via_events["executions"][0]
    assert len(name) <= 80 and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)


@pytest.mark.parametrize(
    "descriptor, reason",
    [
        ({"hyperparameters": {"sagemaker_program": "evil.py"}}, "reserved"),
        ({"hyperparameters": {"num_classes": "3"}}, "validation report"),
        ({"hyperparameters": {"instance_type": "ml.p4d.24xlarge"}}, "not a hyperparameter"),
        ({"hyperparameters": {"epochs": "zero"}}, "epochs"),
        ({"format": "tfrecord"}, "format"),
        ({"unknown": 1}, "unknown key"),
    ],
    ids=["sagemaker-key", "derived", "instance-type", "bad-value", "format", "unknown-key"],
)
def test_rejected_descriptors_alert_and_start_nothing(
    deployed: Dict[str, str], descriptor: Dict[str, Any], reason: str
) -> None:
    put_descriptor("datasets/flowers/v1/dataset.json", descriptor)
    result = handle(eventbridge("datasets/flowers/v1/dataset.json"))
    assert result["executions"] == [] and executions(deployed["machine"]) == []
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=deployed["queue"])["Messages"]
    assert reason in json.loads(messages[0]["Body"])["Message"]


@pytest.mark.parametrize(
    "name, version, shown",
    [
        ("fleurs d'été", "v1", '"\'" not allowed'),
        ("flowers", "v1(final)", "'(' ')' not allowed"),
        ("n" * 65, "v1", "has 65 characters"),
        ("flowers", "v" * 65, "has 65 characters"),
    ],
    ids=["apostrophe", "parentheses", "long-name", "long-version"],
)
def test_dataset_names_a_run_cannot_carry_are_rejected_with_the_rule(
    deployed: Dict[str, str], name: str, version: str, shown: str
) -> None:
    """The validation report's URI goes into the model registry's metadata (image_dataset.naming)."""
    key = f"datasets/{name}/{version}/dataset.json"
    put_descriptor(key, {})
    result = handle(eventbridge(key))
    assert result == {"executions": [], "skipped": [key]} and executions(deployed["machine"]) == []
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=deployed["queue"])["Messages"]
    message = json.loads(messages[0]["Body"])["Message"]
    assert shown in message and "each 1-64 characters of letters, digits, spaces and _ . : = + - @" in message


def test_names_of_letters_digits_spaces_and_allowed_punctuation_start_a_run(deployed: Dict[str, str]) -> None:
    key = "datasets/fête des fleurs_2024/v1.0+rc=1@eu:west/dataset.json"
    put_descriptor(key, {})
    assert len(handle(eventbridge(key))["executions"]) == 1


def test_a_label_attribute_the_pack_job_cannot_take_is_rejected(deployed: Dict[str, str]) -> None:
    for attribute in ("a" * 257, "class\nname"):
        put_descriptor("datasets/flowers/v1/dataset.json", {"label_attribute": attribute})
        assert handle(eventbridge("datasets/flowers/v1/dataset.json"))["executions"] == []
    assert executions(deployed["machine"]) == []


def test_not_json_descriptor_says_why(deployed: Dict[str, str]) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="datasets/a/v1/dataset.json", Body=b"{oops")
    assert handle(eventbridge("datasets/a/v1/dataset.json"))["executions"] == []


def test_other_keys_are_ignored() -> None:
    assert parse_upload(BUCKET, "datasets/flowers/v1/train/a.png") is None
    with pytest.raises(Rejected, match="datasets/<name>/<version>"):
        parse_upload(BUCKET, "datasets/flowers/dataset.json")


def test_execution_names_are_bounded_and_distinct() -> None:
    upload = parse_upload(BUCKET, "datasets/" + "n" * 200 + "/" + "v" * 200 + "/dataset.json")
    assert upload is not None
    name = execution_name(upload.name, upload.version, {"a": 1}, "tag")
    assert len(name) <= 80 and name.endswith("_tag")
    a = parse_upload(BUCKET, "datasets/a b/v1/dataset.json")
    b = parse_upload(BUCKET, "datasets/a-b/v1/dataset.json")
    assert (
        a is not None
        and b is not None
        and execution_name(a.name, a.version, {}) != execution_name(b.name, b.version, {})
    )


def test_config_change_changes_the_name() -> None:
    upload = parse_upload(BUCKET, "datasets/a/v1/dataset.json")
    assert upload is not None
    one = workflow_input(upload, b"{}", "mxnet", {"epochs": "30"}, "stage1")["name"]
    two = workflow_input(upload, b"{}", "mxnet", {"epochs": "31"}, "stage1")["name"]
    three = workflow_input(upload, b"{}", "mxnet", {"epochs": "30"}, "stage2")["name"]
    assert len({one, two, three}) == 3
