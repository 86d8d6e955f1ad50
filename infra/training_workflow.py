"""The training workflow (a standard state machine): validate -> pack image channels (a
Processing job, when a channel is not RecordIO) -> plan -> train (spot,
checkpointed, retried on transient failures) -> evaluate and gate -> register -> deploy, with a
notification for every outcome. Every task retries throttling and catches to a notification."""

from __future__ import annotations

from typing import Any, Dict, List

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from app.config import StageConfig
from imgclf_core.backends import backend, metric_definitions
from imgclf_core.environment import GateEnvironment, PlannerEnvironment

from .function import PipelineFunction
from .nag import acknowledge, lambda_versions, s3_objects, wildcard
from .pack_step import PackStep
from .sagemaker_roles import grant_sync_job, processing_role, training_role
from .sourcedir import SourceDir
from .validation_step import ValidationStep

THROTTLING = ["ThrottlingException", "SageMaker.ThrottlingException", "SageMaker.AmazonSageMakerException"]
# FailureReason texts of SageMaker failures that a new attempt can cure
TRANSIENT_FAILURES = ["*CapacityError*", "*InternalServerError*", "*InsufficientInstanceCapacity*"]
INFERENCE_CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image"]
INFERENCE_RESPONSE_TYPES = ["application/json", "application/json;verbose", "application/jsonlines"]


def sdk_retry(state: Any) -> Any:
    state.add_retry(errors=THROTTLING, interval=Duration.seconds(5), max_attempts=4, backoff_rate=2.0)
    return state


def instance_store_only(instance_type: str) -> bool:
    """Instance types with NVMe instance storage only, which take no volume KMS key."""
    return instance_type.split(".")[1] in ("g5", "g4dn", "p3dn", "p4d", "p5")


class TrainingWorkflow(Construct):
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
        deployment: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, id)
        region, account = stage.region, stage.account
        code = SourceDir(self, "TrainingCode")
        self.role = training_role(self, "TrainingRole", stage, key, datasets, artifacts)
        self.pack_role = processing_role(self, "PackRole", stage, key, datasets, artifacts)
        for job_role in (self.role, self.pack_role):  # both jobs get the code as an input
            code.grant_read(job_role)

        self.planner = PipelineFunction(
            self,
            "TrainingPlanner",
            handler="lambdas.training.handler.handler",
            key=key,
            environment=PlannerEnvironment(
                resource_prefix=stage.prefix,
                backend=stage.backend,
                instance_count=stage.training.instance_count,
                code_uri=code.s3_uri,
                artifact_bucket=artifacts.bucket_name,
            ).as_environment(),
        )
        datasets.grant_read(self.planner.function, "datasets/*")
        acknowledge(
            self.planner.role, s3_objects(stage.datasets_bucket, "datasets/*"), "It lists a dataset's channel folders."
        )
        self.gate = PipelineFunction(
            self,
            "Gate",
            handler="lambdas.gate.handler.handler",
            key=key,
            timeout=Duration.minutes(2),
            memory_size=512,
            environment=GateEnvironment(
                model_package_group=stage.model_package_group,
                accuracy_threshold=stage.accuracy_threshold,
                max_regression=stage.max_regression,
                approval_mode=stage.approval,
            ).as_environment(),
        )
        artifacts.grant_read(self.gate.function, "training-jobs/*")
        artifacts.grant_put(self.gate.function, "evaluations/*")
        group_arn = f"arn:aws:sagemaker:{region}:{account}:model-package-group/{stage.model_package_group}"
        package_arn = f"arn:aws:sagemaker:{region}:{account}:model-package/{stage.model_package_group}/*"
        self.gate.function.add_to_role_policy(  # List* actions take no resource-level permissions
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        self.gate.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[package_arn])
        )
        acknowledge(self.gate.role, wildcard(package_arn), "The versions of this stage's model package group.")
        acknowledge(
            self.gate.role, s3_objects(stage.artifacts_bucket, "training-jobs/*"), "It reads a job's output.tar.gz."
        )
        acknowledge(
            self.gate.role, s3_objects(stage.artifacts_bucket, "evaluations/*"), "It writes evaluation.json copies."
        )

        fail = sfn.Fail(self, "Failed", error="WorkflowFailed", cause="a step failed; see the alert")

        def notify(id: str, what: str, message: Dict[str, Any]) -> tasks.SnsPublish:
            """A message to the alert topic; it retries what SNS may refuse for a moment."""
            state = tasks.SnsPublish(
                self,
                id,
                topic=topic,
                subject=f"imgclf {stage.name}: {what}",
                message=sfn.TaskInput.from_object(message),
                result_path=sfn.JsonPath.DISCARD,
            )
            state.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=3)
            return state

        notify_failure = notify(
            "NotifyFailure",
            "training run failed",
            {
                "execution.$": "$$.Execution.Id",
                "dataset.$": "$.dataset",
                "error.$": "$.error.Error",
                "cause.$": "$.error.Cause",
            },
        )
        notify_failure.add_catch(fail, errors=["States.ALL"], result_path="$.notify_error")
        notify_failure.next(fail)

        def guarded(state: Any) -> Any:
            state.add_catch(notify_failure, errors=["States.ALL"], result_path="$.error")
            return state

        self.validation = ValidationStep(
            self, "Validation", stage=stage, key=key, datasets=datasets, artifacts=artifacts, guarded=guarded
        )
        invalid = notify(
            "NotifyInvalidDataset",
            "dataset rejected by validation",
            {
                "execution.$": "$$.Execution.Id",
                "dataset.$": "$.dataset",
                "report.$": "$.validation.report_uri",
                "error_count.$": "$.validation.error_count",
                "first_errors.$": "$.validation.first_errors",
            },
        )
        guarded(invalid).next(
            sfn.Fail(self, "DatasetInvalid", error="DatasetInvalid", cause="the validation report lists errors")
        )

        plan_packing = guarded(
            tasks.LambdaInvoke(
                self,
                "PlanPacking",
                lambda_function=self.planner.function,
                payload=sfn.TaskInput.from_object(
                    {
                        "step": "pack",
                        "execution.$": "$$.Execution.Name",
                        "dataset.$": "$.dataset",
                        "hyperparameters.$": "$.hyperparameters",
                        "validation.$": "$.validation",
                    }
                ),
                payload_response_only=True,
                result_path="$.pack",
            )
        )
        self.pack = PackStep(
            self,
            "Pack",
            stage=stage,
            key=key,
            role=self.pack_role,
        )
        pack = guarded(self.pack.state)
        first_attempt = sfn.Pass(self, "FirstAttempt", result=sfn.Result.from_number(1), result_path="$.attempt")
        plan = guarded(
            tasks.LambdaInvoke(
                self,
                "PlanTraining",
                lambda_function=self.planner.function,
                payload=sfn.TaskInput.from_object(
                    {
                        "execution.$": "$$.Execution.Name",
                        "attempt.$": "$.attempt",
                        "dataset.$": "$.dataset",
                        "hyperparameters.$": "$.hyperparameters",
                        "validation.$": "$.validation",
                        "pack.$": "$.pack",
                    }
                ),
                payload_response_only=True,
                result_path="$.plan",
            )
        )
        train = sfn.CustomState(
            self,
            "Train",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::sagemaker:createTrainingJob.sync",
                "Parameters": self._training_request(stage, key),
                "ResultSelector": {
                    "TrainingJobName.$": "$.TrainingJobName",
                    "TrainingJobArn.$": "$.TrainingJobArn",
                    "ModelArtifacts.$": "$.ModelArtifacts",
                    "OutputDataConfig.$": "$.OutputDataConfig",
                    "BillableTimeInSeconds.$": "$.BillableTimeInSeconds",
                },
                "ResultPath": "$.training",
            },
        )
        train.add_retry(errors=THROTTLING, interval=Duration.seconds(30), max_attempts=3, backoff_rate=2.0)
        describe_failure = guarded(
            sdk_retry(
                tasks.CallAwsService(
                    self,
                    "DescribeFailedJob",
                    service="sagemaker",
                    action="describeTrainingJob",
                    parameters={"TrainingJobName.$": "$.plan.TrainingJobName"},
                    iam_resources=[f"arn:aws:sagemaker:{region}:{account}:training-job/{stage.prefix}-*"],
                    result_path="$.failed_job",
                )
            )
        )
        train.add_catch(describe_failure, errors=["States.ALL"], result_path="$.error")
        next_attempt = sfn.Pass(
            self,
            "NextAttempt",
            parameters={"value.$": "States.MathAdd($.attempt, 1)"},
            result_path="$.next",
        )
        count_attempt = sfn.Pass(self, "CountAttempt", input_path="$.next.value", result_path="$.attempt")
        next_attempt.next(count_attempt)
        count_attempt.next(plan)
        transient = sfn.Condition.and_(
            sfn.Condition.or_(
                *(sfn.Condition.string_matches("$.failed_job.FailureReason", p) for p in TRANSIENT_FAILURES)
            ),
            sfn.Condition.number_less_than("$.attempt", stage.training.max_attempts),
        )
        # two Choices: a condition on a missing field is a runtime error, not false
        describe_failure.next(
            sfn.Choice(self, "FailureReasonKnown")
            .when(
                sfn.Condition.is_present("$.failed_job.FailureReason"),
                sfn.Choice(self, "TransientFailure").when(transient, next_attempt).otherwise(notify_failure),
            )
            .otherwise(notify_failure)
        )

        evaluate = guarded(
            tasks.LambdaInvoke(
                self,
                "EvaluateAndGate",
                lambda_function=self.gate.function,
                payload=sfn.TaskInput.from_object({"training.$": "$.training"}),
                payload_response_only=True,
                result_path="$.gate",
            )
        )
        register = guarded(
            sdk_retry(
                tasks.CallAwsService(
                    self,
                    "RegisterModel",
                    service="sagemaker",
                    action="createModelPackage",
                    parameters=self._package_request(stage),
                    iam_resources=[group_arn, package_arn],
                    result_path="$.registered",
                )
            )
        )
        deploy = guarded(
            tasks.StepFunctionsStartExecution(
                self,
                "Deploy",
                state_machine=deployment,
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                input=sfn.TaskInput.from_object({"model_package_arn.$": "$.registered.ModelPackageArn"}),
                result_selector={"output.$": "$.Output"},
                result_path="$.deployment",
            )
        )
        deployed = notify(
            "NotifyDeployed",
            "new model deployed",
            {
                "execution.$": "$$.Execution.Id",
                "model_package_arn.$": "$.registered.ModelPackageArn",
                "accuracy.$": "$.gate.accuracy",
                "endpoint": stage.endpoint_name,
                "deployment.$": "$.deployment.output",
            },
        )
        pending = notify(
            "NotifyPendingApproval",
            "a model waits for approval",
            {
                "model_package_arn.$": "$.registered.ModelPackageArn",
                "accuracy.$": "$.gate.accuracy",
                "reason.$": "$.gate.reason",
                "approve_with": "aws sagemaker update-model-package --model-approval-status Approved "
                "--model-package-arn <arn>",
            },
        )
        rejected = notify(
            "NotifyRejected",
            "model rejected by the quality gate",
            {
                "model_package_arn.$": "$.registered.ModelPackageArn",
                "accuracy.$": "$.gate.accuracy",
                "reason.$": "$.gate.reason",
            },
        )
        for state in (deployed, pending, rejected):
            guarded(state)
        rejected.next(
            sfn.Fail(self, "ModelRejected", error="ModelRejected", cause="the quality gate rejected the model")
        )
        done = sfn.Succeed(self, "Done")

        definition = self.validation.chain.next(
            sfn.Choice(self, "DatasetValid")
            .when(sfn.Condition.boolean_equals("$.validation.valid", True), plan_packing)
            .otherwise(invalid)
        )
        plan_packing.next(
            sfn.Choice(self, "PackingNeeded")
            .when(sfn.Condition.boolean_equals("$.pack.needed", True), pack.next(first_attempt))
            .otherwise(first_attempt)
        )
        first_attempt.next(plan)
        plan.next(train)
        train.next(evaluate)
        evaluate.next(register)
        register.next(
            sfn.Choice(self, "GateDecision")
            .when(sfn.Condition.string_equals("$.gate.status", "Approved"), deploy.next(deployed).next(done))
            .when(sfn.Condition.string_equals("$.gate.status", "PendingManualApproval"), pending.next(done))
            .otherwise(rejected)
        )

        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.SIX_MONTHS, encryption_key=key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=f"{stage.prefix}-training",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            timeout=Duration.seconds(stage.training.max_wait_seconds * stage.training.max_attempts + 6 * 3600),
        )
        # the Notify states publish to a topic encrypted with the stage key: SNS makes the data
        # key with the publisher's permissions
        key.grant(self.state_machine, "kms:GenerateDataKey*", "kms:Decrypt")
        jobs = f"arn:aws:sagemaker:{region}:{account}:training-job/{stage.prefix}-*"
        grant_sync_job(self.state_machine.role, stage, "Training", jobs, self.role)
        self.pack.grant(self.state_machine.role)
        self.validation.grant_item_reading(self.state_machine)
        role = self.state_machine.role
        for function in self.functions:
            acknowledge(role, lambda_versions(function.function), "Invoking the function and its versions.")
        acknowledge(role, wildcard("*"), "X-Ray tracing has no resource-level permissions.")
        acknowledge(role, wildcard(package_arn), "Registering versions in this stage's model package group.")
        acknowledge(
            role,
            wildcard(f"arn:aws:sagemaker:{region}:{account}:training-job/{stage.prefix}-*"),
            "Training jobs are named per run under the stage prefix.",
        )
        acknowledge(
            role,
            wildcard(f"arn:<AWS::Partition>:states:{region}:{account}:execution:{stage.deployment_state_machine}*"),
            "Following the deployment workflow's executions (startExecution.sync:2).",
        )

    def _training_request(self, stage: StageConfig, key: kms.IKey) -> Dict[str, Any]:
        training = stage.training
        resources: Dict[str, Any] = {
            "InstanceType": training.instance_type,
            "InstanceCount": training.instance_count,
            "VolumeSizeInGB": training.volume_size_gb,
        }
        if not instance_store_only(training.instance_type):
            resources["VolumeKmsKeyId"] = key.key_arn
        stopping: Dict[str, Any] = {"MaxRuntimeInSeconds": training.max_runtime_seconds}
        if training.spot:
            stopping["MaxWaitTimeInSeconds"] = training.max_wait_seconds
        request: Dict[str, Any] = {
            "TrainingJobName.$": "$.plan.TrainingJobName",
            "AlgorithmSpecification": {
                "TrainingImage": stage.image_uri("training"),
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions(stage.backend),
                "EnableSageMakerMetricsTimeSeries": True,
            },
            "RoleArn": self.role.role_arn,
            "HyperParameters.$": "$.plan.HyperParameters",
            "InputDataConfig.$": "$.plan.InputDataConfig",
            "OutputDataConfig": {"S3OutputPath.$": "$.plan.S3OutputPath", "KmsKeyId": key.key_arn},
            "ResourceConfig": resources,
            "StoppingCondition": stopping,
            "EnableManagedSpotTraining": training.spot,
            "CheckpointConfig": {"S3Uri.$": "$.plan.CheckpointS3Uri"},
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            "Tags": stage.request_tags,
        }
        if stage.vpc:
            request["VpcConfig"] = stage.vpc.as_request()
        return request

    def _package_request(self, stage: StageConfig) -> Dict[str, Any]:
        """CreateModelPackage: every CustomerMetadataProperties value must be 1-256 characters of
        letters, digits, spaces and _.:/=+-@, so the values from outside the workflow come from
        the planner, which checks them before any job (lambdas/training/logic.py)."""
        return {
            "ModelPackageGroupName": stage.model_package_group,
            "ModelPackageDescription.$": "$.gate.reason",
            "ModelApprovalStatus.$": "$.gate.status",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": stage.image_uri("inference"),
                        "ModelDataUrl.$": "$.training.ModelArtifacts.S3ModelArtifacts",
                        "Environment": backend(stage.backend).inference_environment(stage.region),
                    }
                ],
                "SupportedContentTypes": INFERENCE_CONTENT_TYPES,
                "SupportedResponseMIMETypes": INFERENCE_RESPONSE_TYPES,
                "SupportedRealtimeInferenceInstanceTypes": [stage.endpoint.instance_type],
            },
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri.$": "$.gate.evaluation_uri"}}
            },
            "CustomerMetadataProperties": {
                "accuracy.$": "$.gate.accuracy",
                "approval.$": "$.gate.approval",
                "execution.$": "$.plan.Metadata.execution",  # the name, made valid by the planner
                "training_job.$": "$.training.TrainingJobName",
                "validation_report.$": "$.validation.report_uri",
            },
        }

    @property
    def functions(self) -> List[PipelineFunction]:
        return [*self.validation.functions, self.planner, self.gate]
