"""A custom resource whose deletion removes what the deployment workflow created outside
CloudFormation: the endpoint, its scaling target, and the stage's endpoint configs and models."""

from __future__ import annotations

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from app.config import StageConfig

from .function import PipelineFunction
from .nag import acknowledge, wildcard


class EndpointCleanup(Construct):
    def __init__(self, scope: Construct, id: str, *, stage: StageConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        region, account, prefix = stage.region, stage.account, stage.prefix
        self.handler = PipelineFunction(
            self,
            "Cleanup",
            handler="lambdas.cleanup.handler.handler",
            key=key,
            timeout=Duration.minutes(5),
            environment={"RESOURCE_PREFIX": prefix, "ENDPOINT_NAME": stage.endpoint_name},
        )
        sm = f"arn:aws:sagemaker:{region}:{account}"
        function = self.handler.function
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteEndpoint"], resources=[f"{sm}:endpoint/{stage.endpoint_name}"]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteEndpointConfig"], resources=[f"{sm}:endpoint-config/{prefix}-*"]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DeleteModel"], resources=[f"{sm}:model/{prefix}-*"])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:ListEndpoints",
                    "sagemaker:ListEndpointConfigs",
                    "sagemaker:ListModels",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DeregisterScalableTarget",
                ],
                resources=["*"],  # list and Application Auto Scaling actions take no resource
            )
        )
        for resource in (f"{sm}:endpoint-config/{prefix}-*", f"{sm}:model/{prefix}-*"):
            acknowledge(self.handler.role, wildcard(resource), "What the deployment workflow named under the prefix.")
        self.resource = CustomResource(
            self, "Resource", service_token=function.function_arn, resource_type="Custom::ImgclfEndpointCleanup"
        )
