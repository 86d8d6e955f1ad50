"""A custom resource whose deletion removes what the workflows created outside CloudFormation:
the endpoint, its scaling target, the stage's endpoint configs and models, and the versions in
the stage's Model Package Group, which CloudFormation cannot delete while it holds any."""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from imgclf_core.environment import CleanupEnvironment

from . import arns
from .endpoint_scaling import scaling_alarms, scaling_caller_statements
from .function import PipelineFunction
from .nag import acknowledge, wildcard_arn


def registry_group(scope: Construct, name: str) -> sagemaker.CfnModelPackageGroup:
    """The Model Package Group ``name`` of ``scope``'s stack (the registry is created first)."""
    for child in Stack.of(scope).node.find_all():
        if isinstance(child, sagemaker.CfnModelPackageGroup) and child.model_package_group_name == name:
            return child
    raise ValueError(f"no Model Package Group {name} in the stack: create the registry before the clean-up")


class EndpointCleanup(Construct):
    """Removes the endpoint ``endpoint_name``, the models and endpoint configs named under
    ``prefix``, and the versions in ``model_package_group`` when the stack is deleted."""

    def __init__(
        self, scope: Construct, id: str, *, key: kms.IKey, prefix: str, endpoint_name: str, model_package_group: str
    ) -> None:
        super().__init__(scope, id)
        self.handler = PipelineFunction(
            self,
            "Cleanup",
            handler="lambdas.cleanup.handler.handler",
            key=key,
            timeout=Duration.minutes(5),
            environment=CleanupEnvironment(
                resource_prefix=prefix, endpoint_name=endpoint_name, model_package_group=model_package_group
            ).as_environment(),
        )
        packages = arns.sagemaker(self, "model-package", f"{model_package_group}/*")
        configs = arns.sagemaker(self, "endpoint-config", f"{prefix}-*")
        models = arns.sagemaker(self, "model", f"{prefix}-*")
        function = self.handler.function
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteEndpoint"], resources=[arns.sagemaker(self, "endpoint", endpoint_name)]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DeleteEndpointConfig"], resources=[configs])
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:DeleteModel"], resources=[models]))
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
        for statement in scaling_caller_statements(self, endpoint_name=endpoint_name, prefix=prefix):
            function.add_to_role_policy(statement)
        role = self.handler.role
        for resource in (configs, models):
            acknowledge(role, wildcard_arn(self, resource), "What the deployment workflow named under the prefix.")
        acknowledge(role, wildcard_arn(self, packages), "The versions of this stage's model package group.")
        acknowledge(
            role,
            wildcard_arn(self, scaling_alarms(self, endpoint_name)),
            "The alarms of the variant's target-tracking policy.",
        )
        self.resource = CustomResource(
            self, "Resource", service_token=function.function_arn, resource_type="Custom::ImgclfEndpointCleanup"
        )
        # CloudFormation deletes in reverse dependency order: this runs before the group goes
        self.resource.node.add_dependency(registry_group(self, model_package_group))
