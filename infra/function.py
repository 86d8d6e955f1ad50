"""A Lambda function of this project: the shared bundle, one handler, Powertools logging,
X-Ray tracing, and a KMS-encrypted log group with a retention."""

from __future__ import annotations

from typing import Dict, Optional

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .lambda_code import ARCHITECTURE, RUNTIME, lambda_code
from .nag import acknowledge


class PipelineFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        handler: str,
        key: kms.IKey,
        environment: Optional[Dict[str, str]] = None,
        timeout: Optional[Duration] = None,
        memory_size: int = 256,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # our own role: logs go to the function's log group only (no AWS managed policy)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) has no resource-level permissions; "
            "any other statement of this role names its resources.",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_code(),
            timeout=timeout or Duration.seconds(30),
            memory_size=memory_size,
            role=self.role,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={"POWERTOOLS_SERVICE_NAME": id, "POWERTOOLS_LOG_LEVEL": "INFO", **(environment or {})},
        )
