"""The SNS topic for the workflow's failures, rejections and successes (KMS, SSL only), with
the stage's alert e-mail subscribed. The stage's CloudWatch alarms (``<prefix>-*``) may publish
to it: the topic policy lets CloudWatch publish and the key policy lets it use the stage key
(an SSE-KMS topic: https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html), both
only for this account's alarms of that name."""

from __future__ import annotations

from typing import Optional

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from . import arns


class Alerts(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        display_name: str,
        key: kms.IKey,
        email: Optional[str] = None,
        alarm_prefix: Optional[str] = None,
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "Topic", display_name=display_name, master_key=key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        if alarm_prefix:
            self._alarms_may_publish(key, alarm_prefix)

    def _alarms_may_publish(self, key: kms.IKey, alarm_prefix: str) -> None:
        conditions = {
            "ArnLike": {"aws:SourceArn": arns.alarm(self, f"{alarm_prefix}-*")},
            "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
        }
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"],
                principals=[cloudwatch],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[cloudwatch],
                resources=["*"],
                conditions=conditions,
            )
        )

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        self.topic.grant_publish(grantee)
