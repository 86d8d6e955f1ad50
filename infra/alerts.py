"""The SNS topic for the workflow's failures, rejections and successes (KMS, SSL only), with
the stage's alert e-mail subscribed."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from app.config import StageConfig


class Alerts(Construct):
    def __init__(self, scope: Construct, id: str, stage: StageConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "Topic", display_name=f"imgclf {stage.name}", master_key=key, enforce_ssl=True)
        if stage.alert_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(stage.alert_email))

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        self.topic.grant_publish(grantee)
