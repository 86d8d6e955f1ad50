"""The Model Package Group, and the EventBridge rule that deploys a package when a person
approves it (packages the gate approved itself are deployed by the training workflow)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .dead_letters import dead_letter_alarm, dead_letter_queue


class ModelRegistry(Construct):
    """The group ``group_name``; approving one of its manually gated packages starts ``deployment``
    (an approval that EventBridge could not deliver raises ``<prefix>-approval-dead-letters`` to
    ``topic``)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        group_name: str,
        description: str,
        deployment: sfn.IStateMachine,
        key: kms.IKey,
        topic: sns.ITopic,
        prefix: str,
    ) -> None:
        super().__init__(scope, id)
        self.group = sagemaker.CfnModelPackageGroup(
            self, "Group", model_package_group_name=group_name, model_package_group_description=description
        )
        self.approval_rule = events.Rule(
            self,
            "ManualApproval",
            description="Deploy a model package when a person approves it",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={
                    "ModelPackageGroupName": [group_name],
                    "ModelApprovalStatus": ["Approved"],
                    "CustomerMetadataProperties": {"approval": ["manual"]},
                },
            ),
        )
        self.dead_letters = dead_letter_queue(self, "DeadLetters", key)
        self.approval_rule.add_target(
            targets.SfnStateMachine(
                deployment,
                input=events.RuleTargetInput.from_object(
                    {"model_package_arn": events.EventField.from_path("$.detail.ModelPackageArn")}
                ),
                dead_letter_queue=self.dead_letters,
            )
        )
        self.dead_letter_alarm = dead_letter_alarm(
            self,
            "DeadLetterAlarm",
            self.dead_letters,
            alarm_name=f"{prefix}-approval-dead-letters",
            description=f"{prefix}: EventBridge could not start the deployment of an approved model package "
            "(the dead-letter queue holds the approval event)",
            topic=topic,
        )
