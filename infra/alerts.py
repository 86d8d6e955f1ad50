"""The SNS topic for the workflow's failures, rejections and successes (KMS, SSL only), with
the stage's alert e-mail subscribed."""

from __future__ import annotations

from typing import Optional

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class Alerts(Construct):
    def __init__(
        self, scope: Construct, id: str, *, display_name: str, key: kms.IKey, email: Optional[str] = None
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "Topic", display_name=display_name, master_key=key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        self.topic.grant_publish(grantee)
