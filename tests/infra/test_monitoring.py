"""The scheduled monitor (infra/monitoring.py) with data capture on: its schedule and the
schedule's role, its retry policy and dead-letter queue (the schedule's role sends to it with the
stage key) with an alarm, the drift alarm to the KMS-encrypted alert topic, the dashboard, the
config keys; and the function run in the harness, every call it makes authorized against the
synthesized IAM and key policies, monitor.json and monitor.html written (a stage without capture
has no monitor)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Dict, Iterator

import boto3
import pytest
from aws_cdk.assertions import Match, Template

from infra.app import synthesize
from infra.config import ConfigError, parse_stage
from infra.lambda_code import SOURCES
from infra.monitoring import ASYNC_RETRY_ATTEMPTS, MAX_EVENT_AGE_SECONDS, RETRY_ATTEMPTS, rate
from tests.lambdas.monitor_site import at, deploy, metric_values, upload_site
from tests.unit.test_monitor import site  # noqa: F401 - the module's fixture

from .asl_harness import WorkflowHarness
from .aws_calls import deliveries
from .conftest import stage_context
from .iam_model import KEY_ARN, REGION, PolicyModel, World

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
    names = [
        a["Properties"].get("AlarmName") for a in serving(templates).find_resources("AWS::CloudWatch::Alarm").values()
    ]
    assert "imgclf-dev-monitor-dead-letters" not in names


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


def test_the_schedule_retries_then_keeps_what_it_could_not_deliver(monitored: Templates) -> None:
    """RetryPolicy, then DeadLetterConfig: an SSE-KMS queue (the stage key) of the project's
    dead-letter helper, kept 14 days, SSL only."""
    template = serving(monitored)
    resources = template.to_json()["Resources"]
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    target = schedule["Properties"]["Target"]
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
    }
    assert (RETRY_ATTEMPTS, MAX_EVENT_AGE_SECONDS) == (3, 3600)
    queue, attribute = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]
    assert attribute == "Arn" and "MonitorDeadLetters" in queue
    props = resources[queue]["Properties"]
    assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "ImportValue" in json.dumps(props["KmsMasterKeyId"])  # the stage key, from the data stack
    policies = [r for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"]
    (policy,) = [p for p in policies if {"Ref": queue} in p["Properties"]["Queues"]]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_schedule_role_may_send_dead_letters_and_nothing_more(monitored: Templates) -> None:
    """The schedule's role sends to its queue (sqs:SendMessage) with the stage key through SQS
    (kms:GenerateDataKey, kms:Decrypt with kms:ViaService): the fidelity layer allows exactly
    these; the same calls by another role, to another queue, or outside SQS are denied."""
    world = World(monitored)
    model = PolicyModel(world)
    dead = [c for c in deliveries(world) if c.why.startswith("schedule") and c.why.endswith("dead letters")]
    assert sorted(c.action for c in dead) == ["kms:Decrypt", "kms:GenerateDataKey", "sqs:SendMessage"]
    assert {c.resource for c in dead if c.action.startswith("kms:")} == {KEY_ARN}
    assert model.check(dead) == []
    (send,) = [c for c in dead if c.action == "sqs:SendMessage"]
    role = send.principal
    statements = model.identity[role]
    assert sorted(a for s in statements for a in s.actions) == sorted(
        ["lambda:InvokeFunction", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"]
    )
    other_queue = dataclasses.replace(send, resource=send.resource.rsplit(":", 1)[0] + ":SomeOtherQueue")
    kms = [c for c in dead if c.action.startswith("kms:")]
    not_through_sqs = [dataclasses.replace(c, context={}) for c in kms]
    proxy_role = next(r for r in model.identity if "Classify" in r)
    someone_else = [dataclasses.replace(c, principal=proxy_role) for c in dead if c.action == "sqs:SendMessage"]
    wrong = [other_queue, *not_through_sqs, *someone_else]
    assert len(model.check(wrong)) == len(wrong)


def test_a_failed_run_is_kept_in_the_same_queue(monitored: Templates) -> None:
    """A run that raises is retried once by Lambda's asynchronous invocation, then its record
    (with the error) goes to the schedule's dead-letter queue, which the alarm watches: the
    function's role may send it there with the stage key through SQS, and to no other queue."""
    template = serving(monitored)
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    queue = schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"]
    (config,) = template.find_resources("AWS::Lambda::EventInvokeConfig").values()
    props = config["Properties"]
    assert props["MaximumRetryAttempts"] == ASYNC_RETRY_ATTEMPTS == 1
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": queue}}
    assert "MonitorEndpoint" in props["FunctionName"]["Ref"] and props["Qualifier"] == "$LATEST"
    world = World(monitored)
    model = PolicyModel(world)
    failed = [c for c in deliveries(world) if c.why.endswith("on failure") and "MonitorEndpoint" in c.why]
    assert sorted(c.action for c in failed) == ["kms:Decrypt", "kms:GenerateDataKey", "sqs:SendMessage"]
    assert all("MonitorEndpoint" in c.principal for c in failed)
    assert model.check(failed) == []
    (send,) = [c for c in failed if c.action == "sqs:SendMessage"]
    other_queue = dataclasses.replace(send, resource=send.resource.rsplit(":", 1)[0] + ":SomeOtherQueue")
    assert len(model.check([other_queue])) == 1


def test_the_dead_letter_alarm_alerts_the_topic(monitored: Templates) -> None:
    template = serving(monitored)
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    queue = schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "imgclf-dev-monitor-dead-letters",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
            "Statistic": "Maximum",
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "AlarmActions": [Match.any_value()],
            "OKActions": [Match.any_value()],
        },
    )
    world = World(monitored)
    alarmed = [c for c in deliveries(world) if "DeadLetterAlarm" in c.why]
    assert {c.action for c in alarmed} == {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    assert PolicyModel(world).check(alarmed) == []  # named <prefix>-*: the topic and key let CloudWatch


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
    written = {c.resource.rsplit("/", 1)[1] for c in harness.calls if c.action == "s3:PutObject"}
    assert written == {"monitor.json", "monitor.html"}  # both under monitoring/<endpoint>/, with the key
    page = shifted["page"].split("/", 3)
    html = boto3.client("s3", region_name=REGION).get_object(Bucket=page[2], Key=page[3])
    assert html["ContentType"].startswith("text/html") and b"image.brightness" in html["Body"].read()
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


def test_the_handler_imports_from_the_bundled_sources_alone(tmp_path: Path) -> None:
    """infra/lambda_code.py bundles image_training file by file: the page module is among them
    (the repository is not on the path; the installed packages stand in for the requirements)."""
    for source, name in SOURCES:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
    packages = sysconfig.get_paths()["purelib"]
    script = (
        f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {packages!r}]\n"
        "import lambdas.monitor.handler, image_training.monitor_page as page\n"
        f"assert page.__file__.startswith({str(tmp_path)!r}), page.__file__\n"
    )
    env = {"AWS_DEFAULT_REGION": REGION, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
