"""The workflow's Validate step. A dataset of one shard's work is validated by one Lambda; a
larger one is planned by that Lambda, its shards are checked by a Distributed Map of Lambdas
(items read from the plan in S3), and a third Lambda merges their results into the report
that the one Lambda would have written (image_dataset/shards.py)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from aws_cdk import Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from app.config import StageConfig
from imgclf_core.environment import ValidateEnvironment

from .function import PipelineFunction
from .nag import acknowledge, s3_objects, wildcard

WORK_PREFIX = "validation/*"  # the artifact bucket's prefix for plans and shard results
LAMBDA_BUSY = ["Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.SdkClientException"]


class ValidationStep(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: StageConfig,
        key: kms.IKey,
        datasets: s3.IBucket,
        artifacts: s3.IBucket,
        guarded: Callable[[Any], Any],
    ) -> None:
        super().__init__(scope, id)
        self.stage, self.artifacts = stage, artifacts
        limits = stage.validation
        work_env = ValidateEnvironment(
            work_bucket=artifacts.bucket_name, shard_bytes=limits.shard_bytes, shard_images=limits.shard_images
        ).as_environment()

        def function(name: str, handler: str) -> PipelineFunction:
            return PipelineFunction(
                self,
                name,
                handler=f"lambdas.validate.handler.{handler}",
                key=key,
                timeout=Duration.minutes(15),
                memory_size=3008,
                environment=work_env,
            )

        self.validator = function("Validator", "handler")
        self.shard_checker = function("ShardChecker", "shard_handler")
        self.merger = function("Merger", "merge_handler")
        for writer in (self.validator, self.merger):  # the report goes beside the dataset
            datasets.grant_read_write(writer.function, "datasets/*")
            acknowledge(
                writer.role,
                s3_objects(stage.datasets_bucket, "datasets/*"),
                "It reads any uploaded dataset and writes its report beside it.",
            )
        datasets.grant_read(self.shard_checker.function, "datasets/*")
        acknowledge(
            self.shard_checker.role, s3_objects(stage.datasets_bucket, "datasets/*"), "It reads any uploaded dataset."
        )
        artifacts.grant_put(self.validator.function, WORK_PREFIX)
        artifacts.grant_read_write(self.shard_checker.function, WORK_PREFIX)
        artifacts.grant_read(self.merger.function, WORK_PREFIX)
        for function_ in self.functions:
            acknowledge(
                function_.role,
                s3_objects(stage.artifacts_bucket, WORK_PREFIX),
                "The plan and the shard results of a run's validation, under a prefix per execution.",
            )

        request: Dict[str, Any] = {
            "execution.$": "$$.Execution.Name",
            "dataset.$": "$.dataset",
            "hyperparameters.$": "$.hyperparameters",
            "backend": stage.backend,
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
        self.chain = sfn.Chain.start(validate).next(fans_out.afterwards())

    def grant_item_reading(self, state_machine: sfn.StateMachine) -> None:
        """What the workflow's role needs for the Distributed Map: its item lists, and running
        (and following) its child executions."""
        self.artifacts.grant_read(state_machine.role, WORK_PREFIX)
        acknowledge(
            state_machine.role,
            s3_objects(self.stage.artifacts_bucket, WORK_PREFIX),
            "The Distributed Map reads the shard list of a run's validation.",
        )
        stack = Stack.of(state_machine)
        logical = stack.resolve(stack.get_logical_id(state_machine.node.default_child))  # type: ignore[arg-type]
        name = '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"' + logical + '"}]}]}'
        executions = f"arn:<AWS::Partition>:states:{stack.region}:{stack.account}:execution:{name}"
        for pattern in (":*", "/*:*"):
            acknowledge(
                state_machine,  # CDK's DistributedMapPolicy sits beside the role
                wildcard(executions + pattern),
                "The Distributed Map's map runs and child executions of this state machine.",
            )

    @property
    def functions(self) -> List[PipelineFunction]:
        return [self.validator, self.shard_checker, self.merger]
