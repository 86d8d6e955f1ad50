"""Every dead-letter queue is watched: an event that EventBridge (a rule or a schedule) could not
deliver lands in an SSE-KMS queue, and an alarm on that queue tells the alert topic, which
CloudWatch may publish to (the alarm's name is ``<prefix>-*``)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple

from .aws_calls import deliveries
from .iam_model import PolicyModel, World

Templates = Dict[str, Dict[str, Any]]


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
            if resource["Type"] == "AWS::Events::Rule":
                targets = props.get("Targets", [])
            elif resource["Type"] == "AWS::Scheduler::Schedule":
                targets = [props["Target"]]
            else:
                continue
            for target in targets:
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
