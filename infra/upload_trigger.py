"""Uploads start runs: S3 "Object Created" events for ``datasets/*/*/dataset.json`` (through
EventBridge, which keeps the stacks free of a bucket <-> function cycle) invoke the trigger
Lambda, which checks the descriptor and starts the training workflow once per version."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from app.config import StageConfig
from imgclf_core.environment import TriggerEnvironment
from imgclf_core.plan import stage_identity
from imgclf_core.s3_layout import DESCRIPTOR_EVENT_PATTERN, DESCRIPTOR_OBJECTS

from .dead_letters import dead_letter_queue
from .function import PipelineFunction
from .nag import acknowledge, s3_objects


def stage_config_hash(stage: StageConfig) -> str:
    """What, besides the dataset and hyperparameters, makes a training run different: the
    training resources and image, and the gate (imgclf_core.plan.stage_identity)."""
    training = {**stage.training.__dict__, "image": stage.image_uri("training")}
    return stage_identity(stage.backend, training, stage.accuracy_threshold, stage.max_regression)


class UploadTrigger(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: StageConfig,
        key: kms.IKey,
        datasets: s3.IBucket,
        workflow: sfn.IStateMachine,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        self.handler = PipelineFunction(
            self,
            "Trigger",
            handler="lambdas.trigger.handler.handler",
            key=key,
            timeout=Duration.seconds(60),
            environment=TriggerEnvironment(
                state_machine_arn=workflow.state_machine_arn,
                backend=stage.backend,
                default_hyperparameters=dict(stage.hyperparameters),
                stage_config_hash=stage_config_hash(stage),
                alert_topic_arn=topic.topic_arn,
            ).as_environment(),
        )
        function = self.handler.function
        datasets.grant_read(function, DESCRIPTOR_OBJECTS)
        acknowledge(
            self.handler.role,
            s3_objects(stage.datasets_bucket, DESCRIPTOR_OBJECTS),
            "It reads only the descriptors of uploads.",
        )
        workflow.grant_start_execution(function)
        topic.grant_publish(function)
        self.rule = events.Rule(
            self,
            "DescriptorUploaded",
            description="A dataset upload finished: its dataset.json arrived",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [datasets.bucket_name]},
                    "object": {"key": [{"wildcard": DESCRIPTOR_EVENT_PATTERN}]},
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function, dead_letter_queue=dead_letter_queue(self, "DeadLetters", key), retry_attempts=4
            )
        )
