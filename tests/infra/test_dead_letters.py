"""Every dead-letter queue is watched: an event that EventBridge (a rule or a schedule) could not
deliver, or that the function it invoked failed on, lands in an SSE-KMS queue, and an alarm on
that queue tells the alert topic, which CloudWatch may publish to (the alarm's name is
``<prefix>-*``)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple

from infra.dead_letters import TRIGGER_RETRY_ATTEMPTS

from .aws_calls import deliveries
from .iam_model import PolicyModel, World

Templates = Dict[str, Dict[str, Any]]


def event_targets(resource: Dict[str, Any]) -> list:
    """The targets of an EventBridge rule or a schedule (none for another resource)."""
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::Events::Rule":
        return props.get("Targets", [])
    if resource["Type"] == "AWS::Scheduler::Schedule":
        return [props["Target"]]
    return []


def dead_letter_queues(templates: Templates) -> Iterator[Tuple[str, str]]:
    """(stack, logical id) of each queue that an EventBridge rule's or a schedule's target names,
    or that a function's asynchronous invocations fail to."""
    for stack, template in templates.items():
        for resource in template["Resources"].values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::EventInvokeConfig":
                failed = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                if failed is not None:
                    yield stack, failed["Fn::GetAtt"][0]
                continue
            for target in event_targets(resource):
                arn = target.get("DeadLetterConfig", {}).get("Arn")
                if arn is not None:
                    yield stack, arn["Fn::GetAtt"][0]


def alarms_on(template: Dict[str, Any], queue: str) -> list:
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and r["Properties"].get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]


def test_every_dead_letter_queue_has_an_alarm_to_the_alert_topic(templates: Templates) -> None:
    queues = sorted(set(dead_letter_queues(templates)))
    assert len(queues) >= 3  # the upload trigger, the manual approval and the batch trigger
    for stack, queue in queues:
        (alarm,) = alarms_on(templates[stack], queue)
        assert alarm["AlarmName"].startswith("imgclf-dev-") and alarm["AlarmName"].endswith("-dead-letters")
        assert alarm["Threshold"] == 1 and alarm["Statistic"] == "Maximum"
        assert alarm["AlarmActions"] and alarm["OKActions"], alarm["AlarmName"]


def test_cloudwatch_may_publish_each_dead_letter_alarm(templates: Templates) -> None:
    world = World(templates)
    alarmed = [c for c in deliveries(world) if "DeadLetterAlarm" in c.why]
    assert len({c.why for c in alarmed}) >= 3
    assert PolicyModel(world).check(alarmed) == []


def lambda_targets(templates: Templates) -> Iterator[Tuple[str, str, Any]]:
    """(stack, function logical id, the target's dead-letter queue) of each Lambda that an
    EventBridge rule or a schedule invokes (asynchronously)."""
    for stack, template in templates.items():
        for resource in template["Resources"].values():
            for target in event_targets(resource):
                arn = target["Arn"]
                if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                    function = arn["Fn::GetAtt"][0]
                    if template["Resources"][function]["Type"] == "AWS::Lambda::Function":
                        yield stack, function, target.get("DeadLetterConfig", {}).get("Arn")


def test_an_event_a_function_failed_on_is_kept_with_its_dead_letters(templates: Templates) -> None:
    """EventBridge's dead-letter queue holds only what it could not deliver: an asynchronous
    invocation that then fails in the function (Step Functions throttled, S3 refused) is retried
    by Lambda and dropped, unless the function has an on-failure destination. Each function an
    event starts sends what it failed on to its target's queue, which the alarm watches, and its
    role may (sqs:SendMessage, the key through SQS)."""
    found = list(lambda_targets(templates))
    assert len(found) >= 2  # the upload trigger and the batch start function
    for stack, function, queue in found:
        assert queue is not None, function
        configs = [
            r["Properties"]
            for r in templates[stack]["Resources"].values()
            if r["Type"] == "AWS::Lambda::EventInvokeConfig" and r["Properties"]["FunctionName"] == {"Ref": function}
        ]
        assert len(configs) == 1, function
        assert configs[0]["DestinationConfig"] == {"OnFailure": {"Destination": queue}}, function
        assert configs[0]["MaximumRetryAttempts"] == TRIGGER_RETRY_ATTEMPTS
    world = World(templates)
    failed = [c for c in deliveries(world) if c.why.endswith("on failure")]
    assert {c.why for c in failed} == {f"function {function} on failure" for _, function, _ in found}
    assert sorted({c.action for c in failed}) == ["kms:Decrypt", "kms:GenerateDataKey", "sqs:SendMessage"]
    assert PolicyModel(world).check(failed) == []
