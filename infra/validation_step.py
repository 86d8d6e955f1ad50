"""The workflow's Validate step. A dataset of one shard's work is validated by one Lambda; a
larger one is planned by that Lambda, its shards are checked by a Distributed Map of Lambdas
(items read from the plan in S3), and a third Lambda merges their results into the report
that the one Lambda would have written (image_dataset/shards.py)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from imgclf_core.environment import ValidateEnvironment
from imgclf_core.s3_layout import DATASETS, VALIDATION, objects

from . import arns
from .config import ValidationConfig
from .function import PipelineFunction
from .nag import acknowledge, s3_objects, wildcard_arn

WORK = objects(VALIDATION)  # the artifact bucket's objects for plans and shard results
LAMBDA_BUSY = ["Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.SdkClientException"]


class ValidationStep(Construct):
    """``self.chain``: validate a dataset of ``datasets`` for ``backend`` (fanned out as
    ``limits`` say, with working files in ``artifacts``); ``guarded`` adds a task's catch."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        datasets: s3.IBucket,
        artifacts: s3.IBucket,
        backend: str,
        limits: ValidationConfig,
        guarded: Callable[[Any], Any],
    ) -> None:
        super().__init__(scope, id)
        self.artifacts = artifacts
        work_env = ValidateEnvironment(
            work_bucket=artifacts.bucket_name, shard_bytes=limits.shard_bytes, shard_images=limits.shard_images
        ).as_environment()
        self.validator = self._function("Validator", "handler", key, work_env)
        self.shard_checker = self._function("ShardChecker", "shard_handler", key, work_env)
        self.merger = self._function("Merger", "merge_handler", key, work_env)
        self._grant_functions(datasets, artifacts)
        self.chain = self._states(backend, limits, guarded)

    def _function(self, name: str, handler: str, key: kms.IKey, environment: Dict[str, str]) -> PipelineFunction:
        return PipelineFunction(
            self,
            name,
            handler=f"lambdas.validate.handler.{handler}",
            key=key,
            timeout=Duration.minutes(15),
            memory_size=3008,
            environment=environment,
        )

    def _grant_functions(self, datasets: s3.IBucket, artifacts: s3.IBucket) -> None:
        """The validator and the merger write the report beside the dataset; all three read the
        dataset and share the run's working files."""
        dataset_objects = objects(DATASETS)
        for writer in (self.validator, self.merger):  # the report goes beside the dataset
            datasets.grant_read_write(writer.function, dataset_objects)
            acknowledge(
                writer.role,
                s3_objects(datasets, dataset_objects),
                "It reads any uploaded dataset and writes its report beside it.",
            )
        datasets.grant_read(self.shard_checker.function, dataset_objects)
        acknowledge(self.shard_checker.role, s3_objects(datasets, dataset_objects), "It reads any uploaded dataset.")
        artifacts.grant_put(self.validator.function, WORK)
        artifacts.grant_read_write(self.shard_checker.function, WORK)
        artifacts.grant_read(self.merger.function, WORK)
        for function_ in self.functions:
            acknowledge(
                function_.role,
                s3_objects(artifacts, WORK),
                "The plan and the shard results of a run's validation, under a prefix per execution.",
            )

    def _states(self, backend: str, limits: ValidationConfig, guarded: Callable[[Any], Any]) -> sfn.Chain:
        """ValidateDataset -> FansOut -> (CheckShards -> MergeShards | ValidatedAtOnce)."""
        request: Dict[str, Any] = {
            "execution.$": "$$.Execution.Name",
            "dataset.$": "$.dataset",
            "hyperparameters.$": "$.hyperparameters",
            "backend": backend,
        }
        validate = guarded(
            tasks.LambdaInvoke(
                self,
                "ValidateDataset",
                lambda_function=self.validator.function,
                payload=sfn.TaskInput.from_object(request),
                payload_response_only=True,
                result_path="$.validation",
            )
        )
        check_shards = sfn.DistributedMap(
            self,
            "CheckShards",
            item_reader=sfn.S3JsonItemReader(  # with grant_item_reading's grant, not one on the whole bucket
                bucket_name_path=sfn.JsonPath.string_at("$.validation.work.bucket"),
                key=sfn.JsonPath.string_at("$.validation.work.items"),
            ),
            item_selector={**request, "shard.$": "$$.Map.Item.Value", "work.$": "$.validation.work"},
            max_concurrency=limits.max_concurrency,
            # no tolerated failures (the default): a report without one of its shards would be wrong
            result_path=sfn.JsonPath.DISCARD,
        )
        check_shard = tasks.LambdaInvoke(
            self,
            "CheckShard",
            lambda_function=self.shard_checker.function,
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        check_shard.add_retry(errors=LAMBDA_BUSY, interval=Duration.seconds(2), max_attempts=6, backoff_rate=2.0)
        # a shard check only reads the dataset and writes its own result: running it again is safe
        check_shard.add_retry(errors=["States.ALL"], interval=Duration.seconds(10), max_attempts=1)
        check_shards.item_processor(check_shard)
        merge = guarded(
            tasks.LambdaInvoke(
                self,
                "MergeShards",
                lambda_function=self.merger.function,
                payload=sfn.TaskInput.from_object({**request, "work.$": "$.validation.work"}),
                payload_response_only=True,
                result_path="$.validation",
            )
        )
        guarded(check_shards)
        fans_out = (
            sfn.Choice(self, "FansOut")
            .when(sfn.Condition.is_present("$.validation.shards"), check_shards.next(merge))
            .otherwise(sfn.Pass(self, "ValidatedAtOnce"))
        )
        return sfn.Chain.start(validate).next(fans_out.afterwards())

    def grant_item_reading(self, state_machine: sfn.StateMachine) -> None:
        """What the workflow's role needs for the Distributed Map: its item lists, and running
        (and following) its child executions."""
        self.artifacts.grant_read(state_machine.role, WORK)
        acknowledge(
            state_machine.role,
            s3_objects(self.artifacts, WORK),
            "The Distributed Map reads the shard list of a run's validation.",
        )
        name = arns.last_arn_part(state_machine.state_machine_arn)
        for pattern in (":*", "/*:*"):
            acknowledge(
                state_machine,  # CDK's DistributedMapPolicy sits beside the role
                wildcard_arn(state_machine, arns.state_machine_executions(state_machine, name + pattern)),
                "The Distributed Map's map runs and child executions of this state machine.",
            )

    @property
    def functions(self) -> List[PipelineFunction]:
        return [self.validator, self.shard_checker, self.merger]
