"""Batch classification in the cloud: an uploaded ``batch/<name>/batch.json`` (EventBridge ->
the start Lambda, which checks it and alerts on a bad one) starts a state machine: plan (the
model package, the inputs' manifest, a .rec's scan) -> CreateModel (network isolated, the
stage's VPC) -> a transform job (``createTransformJob.sync``: one image per request, or a .rec
split on its records) -> join the ``.out`` objects into ``predictions.jsonl`` (imgclf_core.batch's
lines, in input order) -> notify -> delete the model. A failed transform job is still joined:
its inputs without an output get error lines."""

from __future__ import annotations

from typing import Any, Dict

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from imgclf_core.backends import backend
from imgclf_core.environment import BatchJoinEnvironment, BatchPlanEnvironment, BatchTriggerEnvironment
from imgclf_core.s3_layout import BATCH_EVENT_PATTERN, BATCH_INPUT_PREFIXES, BATCH_JOBS, BATCH_REQUEST_OBJECTS, objects

from . import arns
from .config import StageConfig
from .dead_letters import TRIGGER_RETRY_ATTEMPTS, FailedInvocations, dead_letter_alarm, dead_letter_queue
from .function import PipelineFunction
from .instances import instance_store_only
from .nag import acknowledge, lambda_versions, s3_objects, wildcard, wildcard_arn
from .retries import THROTTLING, sdk_retry
from .sagemaker_roles import batch_role

VERBOSE = "application/json;verbose"  # image_training.serving.VERBOSE
SETTINGS = "$.plan.transform"  # the plan's imgclf_core.batch_request.transform_settings for the input


def transform_request(stage: StageConfig, key: kms.IKey) -> Dict[str, Any]:
    """CreateTransformJob's request: the settings that depend on the input's kind come from the
    plan (images: one object per request, SplitType None; a .rec: split on its RecordIO records,
    the stage's BatchStrategy, one answer line per record), the verbose answer, the outputs and
    the volume under the stage key."""
    resources: Dict[str, Any] = {"InstanceType": stage.batch.instance_type, "InstanceCount": stage.batch.instance_count}
    if not instance_store_only(stage.batch.instance_type):
        resources["VolumeKmsKeyId"] = key.key_arn
    request: Dict[str, Any] = {
        "TransformJobName.$": "$.plan.job_name",
        "ModelName.$": "$.plan.model_name",
        "MaxPayloadInMB": stage.batch.max_payload_mb,
        "BatchStrategy.$": f"{SETTINGS}.BatchStrategy",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri.$": "$.plan.manifest_uri"}},
            "ContentType.$": f"{SETTINGS}.ContentType",
            "CompressionType": "None",
            "SplitType.$": f"{SETTINGS}.SplitType",
        },
        "TransformOutput": {
            "S3OutputPath.$": "$.plan.output_uri",
            "Accept": VERBOSE,
            "AssembleWith.$": f"{SETTINGS}.AssembleWith",
            "KmsKeyId": key.key_arn,
        },
        "TransformResources": resources,
        "Tags": stage.request_tags,
    }
    if stage.batch.max_concurrent_transforms:
        request["MaxConcurrentTransforms"] = stage.batch.max_concurrent_transforms
    return request


class BatchWorkflow(Construct):
    """``self.state_machine`` classifies the images a ``batch.json`` names with a model package
    of the stage; ``self.rule`` starts it through ``self.trigger``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: StageConfig,
        key: kms.IKey,
        datasets: s3.IBucket,
        artifacts: s3.IBucket,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        self._stage, self._key, self._topic = stage, key, topic
        self._datasets, self._artifacts = datasets, artifacts
        self._jobs = arns.sagemaker(self, "transform-job", f"{stage.prefix}-batch-*")
        self._models = arns.sagemaker(self, "model", f"{stage.prefix}-batch-*")
        self._packages = arns.sagemaker(self, "model-package", f"{stage.model_package_group}/*")
        self.role = batch_role(
            self,
            "ModelRole",
            key=key,
            image_uri=stage.image_uri("batch"),
            vpc=stage.vpc is not None,
            datasets=datasets,
            artifacts=artifacts,
        )
        self.planner, self.joiner = self._plan_function(), self._join_function()
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.SIX_MONTHS, encryption_key=key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=stage.batch_state_machine,
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            timeout=Duration.days(2),
        )
        self._grant_state_machine(self.state_machine.role)
        self._trigger()

    # -- the functions ------------------------------------------------------------------------

    def _plan_function(self) -> PipelineFunction:
        stage = self._stage
        planner = PipelineFunction(
            self,
            "PlanBatch",
            handler="lambdas.batch.handler.plan",
            key=self._key,
            timeout=Duration.minutes(15),  # a .rec's scan reads the whole file (8 MB ranged GETs)
            memory_size=1024,
            environment=BatchPlanEnvironment(
                resource_prefix=stage.prefix,
                model_package_group=stage.model_package_group,
                datasets_bucket=self._datasets.bucket_name,
                artifact_bucket=self._artifacts.bucket_name,
            ).as_environment(),
        )
        for prefix in BATCH_INPUT_PREFIXES:  # it lists the input
            self._datasets.grant_read(planner.function, objects(prefix))
            acknowledge(planner.role, s3_objects(self._datasets, objects(prefix)), "It lists a batch's input.")
        self._artifacts.grant_put(planner.function, objects(BATCH_JOBS))
        acknowledge(planner.role, s3_objects(self._artifacts, objects(BATCH_JOBS)), "It writes each job's manifest.")
        planner.function.add_to_role_policy(  # List* actions take no resource-level permissions
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        planner.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[self._packages])
        )
        acknowledge(
            planner.role, wildcard_arn(self, self._packages), "The versions of this stage's model package group."
        )
        return planner

    def _join_function(self) -> PipelineFunction:
        joiner = PipelineFunction(
            self,
            "JoinBatch",
            handler="lambdas.batch.handler.join",
            key=self._key,
            timeout=Duration.minutes(15),
            memory_size=1024,
            environment=BatchJoinEnvironment(artifact_bucket=self._artifacts.bucket_name).as_environment(),
        )
        self._artifacts.grant_read(joiner.function, objects(BATCH_JOBS))
        self._artifacts.grant_put(joiner.function, objects(BATCH_JOBS))
        acknowledge(
            joiner.role, s3_objects(self._artifacts, objects(BATCH_JOBS)), "It reads the outputs, writes predictions."
        )
        return joiner

    def _trigger(self) -> None:
        """EventBridge -> the start function for every uploaded batch.json."""
        self.trigger = PipelineFunction(
            self,
            "StartBatch",
            handler="lambdas.batch.handler.start",
            key=self._key,
            timeout=Duration.seconds(60),
            environment=BatchTriggerEnvironment(
                state_machine_arn=self.state_machine.state_machine_arn, alert_topic_arn=self._topic.topic_arn
            ).as_environment(),
        )
        function = self.trigger.function
        self._datasets.grant_read(function, BATCH_REQUEST_OBJECTS)
        acknowledge(self.trigger.role, s3_objects(self._datasets, BATCH_REQUEST_OBJECTS), "It reads batch requests.")
        self.state_machine.grant_start_execution(function)
        self._topic.grant_publish(function)
        self.rule = events.Rule(
            self,
            "RequestUploaded",
            description="A batch request arrived: batch/<name>/batch.json",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self._datasets.bucket_name]},
                    "object": {"key": [{"wildcard": BATCH_EVENT_PATTERN}]},
                },
            ),
        )
        self.dead_letters = dead_letter_queue(self, "DeadLetters", self._key)
        self.rule.add_target(targets.LambdaFunction(function, dead_letter_queue=self.dead_letters, retry_attempts=4))
        function.configure_async_invoke(
            retry_attempts=TRIGGER_RETRY_ATTEMPTS, on_failure=FailedInvocations(self.dead_letters, self._key)
        )
        prefix = self._stage.prefix
        self.dead_letter_alarm = dead_letter_alarm(
            self,
            "DeadLetterAlarm",
            self.dead_letters,
            alarm_name=f"{prefix}-batch-dead-letters",
            description=f"{prefix}: a batch.json started no batch: EventBridge could not invoke the batch start "
            "function, or the function failed on it (the dead-letter queue holds the S3 event)",
            topic=self._topic,
        )

    # -- the states ---------------------------------------------------------------------------

    def _notify(self, id: str, what: str, message: Dict[str, Any]) -> tasks.SnsPublish:
        state = tasks.SnsPublish(
            self,
            id,
            topic=self._topic,
            subject=f"imgclf {self._stage.name}: {what}",
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        state.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=3)
        return state

    def _failure(self) -> Any:
        """DeleteModelAfterFailure -> NotifyFailure -> Failed."""
        failed = sfn.Fail(self, "Failed", error="BatchFailed", cause="a step failed; see the alert")
        notify = self._notify(
            "NotifyFailure",
            "batch failed",
            {
                "execution.$": "$$.Execution.Id",
                "request.$": "$.request",
                "error.$": "$.error.Error",
                "cause.$": "$.error.Cause",
            },
        )
        notify.add_catch(failed, errors=["States.ALL"], result_path="$.notify_error")
        notify.next(failed)
        delete = self._delete_model("DeleteModelAfterFailure")
        delete.add_catch(notify, errors=["States.ALL"], result_path="$.cleanup_error")
        delete.next(notify)
        self._notify_failure = notify
        return delete

    def _delete_model(self, id: str) -> Any:
        return sdk_retry(
            tasks.CallAwsService(
                self,
                id,
                service="sagemaker",
                action="deleteModel",
                parameters={"ModelName.$": "$.plan.model_name"},
                iam_resources=[self._models],
                result_path=sfn.JsonPath.DISCARD,
            )
        )

    def _create_model(self) -> Any:
        """CreateModel from the chosen package: network isolated, in the stage's VPC when set,
        with the backend's inference environment, under the batch role."""
        stage = self._stage
        model: Dict[str, Any] = {
            "ModelName.$": "$.plan.model_name",
            "ExecutionRoleArn": self.role.role_arn,
            "Containers": [
                {
                    "ModelPackageName.$": "$.plan.model_package_arn",
                    "Environment": backend(stage.backend).inference_environment(stage.region),
                }
            ],
            "EnableNetworkIsolation": True,
            "Tags": stage.request_tags,
        }
        if stage.vpc:
            model["VpcConfig"] = stage.vpc.as_request()
        create_model = sdk_retry(
            tasks.CallAwsService(
                self,
                "CreateModel",
                service="sagemaker",
                action="createModel",
                parameters=model,
                iam_resources=[self._models],
                result_path=sfn.JsonPath.DISCARD,
            )
        )
        return create_model

    def _definition(self) -> sfn.IChainable:
        """Plan -> CreateModel -> Transform -> Join -> NotifyDone -> DeleteModel -> Done."""
        stage = self._stage
        cleanup = self._failure()
        plan = tasks.LambdaInvoke(
            self,
            "Plan",
            lambda_function=self.planner.function,
            payload=sfn.TaskInput.from_object(
                {
                    "request.$": "$.request",
                    "execution.$": "$$.Execution.Name",
                    "batch": {
                        "batch_strategy": stage.batch.batch_strategy,
                        "max_payload_mb": stage.batch.max_payload_mb,
                    },
                }
            ),
            payload_response_only=True,
            result_path="$.plan",
        )
        plan.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        create_model = self._create_model()
        create_model.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        transform = sfn.CustomState(
            self,
            "Transform",
            state_json={
                "Type": "Task",
                "Resource": arns.states_integration(self, "sagemaker", "createTransformJob.sync"),
                "Parameters": transform_request(stage, self._key),
                "ResultSelector": {
                    "TransformJobName.$": "$.TransformJobName",
                    "TransformJobStatus.$": "$.TransformJobStatus",
                },
                "ResultPath": "$.transform",
            },
        )
        transform.add_retry(errors=THROTTLING, interval=Duration.seconds(30), max_attempts=3, backoff_rate=2.0)
        join = tasks.LambdaInvoke(
            self,
            "Join",
            lambda_function=self.joiner.function,
            payload=sfn.TaskInput.from_object({"plan.$": "$.plan", "transform_error.$": "$.transform_error"}),
            payload_response_only=True,
            result_path="$.result",
        )
        join.add_catch(cleanup, errors=["States.ALL"], result_path="$.error")
        no_error = sfn.Pass(
            self, "TransformSucceeded", result=sfn.Result.from_object({}), result_path="$.transform_error"
        )
        transform.add_catch(join, errors=["States.ALL"], result_path="$.transform_error")
        done = self._notify(
            "NotifyDone",
            "batch classified",
            {
                "execution.$": "$$.Execution.Id",
                "batch.$": "$.request.name",
                "input.$": "$.plan.input",
                "model_package_arn.$": "$.plan.model_package_arn",
                "predictions.$": "$.result.predictions_uri",
                "total.$": "$.result.total",
                "classified.$": "$.result.classified",
                "failed.$": "$.result.failed",
                "skipped.$": "$.result.skipped",
                "summary.$": "$.result.summary",
                "transform_failure.$": "$.result.transform_failure",
            },
        )
        done.add_catch(cleanup, errors=["States.ALL"], result_path="$.error")
        delete = self._delete_model("DeleteModel")
        # a model left behind costs nothing; the batch's result stands
        succeeded = sfn.Succeed(self, "Done")
        delete.add_catch(succeeded, errors=["States.ALL"], result_path="$.cleanup_error")
        return plan.next(create_model).next(transform).next(no_error).next(join).next(done).next(delete).next(succeeded)

    # -- the state machine's permissions ------------------------------------------------------

    def _grant_state_machine(self, role: iam.IRole) -> None:
        """Beyond the tasks' own policies: CreateModel (pass the batch role, read the package,
        tag), the transform job (.sync: create, follow, stop, tag, the managed EventBridge rule),
        the stage key for the Notify states and for the job's encrypted volume (kms:CreateGrant
        by the caller)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[self._packages])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:AddTags"], resources=[self._models, self._jobs])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                ],
                resources=[self._jobs],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[arns.events_rule(self, "StepFunctionsGetEventsForSageMakerTransformJobsRule")],
            )
        )
        self._key.grant(role, "kms:GenerateDataKey*", "kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey")
        for function in (self.planner, self.joiner):
            acknowledge(role, lambda_versions(function.function), "Invoking the function and its versions.")
        acknowledge(role, wildcard("*"), "X-Ray tracing has no resource-level permissions.")
        acknowledge(role, wildcard_arn(self, self._packages), "The versions of this stage's model package group.")
        acknowledge(role, wildcard_arn(self, self._jobs), "Transform jobs are named per batch under the stage prefix.")
        acknowledge(role, wildcard_arn(self, self._models), "Batch models are named per batch under the stage prefix.")
