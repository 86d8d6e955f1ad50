"""The training workflow (a standard state machine): validate -> pack image channels (a
Processing job, when a channel is not RecordIO) -> plan -> train (spot,
checkpointed, retried on transient failures) -> evaluate and gate -> register -> deploy, with a
notification for every outcome. Every task retries throttling and catches to a notification."""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Tuple

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from imgclf_core.environment import GateEnvironment, PlannerEnvironment
from imgclf_core.s3_layout import DATASETS, EVALUATIONS, TRAINING_JOBS, objects

from . import arns
from .config import StageConfig
from .function import PipelineFunction
from .nag import acknowledge, lambda_versions, s3_objects, wildcard, wildcard_arn
from .pack_step import PackStep
from .retries import THROTTLING, sdk_retry
from .sagemaker_requests import package_request, training_request
from .sagemaker_roles import grant_sync_job, processing_role, training_role
from .sourcedir import SourceDir
from .validation_step import ValidationStep

# FailureReason texts of SageMaker failures that a new attempt can cure
TRANSIENT_FAILURES = ["*CapacityError*", "*InternalServerError*", "*InsufficientInstanceCapacity*"]


class _Outcomes(NamedTuple):
    """The states after training, for the definition to wire."""

    evaluate: Any
    register: sfn.Choice  # BaselineRecorded: the registration with or without the drift baseline
    registrations: List[Any]  # the two RegisterModel tasks
    deploy: Any
    deployed: tasks.SnsPublish
    pending: tasks.SnsPublish
    rejected: tasks.SnsPublish
    done: sfn.Succeed


class TrainingWorkflow(Construct):
    """``self.state_machine`` runs one dataset version (the trigger's input) through validation,
    packing, training, the gate and registration, and starts ``deployment`` for an approved model."""

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
        self._stage, self._key, self._topic = stage, key, topic
        self._datasets, self._artifacts, self._deployment = datasets, artifacts, deployment
        self._jobs = arns.sagemaker(self, "training-job", f"{stage.prefix}-*")
        self._group = arns.sagemaker(self, "model-package-group", stage.model_package_group)
        self._packages = arns.sagemaker(self, "model-package", f"{stage.model_package_group}/*")
        code = self._code_and_job_roles()
        self.planner = self._planner_function(code)
        self.gate = self._gate_function()
        definition = self._definition()
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
        self._grant_state_machine(self.state_machine)

    # -- the functions and job roles ----------------------------------------------------------

    def _code_and_job_roles(self) -> SourceDir:
        """The training code, and the roles of the training and pack jobs that both read it."""
        stage, key, vpc = self._stage, self._key, self._stage.vpc is not None
        code = SourceDir(self, "TrainingCode")
        buckets = {"datasets": self._datasets, "artifacts": self._artifacts}
        self.role = training_role(
            self, "TrainingRole", key=key, image_uri=stage.image_uri("training"), vpc=vpc, **buckets
        )
        self.pack_role = processing_role(
            self, "PackRole", key=key, image_uri=stage.image_uri("processing"), vpc=vpc, **buckets
        )
        for job_role in (self.role, self.pack_role):  # both jobs get the code as an input
            code.grant_read(job_role)
        return code

    def _planner_function(self, code: SourceDir) -> PipelineFunction:
        """The Lambda that plans the pack and training jobs of a run."""
        stage = self._stage
        planner = PipelineFunction(
            self,
            "TrainingPlanner",
            handler="lambdas.training.handler.handler",
            key=self._key,
            environment=PlannerEnvironment(
                resource_prefix=stage.prefix,
                backend=stage.backend,
                instance_count=stage.training.instance_count,
                code_uri=code.s3_uri,
                artifact_bucket=self._artifacts.bucket_name,
            ).as_environment(),
        )
        self._datasets.grant_read(planner.function, objects(DATASETS))
        acknowledge(
            planner.role, s3_objects(self._datasets, objects(DATASETS)), "It lists a dataset's channel folders."
        )
        return planner

    def _gate_function(self) -> PipelineFunction:
        """The Lambda that evaluates a trained model against the threshold and the approved one."""
        stage, artifacts = self._stage, self._artifacts
        gate = PipelineFunction(
            self,
            "Gate",
            handler="lambdas.gate.handler.handler",
            key=self._key,
            timeout=Duration.minutes(2),
            memory_size=512,
            environment=GateEnvironment(
                model_package_group=stage.model_package_group,
                accuracy_threshold=stage.accuracy_threshold,
                max_regression=stage.max_regression,
                approval_mode=stage.approval,
            ).as_environment(),
        )
        artifacts.grant_read(gate.function, objects(TRAINING_JOBS))
        artifacts.grant_put(gate.function, objects(EVALUATIONS))
        gate.function.add_to_role_policy(  # List* actions take no resource-level permissions
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        gate.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[self._packages])
        )
        acknowledge(gate.role, wildcard_arn(self, self._packages), "The versions of this stage's model package group.")
        acknowledge(gate.role, s3_objects(artifacts, objects(TRAINING_JOBS)), "It reads a job's output.tar.gz.")
        acknowledge(gate.role, s3_objects(artifacts, objects(EVALUATIONS)), "It writes evaluation and baseline copies.")
        return gate

    # -- the states ---------------------------------------------------------------------------

    def _notify(self, id: str, what: str, message: Dict[str, Any]) -> tasks.SnsPublish:
        """A message to the alert topic; it retries what SNS may refuse for a moment."""
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

    def _guarded(self, state: Any) -> Any:
        """``state`` catching every error into the failure notification."""
        state.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return state

    def _failure_notification(self) -> tasks.SnsPublish:
        """NotifyFailure -> Failed: where every guarded step's error ends."""
        fail = sfn.Fail(self, "Failed", error="WorkflowFailed", cause="a step failed; see the alert")
        notify_failure = self._notify(
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
        return notify_failure

    def _validation(self) -> tasks.SnsPublish:
        """The Validate step, and the notification that reports a dataset with errors and
        fails the run (returned)."""
        stage = self._stage
        self.validation = ValidationStep(
            self,
            "Validation",
            key=self._key,
            datasets=self._datasets,
            artifacts=self._artifacts,
            backend=stage.backend,
            limits=stage.validation,
            guarded=self._guarded,
        )
        invalid = self._notify(
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
        self._guarded(invalid).next(
            sfn.Fail(self, "DatasetInvalid", error="DatasetInvalid", cause="the validation report lists errors")
        )
        return invalid

    def _packing(self) -> Tuple[Any, Any]:
        """PlanPacking and the Pack task (a Processing job), each guarded."""
        stage = self._stage
        plan_packing = self._guarded(
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
            key=self._key,
            role=self.pack_role,
            image_uri=stage.image_uri("processing"),
            training=stage.training,
            job_prefix=f"{stage.prefix}-pack",
            tags=stage.request_tags,
            vpc=stage.vpc,
        )
        return plan_packing, self._guarded(self.pack.state)

    def _training_attempts(self) -> Tuple[Any, sfn.CustomState]:
        """PlanTraining and Train: a failed job is described, and one that failed for a
        transient reason is planned again (CountAttempt) until ``max_attempts``."""
        stage = self._stage
        plan = self._guarded(
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
                "Resource": arns.states_integration(self, "sagemaker", "createTrainingJob.sync"),
                "Parameters": training_request(stage, key=self._key, role=self.role),
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
        describe_failure = self._guarded(
            sdk_retry(
                tasks.CallAwsService(
                    self,
                    "DescribeFailedJob",
                    service="sagemaker",
                    action="describeTrainingJob",
                    parameters={"TrainingJobName.$": "$.plan.TrainingJobName"},
                    iam_resources=[self._jobs],
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
                sfn.Choice(self, "TransientFailure").when(transient, next_attempt).otherwise(self._notify_failure),
            )
            .otherwise(self._notify_failure)
        )
        return plan, train

    def _register(self, id: str, *, baseline: bool) -> Any:
        """A RegisterModel task (CreateModelPackage), with the model's drift baseline or without:
        both requests come from package_request and differ only in DriftCheckBaselines."""
        return self._guarded(
            sdk_retry(
                tasks.CallAwsService(
                    self,
                    id,
                    service="sagemaker",
                    action="createModelPackage",
                    parameters=package_request(self._stage, baseline=baseline),
                    iam_resources=[self._group, self._packages],
                    result_path="$.registered",
                )
            )
        )

    def _registration(self) -> _Outcomes:
        """EvaluateAndGate, BaselineRecorded -> RegisterModel (with the drift baseline) or
        RegisterModelWithoutBaseline, Deploy, and the notification of each outcome: deploy
        and notify an approved model, notify one that waits for a person, reject the others."""
        evaluate = self._guarded(
            tasks.LambdaInvoke(
                self,
                "EvaluateAndGate",
                lambda_function=self.gate.function,
                payload=sfn.TaskInput.from_object({"training.$": "$.training"}),
                payload_response_only=True,
                result_path="$.gate",
            )
        )
        # a JSONPath request cannot leave DriftCheckBaselines out for a model without a baseline:
        # a Choice picks one of two requests made by one function (the gate's baseline_uri is
        # always there, null where the job made no baseline.json)
        registrations = [
            self._register("RegisterModel", baseline=True),
            self._register("RegisterModelWithoutBaseline", baseline=False),
        ]
        register = (
            sfn.Choice(self, "BaselineRecorded")
            .when(sfn.Condition.is_string("$.gate.baseline_uri"), registrations[0])
            .otherwise(registrations[1])
        )
        deploy = self._guarded(
            tasks.StepFunctionsStartExecution(
                self,
                "Deploy",
                state_machine=self._deployment,
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                input=sfn.TaskInput.from_object({"model_package_arn.$": "$.registered.ModelPackageArn"}),
                result_selector={"output.$": "$.Output"},
                result_path="$.deployment",
            )
        )
        deployed, pending, rejected = self._outcome_notifications()
        rejected.next(
            sfn.Fail(self, "ModelRejected", error="ModelRejected", cause="the quality gate rejected the model")
        )
        return _Outcomes(
            evaluate, register, registrations, deploy, deployed, pending, rejected, sfn.Succeed(self, "Done")
        )

    def _outcome_notifications(self) -> List[tasks.SnsPublish]:
        """The messages of a deployed, a pending and a rejected model (each guarded)."""
        deployed = self._notify(
            "NotifyDeployed",
            "new model deployed",
            {
                "execution.$": "$$.Execution.Id",
                "model_package_arn.$": "$.registered.ModelPackageArn",
                "accuracy.$": "$.gate.accuracy",
                "endpoint": self._stage.endpoint_name,
                "deployment.$": "$.deployment.output",
            },
        )
        pending = self._notify(
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
        rejected = self._notify(
            "NotifyRejected",
            "model rejected by the quality gate",
            {
                "model_package_arn.$": "$.registered.ModelPackageArn",
                "accuracy.$": "$.gate.accuracy",
                "reason.$": "$.gate.reason",
            },
        )
        return [self._guarded(state) for state in (deployed, pending, rejected)]

    def _definition(self) -> sfn.IChainable:
        """Validate -> DatasetValid -> PlanPacking -> PackingNeeded -> (Pack) -> FirstAttempt ->
        PlanTraining -> Train -> EvaluateAndGate -> BaselineRecorded -> RegisterModel (or
        RegisterModelWithoutBaseline) -> GateDecision. The states are made in this order."""
        self._notify_failure = self._failure_notification()
        invalid = self._validation()
        plan_packing, pack = self._packing()
        first_attempt = sfn.Pass(self, "FirstAttempt", result=sfn.Result.from_number(1), result_path="$.attempt")
        plan, train = self._training_attempts()
        end = self._registration()
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
        train.next(end.evaluate)
        end.evaluate.next(end.register)
        gate_decision = (
            sfn.Choice(self, "GateDecision")
            .when(
                sfn.Condition.string_equals("$.gate.status", "Approved"), end.deploy.next(end.deployed).next(end.done)
            )
            .when(sfn.Condition.string_equals("$.gate.status", "PendingManualApproval"), end.pending.next(end.done))
            .otherwise(end.rejected)
        )
        for registration in end.registrations:
            registration.next(gate_decision)
        return definition

    # -- the state machine's permissions ------------------------------------------------------

    def _grant_state_machine(self, state_machine: sfn.StateMachine) -> None:
        """Beyond the tasks' own policies: the stage key for the Notify states, the training
        and pack jobs (.sync), the Distributed Map's items and child executions."""
        stage, role = self._stage, state_machine.role
        # the Notify states publish to a topic encrypted with the stage key: SNS makes the data
        # key with the publisher's permissions
        self._key.grant(state_machine, "kms:GenerateDataKey*", "kms:Decrypt")
        grant_sync_job(role, "Training", self._jobs, self.role)
        self.pack.grant(role)
        self.validation.grant_item_reading(state_machine)
        for function in self.functions:
            acknowledge(role, lambda_versions(function.function), "Invoking the function and its versions.")
        acknowledge(role, wildcard("*"), "X-Ray tracing has no resource-level permissions.")
        acknowledge(
            role, wildcard_arn(self, self._packages), "Registering versions in this stage's model package group."
        )
        acknowledge(role, wildcard_arn(self, self._jobs), "Training jobs are named per run under the stage prefix.")
        acknowledge(
            role,
            wildcard_arn(self, arns.state_machine_executions(self, f"{stage.deployment_state_machine}*")),
            "Following the deployment workflow's executions (startExecution.sync:2).",
        )

    @property
    def functions(self) -> List[PipelineFunction]:
        return [*self.validation.functions, self.planner, self.gate]
