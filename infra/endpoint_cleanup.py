"""A custom resource whose deletion removes what the workflows created outside CloudFormation:
the endpoint, its scaling target, the stage's endpoint configs and models, and the versions in
the stage's Model Package Group, which CloudFormation cannot delete while it holds any."""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from app.config import StageConfig
from imgclf_core.environment import CleanupEnvironment

from .deployment_workflow import scaling_alarms, scaling_caller_statements
from .function import PipelineFunction
from .nag import acknowledge, wildcard


def registry_group(scope: Construct, name: str) -> sagemaker.CfnModelPackageGroup:
    """The Model Package Group ``name`` of ``scope``'s stack (the registry is created first)."""
    for child in Stack.of(scope).node.find_all():
        if isinstance(child, sagemaker.CfnModelPackageGroup) and child.model_package_group_name == name:
            return child
    raise ValueError(f"no Model Package Group {name} in the stack: create the registry before the clean-up")


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
            environment=CleanupEnvironment(
                resource_prefix=prefix, endpoint_name=stage.endpoint_name, model_package_group=stage.model_package_group
            ).as_environment(),
        )
        sm = f"arn:aws:sagemaker:{region}:{account}"
        packages = f"{sm}:model-package/{stage.model_package_group}/*"
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
        function.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:DeleteModelPackage"], resources=[packages]))
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:ListEndpoints",
                    "sagemaker:ListEndpointConfigs",
                    "sagemaker:ListModels",
                    "sagemaker:ListModelPackages",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DeregisterScalableTarget",
                ],
                resources=["*"],  # list and Application Auto Scaling actions take no resource
            )
        )
        # deregistering the scalable target: what Application Auto Scaling checks on its caller
        for statement in scaling_caller_statements(stage):
            function.add_to_role_policy(statement)
        for resource in (f"{sm}:endpoint-config/{prefix}-*", f"{sm}:model/{prefix}-*"):
            acknowledge(self.handler.role, wildcard(resource), "What the deployment workflow named under the prefix.")
        acknowledge(self.handler.role, wildcard(packages), "The versions of this stage's model package group.")
        acknowledge(
            self.handler.role, wildcard(scaling_alarms(stage)), "The alarms of the variant's target-tracking policy."
        )
        self.resource = CustomResource(
            self, "Resource", service_token=function.function_arn, resource_type="Custom::ImgclfEndpointCleanup"
        )
        # CloudFormation deletes in reverse dependency order: this runs before the group goes
        self.resource.node.add_dependency(registry_group(self, stage.model_package_group))
