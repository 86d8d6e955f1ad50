"""The stacks of one stage. They only compose constructs: a stateful data stack (key, buckets,
alert topic), a serving stack (registry, deployment workflow, API, cleanup, and with data
capture the scheduled monitor with its alarm and dashboard), a training
stack (upload trigger, training workflow) and a batch stack (batch.json -> transform job)."""

from __future__ import annotations

from aws_cdk import CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .alerts import Alerts
from .batch_workflow import BatchWorkflow
from .classify_api import ClassifyApi
from .config import TAG, StageConfig, stage_config_hash
from .deployment_workflow import DeploymentWorkflow
from .endpoint_cleanup import EndpointCleanup
from .model_registry import ModelRegistry
from .monitoring import EndpointMonitor
from .nag import acknowledge, acknowledge_grant_actions, managed_policy
from .storage import Storage
from .training_workflow import TrainingWorkflow
from .upload_trigger import UploadTrigger


def _env(stage: StageConfig) -> Environment:
    return Environment(account=stage.account, region=stage.region)


def _bucket(scope: Construct, id: str, name: str, key: kms.IKey) -> s3.IBucket:
    """A bucket of the data stack, by its deterministic name (no cross-stack export)."""
    return s3.Bucket.from_bucket_attributes(scope, id, bucket_name=name, encryption_key=key)


class DataStack(Stack):
    def __init__(self, scope: Construct, id: str, *, stage: StageConfig) -> None:
        super().__init__(scope, id, env=_env(stage), description=f"imgclf {stage.name}: key, buckets, alerts")
        self.storage = Storage(
            self,
            "Storage",
            prefix=stage.prefix,
            description=f"imgclf {stage.name}: datasets, artifacts, alerts, logs",
            datasets_bucket=stage.datasets_bucket,
            artifacts_bucket=stage.artifacts_bucket,
            retention_days=stage.artifact_retention_days,
        )
        self.alerts = Alerts(
            self,
            "Alerts",
            display_name=f"imgclf {stage.name}",
            key=self.storage.key,
            email=stage.alert_email,
            alarm_prefix=stage.prefix,
        )
        # event_bridge_enabled makes CDK add its bucket-notifications helper function
        acknowledge(
            self,
            managed_policy(self, "service-role/AWSLambdaBasicExecutionRole"),
            "CDK's own bucket-notifications helper (it switches on EventBridge delivery) uses this AWS managed "
            "policy for its logs; it is not configurable.",
        )
        CfnOutput(self, "DatasetBucket", value=self.storage.datasets.bucket_name)
        CfnOutput(self, "ArtifactBucket", value=self.storage.artifacts.bucket_name)
        CfnOutput(self, "AlertTopic", value=self.alerts.topic.topic_arn)


class ServingStack(Stack):
    def __init__(self, scope: Construct, id: str, *, stage: StageConfig, data: DataStack) -> None:
        super().__init__(scope, id, env=_env(stage), description=f"imgclf {stage.name}: registry, deployment, API")
        key = data.storage.key
        artifacts = _bucket(self, "Artifacts", stage.artifacts_bucket, key)
        self.deployment = DeploymentWorkflow(self, "Deployment", stage=stage, key=key, artifacts=artifacts)
        self.registry = ModelRegistry(
            self,
            "Registry",
            group_name=stage.model_package_group,
            description=f"imgclf {stage.name}: {stage.backend} image classifiers",
            deployment=self.deployment.state_machine,
            key=key,
            topic=data.alerts.topic,
            prefix=stage.prefix,
        )
        self.api = ClassifyApi(
            self,
            "ClassifyApi",
            key=key,
            endpoint_name=stage.endpoint_name,
            api_name=f"{stage.prefix}-classify",
            auth=stage.api_auth,
            rate_limit=stage.api_rate_limit,
        )
        self.cleanup = EndpointCleanup(
            self,
            "EndpointCleanup",
            key=key,
            prefix=stage.prefix,
            endpoint_name=stage.endpoint_name,
            model_package_group=stage.model_package_group,
        )
        self.cleanup.node.add_dependency(self.deployment)
        self.monitor = None
        if stage.endpoint.capture_percent > 0:  # without captures there is nothing to monitor
            self.monitor = EndpointMonitor(
                self,
                "Monitor",
                stage=stage,
                key=key,
                datasets=_bucket(self, "Datasets", stage.datasets_bucket, key),
                artifacts=artifacts,
                topic=data.alerts.topic,
            )
            CfnOutput(self, "MonitorDashboard", value=self.monitor.dashboard_name)
        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(self, "EndpointName", value=stage.endpoint_name)
        CfnOutput(self, "ModelPackageGroup", value=stage.model_package_group)
        CfnOutput(self, "DeploymentStateMachine", value=self.deployment.state_machine.state_machine_arn)


class TrainingStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, stage: StageConfig, data: DataStack, serving: ServingStack
    ) -> None:
        super().__init__(scope, id, env=_env(stage), description=f"imgclf {stage.name}: upload trigger, training")
        key = data.storage.key
        datasets = _bucket(self, "Datasets", stage.datasets_bucket, key)
        self.add_stack_dependency(serving)
        self.workflow = TrainingWorkflow(
            self,
            "Training",
            stage=stage,
            key=key,
            datasets=datasets,
            artifacts=_bucket(self, "Artifacts", stage.artifacts_bucket, key),
            topic=data.alerts.topic,
            deployment=sfn.StateMachine.from_state_machine_name(self, "Deployment", stage.deployment_state_machine),
        )
        self.trigger = UploadTrigger(
            self,
            "UploadTrigger",
            key=key,
            datasets=datasets,
            workflow=self.workflow.state_machine,
            topic=data.alerts.topic,
            prefix=stage.prefix,
            backend=stage.backend,
            default_hyperparameters=stage.hyperparameters,
            stage_config_hash=stage_config_hash(stage),
        )
        CfnOutput(self, "TrainingStateMachine", value=self.workflow.state_machine.state_machine_arn)


class BatchStack(Stack):
    """Batch classification: batch.json uploads start transform jobs with the registry's models."""

    def __init__(
        self, scope: Construct, id: str, *, stage: StageConfig, data: DataStack, serving: ServingStack
    ) -> None:
        super().__init__(scope, id, env=_env(stage), description=f"imgclf {stage.name}: batch classification")
        key = data.storage.key
        self.add_stack_dependency(serving)  # the model package group
        self.workflow = BatchWorkflow(
            self,
            "Batch",
            stage=stage,
            key=key,
            datasets=_bucket(self, "Datasets", stage.datasets_bucket, key),
            artifacts=_bucket(self, "Artifacts", stage.artifacts_bucket, key),
            topic=data.alerts.topic,
        )
        CfnOutput(self, "BatchStateMachine", value=self.workflow.state_machine.state_machine_arn)


def add_stage(scope: Construct, stage: StageConfig) -> list:
    """The four stacks of ``stage``, named Imgclf-<stage>-Data/-Serving/-Training/-Batch."""
    name = f"Imgclf-{stage.name}"
    data = DataStack(scope, f"{name}-Data", stage=stage)
    serving = ServingStack(scope, f"{name}-Serving", stage=stage, data=data)
    training = TrainingStack(scope, f"{name}-Training", stage=stage, data=data, serving=serving)
    batch = BatchStack(scope, f"{name}-Batch", stage=stage, data=data, serving=serving)
    for stack in (data, serving, training, batch):
        Tags.of(stack).add(TAG, stage.name)
        acknowledge_grant_actions(stack)
    return [data, serving, training, batch]
