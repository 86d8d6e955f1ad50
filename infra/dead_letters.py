"""A KMS-encrypted, SSL-only queue that keeps the events an EventBridge target (a rule's or a
schedule's) could not take, or a function's asynchronous invocations that failed; and an alarm on
the messages waiting in one."""

from __future__ import annotations

from typing import Any, Optional

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .nag import acknowledge

# Lambda's asynchronous retries of a trigger function that failed on an event (its default, 2),
# before the event goes to the function's on-failure destination
TRIGGER_RETRY_ATTEMPTS = 2


def dead_letter_queue(scope: Construct, id: str, key: kms.IKey) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(queue, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue.")
    return queue


def dead_letter_alarm(
    scope: Construct, id: str, queue: sqs.IQueue, *, alarm_name: str, description: str, topic: sns.ITopic
) -> cloudwatch.Alarm:
    """ALARM while ``queue`` holds a visible message (ApproximateNumberOfMessagesVisible >= 1 in
    5 minutes), OK once it is emptied, both to ``topic``. SQS reports a queue's metrics only while
    the queue is active (sqs-available-cloudwatch-metrics.html): missing data keeps the state, so
    a raised alarm stays raised until someone reads or purges the queue. ``alarm_name`` must be
    one the topic lets CloudWatch publish for (infra/alerts.py: ``<prefix>-*``)."""
    alarm = cloudwatch.Alarm(
        scope,
        id,
        alarm_name=alarm_name,
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
        ),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
    )
    alarm.add_alarm_action(actions.SnsAction(topic))
    alarm.add_ok_action(actions.SnsAction(topic))
    return alarm


@jsii.implements(lambda_.IDestination)
class FailedInvocations:
    """A function's on-failure destination: ``queue``, SSE-KMS with ``key``. Lambda sends the
    record of a failed asynchronous invocation with the function's execution role
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html), so the
    role gets what a producer of an SSE-KMS queue needs and no more: sqs:SendMessage on the queue,
    kms:GenerateDataKey and kms:Decrypt through SQS only (CDK's SqsDestination would also grant
    kms:Encrypt, kms:ReEncrypt* and the queue's attributes)."""

    def __init__(self, queue: sqs.IQueue, key: kms.IKey) -> None:
        self.queue, self.key = queue, key

    def bind(self, scope: Construct, fn: lambda_.IFunction, *, type: Optional[Any] = None) -> lambda_.DestinationConfig:
        fn.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn]))
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{Stack.of(scope).region}.amazonaws.com"}},
            )
        )
        return lambda_.DestinationConfig(destination=self.queue.queue_arn)
