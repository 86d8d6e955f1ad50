"""The stateful part: one KMS key for the stage, a bucket for datasets (uploads trigger the
workflow through EventBridge), one for artifacts (models, checkpoints, evaluations) and one for
their access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app.config import StageConfig

from .nag import acknowledge


class Storage(Construct):
    def __init__(self, scope: Construct, id: str, stage: StageConfig) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{stage.prefix}",
            description=f"imgclf {stage.name}: datasets, artifacts, alerts, logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # SageMaker's service principals use the key through the roles they act for; CloudWatch
        # Logs needs it for the encrypted log groups
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                principals=[iam.ServicePrincipal(f"logs.{stage.region}.amazonaws.com")],
                resources=["*"],
                conditions={
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{stage.region}:{stage.account}:*"}
                },
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
                    "StringEquals": {"aws:SourceAccount": stage.account},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:events:{stage.region}:{stage.account}:rule/*"},
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
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(stage.artifact_retention_days))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs, "AwsSolutions-S1", "This is the access-log bucket; logging it into itself would loop."
        )
        self.datasets = self._bucket("Datasets", stage.datasets_bucket, "datasets/")
        self.datasets.add_lifecycle_rule(noncurrent_version_expiration=Duration.days(30))
        self.artifacts = self._bucket("Artifacts", stage.artifacts_bucket, "artifacts/")
        self.artifacts.add_lifecycle_rule(
            prefix="checkpoints/", expiration=Duration.days(14), noncurrent_version_expiration=Duration.days(1)
        )
        self.artifacts.add_lifecycle_rule(  # plans and shard results of fanned-out validations
            prefix="validation/", expiration=Duration.days(7), noncurrent_version_expiration=Duration.days(1)
        )
        for prefix in ("training-jobs/", "evaluations/"):
            self.artifacts.add_lifecycle_rule(
                prefix=prefix,
                expiration=Duration.days(stage.artifact_retention_days),
                noncurrent_version_expiration=Duration.days(30),
            )

    def _bucket(self, id: str, name: str, log_prefix: str) -> s3.Bucket:
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
            server_access_logs_prefix=log_prefix,
            event_bridge_enabled=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
