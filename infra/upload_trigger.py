"""Uploads start runs: S3 "Object Created" events for ``datasets/*/*/dataset.json`` (through
EventBridge, which keeps the stacks free of a bucket <-> function cycle) invoke the trigger
Lambda, which checks the descriptor and starts the training workflow once per version."""

from __future__ import annotations

from typing import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from imgclf_core.environment import TriggerEnvironment
from imgclf_core.s3_layout import DESCRIPTOR_EVENT_PATTERN, DESCRIPTOR_OBJECTS

from .dead_letters import TRIGGER_RETRY_ATTEMPTS, FailedInvocations, dead_letter_alarm, dead_letter_queue
from .function import PipelineFunction
from .nag import acknowledge, s3_objects


class UploadTrigger(Construct):
    """Starts ``workflow`` for each dataset version uploaded to ``datasets``, with the stage's
    ``backend``, its ``default_hyperparameters`` and ``stage_config_hash``
    (infra.config.stage_config_hash); failures to start go to ``topic``, and so does an alarm
    (``<prefix>-upload-dead-letters``) when EventBridge could not invoke the trigger at all."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        datasets: s3.IBucket,
        workflow: sfn.IStateMachine,
        topic: sns.ITopic,
        prefix: str,
        backend: str,
        default_hyperparameters: Mapping[str, str],
        stage_config_hash: str,
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
                backend=backend,
                default_hyperparameters=dict(default_hyperparameters),
                stage_config_hash=stage_config_hash,
                alert_topic_arn=topic.topic_arn,
            ).as_environment(),
        )
        function = self.handler.function
        datasets.grant_read(function, DESCRIPTOR_OBJECTS)
        acknowledge(
            self.handler.role,
            s3_objects(datasets, DESCRIPTOR_OBJECTS),
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
        self.dead_letters = dead_letter_queue(self, "DeadLetters", key)
        self.rule.add_target(targets.LambdaFunction(function, dead_letter_queue=self.dead_letters, retry_attempts=4))
        # an event the function failed on (S3 or Step Functions refused, throttled) after Lambda's
        # two retries: kept in the same queue with its error, instead of dropped
        function.configure_async_invoke(
            retry_attempts=TRIGGER_RETRY_ATTEMPTS, on_failure=FailedInvocations(self.dead_letters, key)
        )
        self.dead_letter_alarm = dead_letter_alarm(
            self,
            "DeadLetterAlarm",
            self.dead_letters,
            alarm_name=f"{prefix}-upload-dead-letters",
            description=f"{prefix}: an upload started no run: EventBridge could not invoke the upload trigger, "
            "or the trigger failed on it (the dead-letter queue holds the S3 event)",
            topic=topic,
        )
