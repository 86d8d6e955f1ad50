"""Uploads start runs: S3 "Object Created" events for ``datasets/*/*/dataset.json`` (through
EventBridge, which keeps the stacks free of a bucket <-> function cycle) invoke the trigger
Lambda, which checks the descriptor and starts the training workflow once per version."""

from __future__ import annotations

import hashlib
import json

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from app.config import StageConfig
from image_dataset.descriptor import FILE_NAME

from .dead_letters import dead_letter_queue
from .function import PipelineFunction
from .nag import acknowledge, s3_objects


def stage_config_hash(stage: StageConfig) -> str:
    """What, besides the dataset and hyperparameters, makes a training run different."""
    relevant = {"backend": stage.backend, "training": stage.training.__dict__, "image": stage.image_uri("training")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


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
            environment={
                "STATE_MACHINE_ARN": workflow.state_machine_arn,
                "BACKEND": stage.backend,
                "DEFAULT_HYPERPARAMETERS": json.dumps(dict(stage.hyperparameters), sort_keys=True),
                "STAGE_CONFIG_HASH": stage_config_hash(stage),
                "ALERT_TOPIC_ARN": topic.topic_arn,
            },
        )
        function = self.handler.function
        datasets.grant_read(function, f"datasets/*/{FILE_NAME}")
        acknowledge(
            self.handler.role,
            s3_objects(stage.datasets_bucket, f"datasets/*/{FILE_NAME}"),
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
                    "object": {"key": [{"wildcard": f"datasets/*/*/{FILE_NAME}"}]},
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function, dead_letter_queue=dead_letter_queue(self, "DeadLetters", key), retry_attempts=4
            )
        )
