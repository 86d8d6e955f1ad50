"""The deployment workflow: model package -> model -> endpoint config -> create the endpoint, or
update it blue/green with SageMaker's deployment guardrails (a canary, or all at once for a
fleet of one, with a baking period under CloudWatch alarms and automatic rollback) -> poll
DescribeEndpoint -> auto scaling. Started by the training workflow for auto-approved models and
by EventBridge when a person approves one. A failure removes the new model and endpoint config
only while the endpoint cannot be using them."""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from imgclf_core.capture import JSON_CONTENT_TYPES
from imgclf_core.environment import DeployEnvironment
from imgclf_core.s3_layout import captures

from . import arns
from .config import StageConfig
from .endpoint_scaling import SCALABLE_DIMENSION, VARIANT, resource_id, scaling_alarms, scaling_caller_statements
from .function import PipelineFunction
from .instances import instance_store_only
from .nag import acknowledge, lambda_versions, wildcard, wildcard_arn
from .retries import sdk_retry
from .rollback_alarms import rollback_alarms
from .sagemaker_roles import model_role

IN_PROGRESS = ["Creating", "Updating", "SystemUpdating", "RollingBack"]
BAKING_SECONDS = 300  # how long the alarms watch the new fleet before the next traffic step
CANARY_PERCENT = 10
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
NEW_CONFIG = {"EndpointConfigName.$": "$.plan.endpoint_config_name"}  # this run's endpoint config
NEW_MODEL = {"ModelName.$": "$.plan.model_name"}  # this run's model


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


class _Resources(NamedTuple):
    """The ARNs of what the workflow creates and uses (patterns end in ``*``)."""

    models: str
    configs: str
    endpoint: str
    packages: str


class DeploymentWorkflow(Construct):
    """``self.state_machine`` deploys a model package (``{"model_package_arn": ...}``) to the
    stage's endpoint; ``self.model_role`` is the role its models run under."""

    def __init__(self, scope: Construct, id: str, *, stage: StageConfig, key: kms.IKey, artifacts: s3.IBucket) -> None:
        super().__init__(scope, id)
        self._stage, self._key = stage, key
        self.model_role = model_role(
            self,
            "ModelRole",
            key=key,
            image_uri=stage.image_uri("inference"),
            vpc=stage.vpc is not None,
            endpoint_name=stage.endpoint_name,
            artifacts=artifacts,
            capture=stage.endpoint.capture_percent > 0,
        )
        self._artifacts = artifacts
        self.alarm_names = [f"{stage.prefix}-endpoint-5xx", f"{stage.prefix}-endpoint-latency"]
        self.alarms = rollback_alarms(self, names=self.alarm_names, endpoint_name=stage.endpoint_name)
        self._arns = _Resources(
            models=arns.sagemaker(self, "model", f"{stage.prefix}-*"),
            configs=arns.sagemaker(self, "endpoint-config", f"{stage.prefix}-*"),
            endpoint=arns.sagemaker(self, "endpoint", stage.endpoint_name),
            packages=arns.sagemaker(self, "model-package", f"{stage.model_package_group}/*"),
        )
        variant_target = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id(stage.endpoint_name),
            "ScalableDimension": SCALABLE_DIMENSION,
        }
        self._variant_target = variant_target
        self._scalable_target = {
            **variant_target,
            "MinCapacity": stage.endpoint.min_instances,
            "MaxCapacity": stage.endpoint.max_instances,
        }
        self.planner = self._plan_function()
        definition = self._definition()
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
        self._grant_state_machine(self.state_machine.role)

    # -- the states ---------------------------------------------------------------------------

    def _plan_function(self) -> PipelineFunction:
        """The Lambda that decides what to do: create, update, skip, or wait for another run."""
        stage = self._stage
        planner = PipelineFunction(
            self,
            "PlanDeployment",
            handler="lambdas.deploy.handler.handler",
            key=self._key,
            environment=DeployEnvironment(
                resource_prefix=stage.prefix, endpoint_name=stage.endpoint_name
            ).as_environment(),
        )
        planner.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[self._arns.packages])
        )
        planner.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=[self._arns.endpoint])
        )
        return planner

    def _sdk(self, id: str, action: str, parameters: Dict[str, Any], resources: List[str], **kw: Any) -> Any:
        """A SageMaker or Application Auto Scaling call that retries throttling."""
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

    def _guarded(self, state: Any, handler: Optional[sfn.IChainable] = None) -> Any:
        """``state`` catching every error into ``handler`` (the clean-up of this run's model and config)."""
        state.add_catch(handler or self._delete_new, errors=["States.ALL"], result_path="$.error")
        return state

    def _cleanup_on_failure(self) -> sfn.IChainable:
        """A failure before the endpoint can use this run's model and endpoint config removes them."""
        failed = sfn.Fail(self, "DeploymentFailed", error="DeploymentFailed", cause="see the execution's history")
        delete_config = self._sdk("DeleteNewEndpointConfig", "deleteEndpointConfig", NEW_CONFIG, [self._arns.configs])
        delete_model = self._sdk("DeleteNewModel", "deleteModel", NEW_MODEL, [self._arns.models])
        delete_config.add_catch(delete_model, errors=["States.ALL"], result_path="$.cleanup_error")
        delete_model.add_catch(failed, errors=["States.ALL"], result_path="$.cleanup_error")
        delete_config.next(delete_model)
        delete_model.next(failed)
        return delete_config  # type: ignore[no-any-return]

    def _plan(self) -> tasks.LambdaInvoke:
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
        return plan

    def _create_model_and_config(self) -> Any:
        """CreateModel -> CreateEndpointConfig; returns the first (the last is ``self._create_config``)."""
        stage = self._stage
        create_model = self._guarded(
            self._sdk("CreateModel", "createModel", self._model_request(stage), [self._arns.models])
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
            config_request["KmsKeyId"] = self._key.key_arn
        if stage.endpoint.capture_percent:
            config_request["DataCaptureConfig"] = self._data_capture()
        self._create_config = self._guarded(
            self._sdk("CreateEndpointConfig", "createEndpointConfig", config_request, [self._arns.configs])
        )
        create_model.next(self._create_config)
        return create_model

    def _data_capture(self) -> Dict[str, Any]:
        """CreateEndpointConfig's DataCaptureConfig: requests and answers of a share of the
        invocations under captures/ (imgclf_core.capture reads them), encrypted with the stage
        key; the JSON answers are kept as text, the images as base64."""
        return {
            "EnableCapture": True,
            "InitialSamplingPercentage": self._stage.endpoint.capture_percent,
            "DestinationS3Uri": captures(self._artifacts.bucket_name),
            "KmsKeyId": self._key.key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": list(JSON_CONTENT_TYPES)},
        }

    def _create_endpoint(self) -> Any:
        stage = self._stage
        return self._guarded(
            self._sdk(
                "CreateEndpoint",
                "createEndpoint",
                {
                    "EndpointName": stage.endpoint_name,
                    "EndpointConfigName.$": "$.plan.endpoint_config_name",
                    "Tags": stage.request_tags,
                },
                [self._arns.endpoint, self._arns.configs],
            )
        )

    def _update_endpoint(self) -> Any:
        """Deregister the scalable target (none yet is fine), then update blue/green under the
        rollback alarms; returns the first."""
        stage = self._stage
        deregister = self._sdk("DeregisterScaling", "deregisterScalableTarget", self._variant_target, ["*"])
        update_endpoint = self._guarded(
            self._sdk(
                "UpdateEndpoint",
                "updateEndpoint",
                {
                    "EndpointName": stage.endpoint_name,
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
                [self._arns.endpoint, self._arns.configs],
            )
        )
        # no scalable target registered yet is fine: go on to the update
        deregister.add_catch(update_endpoint, errors=["States.ALL"], result_path="$.deregister_error")
        deregister.next(update_endpoint)
        self._update = update_endpoint
        return deregister

    def _register_scaling(self) -> Any:
        """RegisterScalableTarget -> PutScalingPolicy -> Deployed; returns the first. The endpoint
        serves the new model by then: a failure keeps the model and config."""
        stage = self._stage
        without_scaling = sfn.Fail(
            self,
            "DeployedWithoutScaling",
            error="DeployedWithoutScaling",
            cause="The endpoint serves the new model, but its auto scaling could not be registered; the new model "
            "and endpoint config are kept. Register the scaling target by hand (docs/troubleshooting.md).",
        )
        register_scaling = self._guarded(
            self._sdk("RegisterScaling", "registerScalableTarget", self._scalable_target, ["*"]), without_scaling
        )
        scaling_policy = self._guarded(
            self._sdk(
                "PutScalingPolicy",
                "putScalingPolicy",
                {
                    "PolicyName": f"{stage.prefix}-invocations-per-instance",
                    **self._variant_target,
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
                "endpoint": stage.endpoint_name,
                "endpoint_config_name.$": "$.plan.endpoint_config_name",
                "model_package_arn.$": "$.plan.model_package_arn",
                "version.$": "$.plan.version",
                "action.$": "$.plan.action",
            },
        )
        register_scaling.next(scaling_policy)
        scaling_policy.next(deployed)
        return register_scaling

    def _after_rollback(self) -> Any:
        """A rollback leaves the old config serving: restore its scaling, then clean up and fail."""
        restore_scaling = self._sdk("RestoreScaling", "registerScalableTarget", self._scalable_target, ["*"])
        rolled_back = sfn.Fail(
            self, "DeploymentRolledBack", error="DeploymentRolledBack", cause="an alarm or a failure rolled it back"
        )
        remove_config = self._sdk("RemoveRolledBackConfig", "deleteEndpointConfig", NEW_CONFIG, [self._arns.configs])
        remove_model = self._sdk("RemoveRolledBackModel", "deleteModel", NEW_MODEL, [self._arns.models])
        for state in (restore_scaling, remove_config, remove_model):
            state.add_catch(rolled_back, errors=["States.ALL"], result_path="$.cleanup_error")
        restore_scaling.next(remove_config)
        remove_config.next(remove_model)
        remove_model.next(rolled_back)
        return restore_scaling

    def _delete_failed_endpoint(self) -> Any:
        """A new endpoint that failed is deleted, then this run's config and model."""
        delete = self._sdk(
            "DeleteFailedEndpoint", "deleteEndpoint", {"EndpointName": self._stage.endpoint_name}, [self._arns.endpoint]
        )
        delete.add_catch(self._delete_new, errors=["States.ALL"], result_path="$.cleanup_error")
        delete.next(self._delete_new)
        return delete

    def _wait_for_endpoint(self) -> sfn.Wait:
        """Wait -> DescribeEndpoint -> EndpointStatus: poll until the endpoint settles, then
        register scaling, or handle a rollback or failure; returns the Wait."""
        # once the endpoint may use them, a failure keeps them: deleting them would break it
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
        wait = sfn.Wait(self, "WaitForEndpoint", time=sfn.WaitTime.duration(Duration.seconds(30)))
        describe = self._guarded(
            self._sdk(
                "DescribeEndpoint",
                "describeEndpoint",
                {"EndpointName": self._stage.endpoint_name},
                [self._arns.endpoint],
                result_selector={
                    "EndpointStatus.$": "$.EndpointStatus",
                    "EndpointConfigName.$": "$.EndpointConfigName",
                },
                result_path="$.endpoint",
            ),
            state_unknown,
        )
        status = "$.endpoint.EndpointStatus"
        uses_new_config = sfn.Condition.string_equals_json_path(
            "$.endpoint.EndpointConfigName", "$.plan.endpoint_config_name"
        )
        check = (
            sfn.Choice(self, "EndpointStatus")
            .when(sfn.Condition.or_(*(sfn.Condition.string_equals(status, s) for s in IN_PROGRESS)), wait)
            .when(
                sfn.Condition.and_(sfn.Condition.string_equals(status, "InService"), uses_new_config),
                self._register_scaling(),
            )
            .when(sfn.Condition.string_equals(status, "InService"), self._after_rollback())
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(status, "Failed"),
                    sfn.Condition.string_equals("$.plan.action", "create"),
                ),
                self._delete_failed_endpoint(),
            )
            .when(uses_new_config, not_in_service)
            .otherwise(self._delete_new)
        )
        wait.next(describe)
        describe.next(check)
        return wait

    def _definition(self) -> sfn.IChainable:
        """Plan -> Action (skip, busy, or create the model and config) -> CreateOrUpdate -> wait."""
        self._delete_new = self._cleanup_on_failure()
        plan = self._plan()
        create_model = self._create_model_and_config()
        create_endpoint = self._create_endpoint()
        update = self._update_endpoint()
        wait = self._wait_for_endpoint()
        create_endpoint.next(wait)
        self._update.next(wait)
        self._create_config.next(
            sfn.Choice(self, "CreateOrUpdate")
            .when(sfn.Condition.string_equals("$.plan.action", "create"), create_endpoint)
            .otherwise(update)
        )
        return plan.next(
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

    # -- the state machine's permissions ------------------------------------------------------

    def _grant_state_machine(self, role: iam.IRole) -> None:
        """Beyond the tasks' own policies: pass the model role, read the package and alarms,
        create the scaling service-linked role, tag, what Application Auto Scaling checks on
        its caller, and the stage key."""
        stage, key, resources = self._stage, self._key, self._arns
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
                resources=[resources.packages],
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
                    arns.service_linked_role(
                        self,
                        f"{SCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                    )
                ],
                conditions={"StringLike": {"iam:AWSServiceName": SCALING_SERVICE}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:AddTags"],  # CreateModel, CreateEndpointConfig and CreateEndpoint carry Tags
                resources=[resources.models, resources.configs, resources.endpoint],
            )
        )
        for statement in scaling_caller_statements(self, endpoint_name=stage.endpoint_name, prefix=stage.prefix):
            role.add_to_principal_policy(statement)
        key.grant_encrypt_decrypt(role)
        role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:CreateGrant"], resources=[key.key_arn]))
        acknowledge(role, lambda_versions(self.planner.function), "Invoking the function and its versions.")
        acknowledge(role, wildcard("*"), "Application Auto Scaling and X-Ray have no resource-level permissions.")
        for resource, what in ((resources.models, "Models"), (resources.configs, "Endpoint configs")):
            acknowledge(role, wildcard_arn(self, resource), f"{what} are named per deployment under the stage prefix.")
        packages = wildcard_arn(self, resources.packages)
        acknowledge(role, packages, "The versions of this stage's model package group.")
        acknowledge(
            role,
            wildcard_arn(self, scaling_alarms(self, stage.endpoint_name)),
            "The alarms of the variant's target-tracking policy.",
        )
        acknowledge(self.planner.role, packages, "The versions of this stage's model package group.")

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
