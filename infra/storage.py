"""The stateful part: one KMS key for the stage, a bucket for datasets (uploads trigger the
workflow through EventBridge), one for artifacts (models, checkpoints, evaluations) and one for
their access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from imgclf_core.s3_layout import DATASETS_WORKING_PREFIXES, RESULT_PREFIXES, WORKING_PREFIXES

from . import arns
from .nag import acknowledge


class Storage(Construct):
    """The stage key (``alias/<prefix>``) and the buckets ``datasets_bucket`` and
    ``artifacts_bucket``, whose result prefixes expire after ``retention_days``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        description: str,
        datasets_bucket: str,
        artifacts_bucket: str,
        retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        region = Stack.of(self).region
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{prefix}",
            description=description,
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # SageMaker's service principals use the key through the roles they act for; CloudWatch
        # Logs needs it for the encrypted log groups
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": arns.any_resource(self, "logs")}},
            )
        )
        # EventBridge puts the events its targets could not take into the dead-letter queues,
        # which this key encrypts; it needs the key policy itself (a service principal)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                    "ArnLike": {"aws:SourceArn": arns.events_rule(self, "*")},
                },
            )
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption S3 log delivery supports
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(retention_days))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs, "AwsSolutions-S1", "This is the access-log bucket; logging it into itself would loop."
        )
        self.datasets = self._bucket("Datasets", datasets_bucket)
        self.datasets.add_lifecycle_rule(noncurrent_version_expiration=Duration.days(30))
        for working, days in DATASETS_WORKING_PREFIXES.items():  # ground-truth labels
            self.datasets.add_lifecycle_rule(prefix=working, expiration=Duration.days(days))
        self.artifacts = self._bucket("Artifacts", artifacts_bucket)
        # working files (checkpoints, validation plans and shard results) go soon
        for working, days in WORKING_PREFIXES.items():
            self.artifacts.add_lifecycle_rule(
                prefix=working, expiration=Duration.days(days), noncurrent_version_expiration=Duration.days(1)
            )
        for result in RESULT_PREFIXES:
            self.artifacts.add_lifecycle_rule(
                prefix=result,
                expiration=Duration.days(retention_days),
                noncurrent_version_expiration=Duration.days(30),
            )

    def _bucket(self, id: str, name: str) -> s3.Bucket:
        """A data bucket; its access logs go under ``<id in lower case>/`` of the log bucket."""
        return s3.Bucket(
            self,
            id,
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{id.lower()}/",
            event_bridge_enabled=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
