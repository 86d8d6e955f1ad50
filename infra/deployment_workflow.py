"""The deployment workflow: model package -> model -> endpoint config -> create the endpoint, or
update it blue/green with SageMaker's deployment guardrails (a canary, or all at once for a
fleet of one, with a baking period under CloudWatch alarms and automatic rollback) -> poll
DescribeEndpoint -> auto scaling. Started by the training workflow for auto-approved models and
by EventBridge when a person approves one. A failure removes the new model and endpoint config
only while the endpoint cannot be using them."""

from __future__ import annotations

from typing import Any, Dict, List

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from app.config import StageConfig
from imgclf_core.environment import DeployEnvironment

from .function import PipelineFunction
from .nag import acknowledge, lambda_versions, wildcard
from .sagemaker_roles import model_role
from .training_workflow import instance_store_only, sdk_retry

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
IN_PROGRESS = ["Creating", "Updating", "SystemUpdating", "RollingBack"]
BAKING_SECONDS = 300  # how long the alarms watch the new fleet before the next traffic step
CANARY_PERCENT = 10


def scaling_alarms(stage: StageConfig) -> str:
    """The ARNs of the alarms Application Auto Scaling creates for the variant's target tracking
    (``TargetTracking-endpoint/<endpoint>/variant/<variant>-AlarmHigh-<id>`` and ``-AlarmLow-``)."""
    resource_id = f"endpoint/{stage.endpoint_name}/variant/{VARIANT}"
    return f"arn:aws:cloudwatch:{stage.region}:{stage.account}:alarm:TargetTracking-{resource_id}-*"


def scaling_caller_statements(stage: StageConfig) -> List[iam.PolicyStatement]:
    """What Application Auto Scaling checks on its caller for a SageMaker endpoint variant (its
    identity-based policy examples: "Permissions required for API actions on target services
    and CloudWatch"), each on the stage's own resources: the endpoint, its configs, and the
    alarms of the variant's target-tracking policy (``TargetTracking-<resource id>-...``)."""
    sm = f"arn:aws:sagemaker:{stage.region}:{stage.account}"
    endpoint = f"endpoint/{stage.endpoint_name}"
    return [
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=[f"{sm}:{endpoint}"],
        ),
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpointConfig"], resources=[f"{sm}:endpoint-config/{stage.prefix}-*"]
        ),
        iam.PolicyStatement(
            actions=["cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
            resources=[scaling_alarms(stage)],
        ),
    ]


def traffic_routing(instances: int) -> Dict[str, Any]:
    """UpdateEndpoint's TrafficRoutingConfiguration for a new fleet of ``instances``: a canary of
    about 10% (at least one instance, and at most half the fleet, as SageMaker requires); a
    fleet of one has no room for a canary, so all its traffic shifts at once and bakes under the
    rollback alarms."""
    if instances < 2:
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": BAKING_SECONDS}
    canary = max(1, instances * CANARY_PERCENT // 100)
    return {
        "Type": "CANARY",
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": canary},
        "WaitIntervalInSeconds": BAKING_SECONDS,
    }


class DeploymentWorkflow(Construct):
    def __init__(self, scope: Construct, id: str, *, stage: StageConfig, key: kms.IKey, artifacts: s3.IBucket) -> None:
        super().__init__(scope, id)
        region, account, prefix = stage.region, stage.account, stage.prefix
        endpoint = stage.endpoint_name
        self.model_role = model_role(self, "ModelRole", stage, key, artifacts)
        self.alarm_names = [f"{prefix}-endpoint-5xx", f"{prefix}-endpoint-latency"]
        self.alarms = self._alarms(stage)
        sm = f"arn:aws:sagemaker:{region}:{account}"
        models = f"{sm}:model/{prefix}-*"
        configs = f"{sm}:endpoint-config/{prefix}-*"
        endpoint_arn = f"{sm}:endpoint/{endpoint}"
        package_arn = f"{sm}:model-package/{stage.model_package_group}/*"
        resource_id = f"endpoint/{endpoint}/variant/{VARIANT}"
        variant_target = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id,
            "ScalableDimension": SCALABLE_DIMENSION,
        }
        scalable_target = {
            **variant_target,
            "MinCapacity": stage.endpoint.min_instances,
            "MaxCapacity": stage.endpoint.max_instances,
        }
        new_config = {"EndpointConfigName.$": "$.plan.endpoint_config_name"}
        new_model = {"ModelName.$": "$.plan.model_name"}

        self.planner = PipelineFunction(
            self,
            "PlanDeployment",
            handler="lambdas.deploy.handler.handler",
            key=key,
            environment=DeployEnvironment(resource_prefix=prefix, endpoint_name=endpoint).as_environment(),
        )
        self.planner.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[package_arn])
        )
        self.planner.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=[endpoint_arn])
        )

        def sdk(id: str, action: str, parameters: Dict[str, Any], resources: List[str], **kw: Any) -> Any:
            service = "applicationautoscaling" if action.endswith(("ScalableTarget", "ScalingPolicy")) else "sagemaker"
            return sdk_retry(
                tasks.CallAwsService(
                    self,
                    id,
                    service=service,
                    action=action,
                    parameters=parameters,
                    iam_resources=resources,
                    iam_action="application-autoscaling:" + action[0].upper() + action[1:]
                    if service == "applicationautoscaling"
                    else None,
                    result_path=kw.pop("result_path", sfn.JsonPath.DISCARD),
                    **kw,
                )
            )

        # a failure before the endpoint can use this run's model and endpoint config removes them
        failed = sfn.Fail(self, "DeploymentFailed", error="DeploymentFailed", cause="see the execution's history")
        delete_config = sdk(
            "DeleteNewEndpointConfig",
            "deleteEndpointConfig",
            new_config,
            [configs],
        )
        delete_model = sdk("DeleteNewModel", "deleteModel", new_model, [models])
        delete_config.add_catch(delete_model, errors=["States.ALL"], result_path="$.cleanup_error")
        delete_model.add_catch(failed, errors=["States.ALL"], result_path="$.cleanup_error")
        delete_config.next(delete_model)
        delete_model.next(failed)

        def guarded(state: Any, handler: Any = delete_config) -> Any:
            state.add_catch(handler, errors=["States.ALL"], result_path="$.error")
            return state

        # once the endpoint may use them, a failure keeps them: deleting them would break it
        without_scaling = sfn.Fail(
            self,
            "DeployedWithoutScaling",
            error="DeployedWithoutScaling",
            cause="The endpoint serves the new model, but its auto scaling could not be registered; the new model "
            "and endpoint config are kept. Register the scaling target by hand (docs/troubleshooting.md).",
        )
        state_unknown = sfn.Fail(
            self,
            "EndpointStateUnknown",
            error="EndpointStateUnknown",
            cause="DescribeEndpoint failed after the endpoint was created or updated; the new model and endpoint "
            "config are kept, since the endpoint may use them.",
        )
        not_in_service = sfn.Fail(
            self,
            "NewConfigNotInService",
            error="NewConfigNotInService",
            cause="The endpoint uses the new endpoint config but is not InService; the new model and endpoint "
            "config are kept (see DescribeEndpoint's FailureReason).",
        )

        plan = tasks.LambdaInvoke(
            self,
            "Plan",
            lambda_function=self.planner.function,
            payload=sfn.TaskInput.from_object(
                {"model_package_arn.$": "$.model_package_arn", "run_id.$": "$$.Execution.Id"}
            ),
            payload_response_only=True,
            result_path="$.plan",
        )
        plan.add_catch(
            sfn.Fail(self, "PlanFailed", error="PlanFailed", cause="the model package cannot be deployed"),
            errors=["States.ALL"],
            result_path="$.error",
        )
        create_model = guarded(
            sdk(
                "CreateModel",
                "createModel",
                self._model_request(stage),
                [models],
            )
        )
        variant: Dict[str, Any] = {
            "VariantName": VARIANT,
            "ModelName.$": "$.plan.model_name",
            "InstanceType": stage.endpoint.instance_type,
            "InitialInstanceCount": stage.endpoint.min_instances,
        }
        config_request: Dict[str, Any] = {
            "EndpointConfigName.$": "$.plan.endpoint_config_name",
            "ProductionVariants": [variant],
            "Tags": stage.request_tags,
        }
        if not instance_store_only(stage.endpoint.instance_type):
            config_request["KmsKeyId"] = key.key_arn
        create_config = guarded(sdk("CreateEndpointConfig", "createEndpointConfig", config_request, [configs]))
        create_endpoint = guarded(
            sdk(
                "CreateEndpoint",
                "createEndpoint",
                {
                    "EndpointName": endpoint,
                    "EndpointConfigName.$": "$.plan.endpoint_config_name",
                    "Tags": stage.request_tags,
                },
                [endpoint_arn, configs],
            )
        )
        deregister = sdk(
            "DeregisterScaling",
            "deregisterScalableTarget",
            variant_target,
            ["*"],
        )
        update_endpoint = guarded(
            sdk(
                "UpdateEndpoint",
                "updateEndpoint",
                {
                    "EndpointName": endpoint,
                    "EndpointConfigName.$": "$.plan.endpoint_config_name",
                    "RetainAllVariantProperties": False,
                    "DeploymentConfig": {
                        "BlueGreenUpdatePolicy": {
                            "TrafficRoutingConfiguration": traffic_routing(stage.endpoint.min_instances),
                            "TerminationWaitInSeconds": 300,
                            "MaximumExecutionTimeoutInSeconds": 3600,
                        },
                        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in self.alarm_names]},
                    },
                },
                [endpoint_arn, configs],
            )
        )
        # no scalable target registered yet is fine: go on to the update
        deregister.add_catch(update_endpoint, errors=["States.ALL"], result_path="$.deregister_error")
        wait = sfn.Wait(self, "WaitForEndpoint", time=sfn.WaitTime.duration(Duration.seconds(30)))
        describe = guarded(
            sdk(
                "DescribeEndpoint",
                "describeEndpoint",
                {"EndpointName": endpoint},
                [endpoint_arn],
                result_selector={
                    "EndpointStatus.$": "$.EndpointStatus",
                    "EndpointConfigName.$": "$.EndpointConfigName",
                },
                result_path="$.endpoint",
            ),
            state_unknown,
        )
        register_scaling = guarded(
            sdk(
                "RegisterScaling",
                "registerScalableTarget",
                scalable_target,
                ["*"],
            ),
            without_scaling,
        )
        scaling_policy = guarded(
            sdk(
                "PutScalingPolicy",
                "putScalingPolicy",
                {
                    "PolicyName": f"{prefix}-invocations-per-instance",
                    **variant_target,
                    "PolicyType": "TargetTrackingScaling",
                    "TargetTrackingScalingPolicyConfiguration": {
                        "TargetValue": stage.endpoint.invocations_per_instance,
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                        },
                        "ScaleInCooldown": 300,
                        "ScaleOutCooldown": 60,
                    },
                },
                ["*"],
            ),
            without_scaling,
        )
        deployed = sfn.Pass(
            self,
            "Deployed",
            parameters={
                "endpoint": endpoint,
                "endpoint_config_name.$": "$.plan.endpoint_config_name",
                "model_package_arn.$": "$.plan.model_package_arn",
                "version.$": "$.plan.version",
                "action.$": "$.plan.action",
            },
        )
        # a rollback leaves the old config serving: restore its scaling, then clean up and fail
        restore_scaling = sdk(
            "RestoreScaling",
            "registerScalableTarget",
            scalable_target,
            ["*"],
        )
        rolled_back = sfn.Fail(
            self, "DeploymentRolledBack", error="DeploymentRolledBack", cause="an alarm or a failure rolled it back"
        )
        remove_config = sdk(
            "RemoveRolledBackConfig",
            "deleteEndpointConfig",
            new_config,
            [configs],
        )
        remove_model = sdk("RemoveRolledBackModel", "deleteModel", new_model, [models])
        for state in (restore_scaling, remove_config, remove_model):
            state.add_catch(rolled_back, errors=["States.ALL"], result_path="$.cleanup_error")
        restore_scaling.next(remove_config)
        remove_config.next(remove_model)
        remove_model.next(rolled_back)
        delete_failed_endpoint = sdk(
            "DeleteFailedEndpoint", "deleteEndpoint", {"EndpointName": endpoint}, [endpoint_arn]
        )
        delete_failed_endpoint.add_catch(delete_config, errors=["States.ALL"], result_path="$.cleanup_error")
        delete_failed_endpoint.next(delete_config)

        status = "$.endpoint.EndpointStatus"
        uses_new_config = sfn.Condition.string_equals_json_path(
            "$.endpoint.EndpointConfigName", "$.plan.endpoint_config_name"
        )
        check = (
            sfn.Choice(self, "EndpointStatus")
            .when(sfn.Condition.or_(*(sfn.Condition.string_equals(status, s) for s in IN_PROGRESS)), wait)
            .when(
                sfn.Condition.and_(sfn.Condition.string_equals(status, "InService"), uses_new_config),
                register_scaling,
            )
            .when(sfn.Condition.string_equals(status, "InService"), restore_scaling)
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(status, "Failed"),
                    sfn.Condition.string_equals("$.plan.action", "create"),
                ),
                delete_failed_endpoint,
            )
            .when(uses_new_config, not_in_service)
            .otherwise(delete_config)
        )
        wait.next(describe)
        describe.next(check)
        register_scaling.next(scaling_policy)
        scaling_policy.next(deployed)
        create_endpoint.next(wait)
        deregister.next(update_endpoint)
        update_endpoint.next(wait)
        create_model.next(create_config)
        create_config.next(
            sfn.Choice(self, "CreateOrUpdate")
            .when(sfn.Condition.string_equals("$.plan.action", "create"), create_endpoint)
            .otherwise(deregister)
        )
        definition = plan.next(
            sfn.Choice(self, "Action")
            .when(
                sfn.Condition.string_equals("$.plan.action", "skip"),
                sfn.Succeed(self, "NothingToDeploy", output_path="$.plan"),
            )
            .when(
                sfn.Condition.string_equals("$.plan.action", "busy"),
                sfn.Fail(self, "EndpointBusy", error="EndpointBusy", cause="another deployment is in progress"),
            )
            .otherwise(create_model)
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.SIX_MONTHS, encryption_key=key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=stage.deployment_state_machine,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            timeout=Duration.hours(3),
        )
        role = self.state_machine.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.model_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeModelPackage"],  # CreateModel from a versioned package
                resources=[package_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],  # deployment guardrails read the rollback alarms
                resources=[a.alarm_arn for a in self.alarms],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ],
                conditions={"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:AddTags"],  # CreateModel, CreateEndpointConfig and CreateEndpoint carry Tags
                resources=[models, configs, endpoint_arn],
            )
        )
        for statement in scaling_caller_statements(stage):
            role.add_to_principal_policy(statement)
        key.grant_encrypt_decrypt(role)
        role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:CreateGrant"], resources=[key.key_arn]))
        acknowledge(role, lambda_versions(self.planner.function), "Invoking the function and its versions.")
        acknowledge(role, wildcard("*"), "Application Auto Scaling and X-Ray have no resource-level permissions.")
        for resource, what in ((models, "Models"), (configs, "Endpoint configs")):
            acknowledge(role, wildcard(resource), f"{what} are named per deployment under the stage prefix.")
        acknowledge(role, wildcard(package_arn), "The versions of this stage's model package group.")
        acknowledge(role, wildcard(scaling_alarms(stage)), "The alarms of the variant's target-tracking policy.")
        acknowledge(self.planner.role, wildcard(package_arn), "The versions of this stage's model package group.")

    def _model_request(self, stage: StageConfig) -> Dict[str, Any]:
        request: Dict[str, Any] = {
            "ModelName.$": "$.plan.model_name",
            "ExecutionRoleArn": self.model_role.role_arn,
            "Containers": [{"ModelPackageName.$": "$.plan.model_package_arn"}],
            "EnableNetworkIsolation": True,
            "Tags": stage.request_tags,
        }
        if stage.vpc:
            request["VpcConfig"] = stage.vpc.as_request()
        return request

    def _alarms(self, stage: StageConfig) -> List[cloudwatch.Alarm]:
        """The alarms that roll a blue/green update back while traffic shifts."""
        dimensions = {"EndpointName": stage.endpoint_name, "VariantName": VARIANT}
        errors = cloudwatch.Alarm(
            self,
            "ModelErrors",
            alarm_name=self.alarm_names[0],
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
            self,
            "ModelLatency",
            alarm_name=self.alarm_names[1],
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
