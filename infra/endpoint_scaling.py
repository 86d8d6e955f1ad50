"""The endpoint's production variant and its Application Auto Scaling target: what the
deployment workflow registers and the clean-up deregisters, and what Application Auto Scaling
checks on the caller of either."""

from __future__ import annotations

from typing import List

from aws_cdk import aws_iam as iam
from constructs import IConstruct

from . import arns

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def resource_id(endpoint_name: str) -> str:
    """The scalable target's ResourceId: ``endpoint/<endpoint>/variant/<variant>``."""
    return f"endpoint/{endpoint_name}/variant/{VARIANT}"


def scaling_alarms(scope: IConstruct, endpoint_name: str) -> str:
    """The ARNs of the alarms Application Auto Scaling creates for the variant's target tracking
    (``TargetTracking-endpoint/<endpoint>/variant/<variant>-AlarmHigh-<id>`` and ``-AlarmLow-``)."""
    return arns.alarm(scope, f"TargetTracking-{resource_id(endpoint_name)}-*")


def scaling_caller_statements(scope: IConstruct, *, endpoint_name: str, prefix: str) -> List[iam.PolicyStatement]:
    """What Application Auto Scaling checks on its caller for a SageMaker endpoint variant (its
    identity-based policy examples: "Permissions required for API actions on target services
    and CloudWatch"), each on the stage's own resources: the endpoint, its configs (named under
    ``prefix``), and the alarms of the variant's target-tracking policy."""
    return [
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=[arns.sagemaker(scope, "endpoint", endpoint_name)],
        ),
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpointConfig"],
            resources=[arns.sagemaker(scope, "endpoint-config", f"{prefix}-*")],
        ),
        iam.PolicyStatement(
            actions=["cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
            resources=[scaling_alarms(scope, endpoint_name)],
        ),
    ]
