"""The alarms that roll a blue/green endpoint update back while traffic shifts: model errors
and p90 model latency of the endpoint's variant."""

from __future__ import annotations

from typing import List, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from .endpoint_scaling import VARIANT


def rollback_alarms(scope: Construct, *, names: Sequence[str], endpoint_name: str) -> List[cloudwatch.Alarm]:
    """The errors alarm and the latency alarm, named ``names`` (in that order), in ``scope``."""
    errors_name, latency_name = names
    dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT}
    errors = cloudwatch.Alarm(
        scope,
        "ModelErrors",
        alarm_name=errors_name,
        alarm_description="Model errors on the endpoint; rolls a deployment back",
        metric=cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions_map=dimensions,
            statistic="Sum",
            period=Duration.minutes(1),
        ),
        threshold=1,
        evaluation_periods=2,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    latency = cloudwatch.Alarm(
        scope,
        "ModelLatency",
        alarm_name=latency_name,
        alarm_description="p90 model latency over 2 s; rolls a deployment back",
        metric=cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions_map=dimensions,
            statistic="p90",
            period=Duration.minutes(1),
        ),
        threshold=2_000_000,  # microseconds
        evaluation_periods=3,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return [errors, latency]
