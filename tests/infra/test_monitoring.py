"""The scheduled monitor (infra/monitoring.py) with data capture on: its schedule and the
schedule's role, the drift alarm to the KMS-encrypted alert topic, the dashboard, the config
keys; and the function run in the harness, every call it makes authorized against the
synthesized IAM and key policies (a stage without capture has no monitor)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from aws_cdk.assertions import Match, Template

from infra.app import synthesize
from infra.config import ConfigError, parse_stage
from infra.monitoring import rate
from tests.lambdas.monitor_site import at, deploy, metric_values, upload_site
from tests.unit.test_monitor import site  # noqa: F401 - the module's fixture

from .asl_harness import WorkflowHarness
from .aws_calls import deliveries
from .conftest import stage_context
from .iam_model import PolicyModel, World

Templates = Dict[str, Dict[str, Any]]
BASE: Dict[str, Any] = {"account": "123456789012", "region": "eu-west-1"}
ENDPOINT = "imgclf-dev-endpoint"
HANDLER = "lambdas.monitor.handler.handler"


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    endpoint = {"instance_type": "ml.m5.xlarge", "min_instances": 1, "max_instances": 2, "capture_percent": 20}
    context = stage_context(endpoint=endpoint, monitoring={"every_hours": 6, "window_hours": 1})
    return synthesize(context, str(tmp_path_factory.mktemp("cdk.out")))


@pytest.fixture()
def harness(monitored: Templates) -> Iterator[WorkflowHarness]:
    with WorkflowHarness(monitored).running() as running:
        yield running


def serving(templates: Templates) -> Template:
    return Template.from_json(templates["Imgclf-dev-Serving"])


# -- configuration ------------------------------------------------------------------------------


def test_monitoring_defaults_and_rates() -> None:
    stage = parse_stage("dev", BASE)
    assert (stage.monitoring.every_hours, stage.monitoring.window, stage.monitoring.namespace) == (24, 24, "Imgclf")
    assert parse_stage("dev", {**BASE, "monitoring": {"every_hours": 6}}).monitoring.window == 6
    assert parse_stage("dev", {**BASE, "monitoring": {"every_hours": 6, "window_hours": 12}}).monitoring.window == 12
    assert (rate(1), rate(24)) == ("rate(1 hour)", "rate(24 hours)")


@pytest.mark.parametrize(
    "monitoring, key",
    [
        ({"every_hours": 0}, "monitoring.every_hours"),
        ({"every_hours": 169}, "monitoring.every_hours"),
        ({"window_hours": -1}, "monitoring.window_hours"),
        ({"namespace": "AWS/SageMaker"}, "monitoring.namespace"),
        ({"every": 1}, "monitoring.every"),
    ],
)
def test_bad_monitoring_values_name_their_key(monitoring: Dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_stage("dev", {**BASE, "monitoring": monitoring})
    assert raised.value.key == f"imgclf:stages.dev.{key}"


def test_without_capture_there_is_no_monitor(templates: Templates) -> None:
    for kind in ("AWS::Scheduler::Schedule", "AWS::CloudWatch::Dashboard"):
        assert not serving(templates).find_resources(kind)


# -- the template -------------------------------------------------------------------------------


def test_the_schedule_invokes_the_monitor_with_its_own_role(monitored: Templates) -> None:
    template = serving(monitored)
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(6 hours)" and props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert json.loads(props["Target"]["Input"]) == {"time": "<aws.scheduler.scheduled-time>"}
    role = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    trust = template.to_json()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}},
        }
    ]
    function = props["Target"]["Arn"]["Fn::GetAtt"][0]
    variables = template.to_json()["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert variables["WINDOW_HOURS"] == "1" and variables["METRIC_NAMESPACE"] == "Imgclf"
    assert variables["ENDPOINT_NAME"] == ENDPOINT and variables["FEEDBACK_BUCKET"].startswith("imgclf-dev-datasets-")


def test_the_drift_alarm_alerts_the_topic(monitored: Templates) -> None:
    serving(monitored).has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "imgclf-dev-endpoint-drift",
            "Namespace": "Imgclf",
            "MetricName": "DriftDetected",
            "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "Period": 6 * 3600,
            "AlarmActions": [Match.any_value()],
            "TreatMissingData": "ignore",
        },
    )


def test_the_dashboard_shows_traffic_errors_latency_drift_and_accuracy(monitored: Templates) -> None:
    (dashboard,) = serving(monitored).find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency"):
        assert f'\\"AWS/SageMaker\\",\\"{metric}\\",\\"EndpointName\\",\\"{ENDPOINT}\\",\\"VariantName\\"' in body
    for metric in ("DriftDetected", "LiveAccuracy", "MeanConfidence", "Records"):
        assert f'\\"Imgclf\\",\\"{metric}\\",\\"EndpointName\\",\\"{ENDPOINT}\\"' in body
    assert dashboard["Properties"]["DashboardName"] == "imgclf-dev-endpoint"


def test_the_schedule_and_the_alarm_are_authorized(monitored: Templates) -> None:
    """EventBridge Scheduler invokes the function with the schedule's role; CloudWatch publishes
    the alarm to the topic (topic policy) with the stage key (key policy)."""
    world = World(monitored)
    calls = deliveries(world)
    scheduled = [c for c in calls if c.why.startswith("schedule")]
    alarmed = [c for c in calls if c.principal == "service:cloudwatch.amazonaws.com"]
    assert scheduled and {c.action for c in alarmed} == {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    model = PolicyModel(world)
    assert model.check(calls) == []
    foreign = [dataclasses.replace(c, context={**c.context, "aws:SourceAccount": "999999999999"}) for c in alarmed]
    assert len(model.check(foreign)) == len(foreign)  # another account's alarm may not


# -- the function, authorized -------------------------------------------------------------------


def test_the_monitor_runs_with_its_own_permissions(harness: WorkflowHarness, site: Dict[str, Any]) -> None:  # noqa: F811
    upload_site(site, ENDPOINT, harness.artifacts_bucket, harness.datasets_bucket)
    role = "arn:aws:iam::111111111111:role/model"
    deploy(ENDPOINT, harness.artifacts_bucket, role, package_group="imgclf-dev-models")
    shifted = harness.invoke(HANDLER, {"time": at(2)})
    assert shifted["drift_detected"] is True
    assert harness.invoke(HANDLER, {"time": at(30)}) == {"records": 0, "problems": 0}
    actions = {c.action for c in harness.calls}
    assert {"sagemaker:DescribeModel", "sagemaker:DescribeModelPackage", "cloudwatch:PutMetricData"} <= actions
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "kms:Decrypt"} <= actions
    assert harness.denied == []
    assert metric_values("Imgclf", ENDPOINT)["DriftDetected"] == 1


def test_a_report_outside_the_monitor_prefix_is_denied(harness: WorkflowHarness, monitored: Templates) -> None:
    """The function may write only its own reports: the fidelity layer refuses anything else."""
    world = World(monitored)
    role = world.function_role(next(n for n, s in harness.functions.items() if s["handler"] == HANDLER))
    write = harness.aws.api(role, "s3", "PutObject", {"Bucket": harness.artifacts_bucket, "Key": "evaluations/x"}, "t")
    assert harness.authorize(write) is not None
    harness.denied.clear()
    assert Path(__file__).name == "test_monitoring.py"
