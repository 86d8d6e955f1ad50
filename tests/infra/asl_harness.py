"""Runs the synthesized state machines offline in moto's ASL interpreter.

What moto lacks, the harness fills, and nothing else changes in the definitions:
- CloudFormation tokens in a definition (function ARNs, roles, the key, the topic) resolve to
  the resources the harness creates in moto;
- Lambda tasks run our real handlers in-process, with the environment from the template;
- ``sagemaker:createTrainingJob.sync`` runs a fake training job (a callable the test chooses)
  that leaves output.tar.gz and model.tar.gz in S3 and answers with DescribeTrainingJob's shape;
- ``sagemaker:createProcessingJob.sync`` runs the real pack job in-process: its S3 inputs are
  downloaded to a folder that stands for /opt/ml/processing, and its output is uploaded;
- the aws-sdk integration maps ``applicationautoscaling`` to boto's name and adds UpdateEndpoint
  (absent from moto), which can be told to roll back as SageMaker's guardrails would;
- Wait states wait 0 seconds.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import tarfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional
from unittest import mock

import boto3

ACCOUNT, REGION = "111111111111", "us-east-1"
FAKE_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"


def tar_gz(files: Dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class TrainingOutcome:
    """What a fake training job does: succeed with an accuracy, or fail with a reason."""

    def __init__(self, accuracy: float = 0.95, failure: Optional[str] = None) -> None:
        self.accuracy = accuracy
        self.failure = failure


class Resolver:
    """Replaces CloudFormation intrinsics with values."""

    def __init__(self, refs: Dict[str, str], attrs: Dict[str, str], imports: Dict[str, str]) -> None:
        self.refs, self.attrs, self.imports = refs, attrs, imports

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self.refs.get(
                    arg,
                    {
                        "AWS::Partition": "aws",
                        "AWS::Region": REGION,
                        "AWS::AccountId": ACCOUNT,
                        "AWS::URLSuffix": "amazonaws.com",
                    }.get(arg, f"ref-{arg}"),
                )
            if name == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attrs.get(logical, f"arn:aws:fake:{REGION}:{ACCOUNT}:{logical}")
            if name == "Fn::ImportValue":
                export = self(arg)
                for pattern, result in self.imports.items():
                    if pattern in export:
                        return result
                return f"arn:aws:fake:{REGION}:{ACCOUNT}:{export}"
            if name == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self(p)) for p in parts)
            if name == "Fn::Select":
                index, items = arg
                return self(items)[int(index)]
            if name == "Fn::Split":
                sep, text = arg
                return str(self(text)).split(sep)
            if name == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg

                def sub(m: re.Match[str]) -> str:
                    key = m.group(1)
                    if key in variables:
                        return str(self(variables[key]))
                    return str(self({"Ref": key}) if "." not in key else self({"Fn::GetAtt": key}))

                return re.sub(r"\$\{([^}]+)\}", sub, text)
        return {k: self(v) for k, v in value.items()}


class WorkflowHarness:
    def __init__(self, templates: Dict[str, Dict[str, Any]], stage: str = "dev") -> None:
        self.templates = templates
        self.stage = stage
        self.training_outcomes: List[TrainingOutcome] = []
        self.training_requests: List[Dict[str, Any]] = []
        self.processing_requests: List[Dict[str, Any]] = []
        self.endpoint_update_rolls_back = False
        self.endpoint_create_fails = False
        self.registration_error: Optional[str] = None  # an error code CreateModelPackage answers with
        self.functions: Dict[str, Dict[str, Any]] = {}  # function name -> {handler, environment}
        self.invocations: List[str] = []
        self.published: List[Dict[str, Any]] = []

    # -- moto set-up -------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[WorkflowHarness]:
        from moto import mock_aws

        env = {
            "MOTO_ACCOUNT_ID": ACCOUNT,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        with mock.patch.dict(os.environ, env), mock_aws(config=config), self._patched():
            self._create_resources()
            yield self

    def _patched(self) -> contextlib.ExitStack:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import seconds as wait_seconds

        harness = self
        stack = contextlib.ExitStack()

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
            return json.dumps(harness._invoke(name, json.loads(body) if body else {})).encode()

        stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", invoke))
        original = state_task_factory.state_task_service_for

        def service_for(service_name: str) -> Any:
            if service_name == "sagemaker":
                return _sagemaker_sync_service(harness)
            if service_name == "aws-sdk":
                return _aws_sdk_service(harness)
            if service_name == "states":
                return _states_service()
            return original(service_name)

        stack.enter_context(mock.patch.object(state_task_factory, "state_task_service_for", service_for))
        from moto.stepfunctions.parser.asl.component.state.exec import execute_state

        original_from_error = execute_state.ExecutionState._from_error

        def from_error(state: Any, env: Any, ex: Exception) -> Any:
            import traceback

            if os.environ.get("HARNESS_TRACE"):
                traceback.print_exception(ex)
            return original_from_error(state, env, ex)

        stack.enter_context(mock.patch.object(execute_state.ExecutionState, "_from_error", from_error))
        stack.enter_context(mock.patch.object(wait_seconds.Seconds, "_get_wait_seconds", lambda self, env: 0))
        stack.enter_context(_tolerated_failures_enforced())
        return stack

    def _create_resources(self) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        prefix = f"imgclf-{self.stage}"
        self.datasets_bucket = f"{prefix}-datasets-{ACCOUNT}-{REGION}"
        self.artifacts_bucket = f"{prefix}-artifacts-{ACCOUNT}-{REGION}"
        for bucket in (self.datasets_bucket, self.artifacts_bucket, f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"):
            s3.create_bucket(Bucket=bucket)
        self.topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name=f"{prefix}-alerts")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        self.alerts_queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.alerts_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        boto3.client("sns", region_name=REGION).subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        boto3.client("sagemaker", region_name=REGION).create_model_package_group(
            ModelPackageGroupName=f"{prefix}-models"
        )
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="harness", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.role_arn = role
        self.state_machines: Dict[str, str] = {}
        serving = self.templates[f"Imgclf-{self.stage}-Serving"]
        training = self.templates[f"Imgclf-{self.stage}-Training"]
        deployment = self._create_state_machine(serving, imports={})
        self.state_machines["deployment"] = deployment
        self.state_machines["training"] = self._create_state_machine(
            training, imports={"Alerts": self.topic_arn, "Key": FAKE_KEY}
        )

    def _resolver(self, template: Dict[str, Any], imports: Dict[str, str]) -> Resolver:
        refs: Dict[str, str] = {}
        attrs: Dict[str, str] = {}
        for logical, resource in template["Resources"].items():
            kind = resource["Type"]
            if kind == "AWS::Lambda::Function":
                attrs[logical] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
                refs[logical] = logical
            elif kind == "AWS::IAM::Role":
                attrs[logical] = self.role_arn
            elif kind == "AWS::StepFunctions::StateMachine":
                refs[logical] = (
                    f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{resource['Properties']['StateMachineName']}"
                )
        for name in ("AssetParameters", "BootstrapVersion"):
            refs.setdefault(name, name)
        return Resolver(refs, attrs, {"Key": FAKE_KEY, **imports})

    def _create_state_machine(self, template: Dict[str, Any], imports: Dict[str, str]) -> str:
        resolve = self._resolver(template, imports)
        lam = boto3.client("lambda", region_name=REGION)
        for logical, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            props = resource["Properties"]
            environment = {k: str(resolve(v)) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
            self.functions[logical] = {"handler": props["Handler"], "environment": environment}
            lam.create_function(
                FunctionName=logical,
                Runtime="python3.12",
                Role=self.role_arn,
                Handler=props["Handler"],
                Code={"ZipFile": b"harness"},
            )
        ((logical, machine),) = (
            (k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"
        )
        definition = resolve(machine["Properties"]["DefinitionString"])
        return boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=machine["Properties"]["StateMachineName"], definition=definition, roleArn=self.role_arn
        )["stateMachineArn"]

    # -- Lambda ------------------------------------------------------------------------
    def set_environment(self, handler_module: str, **values: str) -> None:
        """Change the environment of the functions whose handler is in ``handler_module``."""
        for spec in self.functions.values():
            if spec["handler"].rsplit(".", 1)[0] == handler_module:
                spec["environment"].update(values)

    def _invoke(self, name: str, event: Dict[str, Any]) -> Any:
        spec = self.functions[name]
        module_name, function = spec["handler"].rsplit(".", 1)
        self.invocations.append(module_name)
        with mock.patch.dict(os.environ, {**spec["environment"], "AWS_DEFAULT_REGION": REGION}):
            module = importlib.import_module(module_name)
            context = mock.Mock(
                function_name=name,
                memory_limit_in_mb=512,
                aws_request_id="req",
                invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            )
            return getattr(module, function)(event, context)

    # -- SageMaker ---------------------------------------------------------------------
    def run_training_job(self, request: Dict[str, Any]) -> Dict[str, Any]:
        self.training_requests.append(request)
        outcome = self.training_outcomes.pop(0) if self.training_outcomes else TrainingOutcome()
        name = request["TrainingJobName"]
        bucket, _, prefix = request["OutputDataConfig"]["S3OutputPath"][5:].partition("/")
        base = f"{prefix}/{name}/output"
        description = {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
            "OutputDataConfig": request["OutputDataConfig"],
            "HyperParameters": request["HyperParameters"],
            "BillableTimeInSeconds": 60,
        }
        if outcome.failure:
            description.update(TrainingJobStatus="Failed", FailureReason=outcome.failure)
        else:
            s3 = boto3.client("s3", region_name=REGION)
            evaluation = {"accuracy": outcome.accuracy, "top_k_accuracy": 1.0, "loss": 0.1}
            s3.put_object(
                Bucket=bucket,
                Key=f"{base}/output.tar.gz",
                Body=tar_gz({"evaluation.json": json.dumps(evaluation).encode()}),
            )
            s3.put_object(Bucket=bucket, Key=f"{base}/model.tar.gz", Body=tar_gz({"model-info.json": b"{}"}))
            description.update(
                TrainingJobStatus="Completed",
                ModelArtifacts={"S3ModelArtifacts": f"s3://{bucket}/{base}/model.tar.gz"},
            )
        self.jobs = getattr(self, "jobs", {})
        self.jobs[name] = description
        return description

    def run_processing_job(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """The pack job, run for real on a local copy of its inputs (the code input is the
        training_code in this checkout, so it is not downloaded)."""
        import tempfile

        from image_training.errors import failure_text
        from image_training.pack_job import main as pack_main

        self.processing_requests.append(request)
        s3 = boto3.client("s3", region_name=REGION)
        base = "/opt/ml/processing"
        root = tempfile.mkdtemp(prefix="harness-processing-")
        for item in request["ProcessingInputs"]:
            source = item["S3Input"]
            if item["InputName"] == "code":
                continue
            bucket, _, prefix = source["S3Uri"][5:].partition("/")
            local = source["LocalPath"].replace(base, root, 1)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    target = os.path.join(local, obj["Key"][len(prefix) :])
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    s3.download_file(bucket, obj["Key"], target)
        args = [a.replace(base, root, 1) for a in request["AppSpecification"]["ContainerArguments"]]
        name = request["ProcessingJobName"]
        description: Dict[str, Any] = {
            "ProcessingJobName": name,
            "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}",
        }
        try:
            pack_main(args)
        except Exception as error:  # noqa: BLE001 - what the container would say
            return {**description, "ProcessingJobStatus": "Failed", "FailureReason": failure_text(error)}
        for output in request["ProcessingOutputConfig"]["Outputs"]:
            bucket, _, prefix = output["S3Output"]["S3Uri"][5:].partition("/")
            local = output["S3Output"]["LocalPath"].replace(base, root, 1)
            for folder, _, files in os.walk(local):
                for file in files:
                    path = os.path.join(folder, file)
                    s3.upload_file(path, bucket, prefix + os.path.relpath(path, local).replace(os.sep, "/"))
        return {**description, "ProcessingJobStatus": "Completed"}

    def update_endpoint(self, params: Dict[str, Any]) -> Dict[str, Any]:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[ACCOUNT][REGION]
        endpoint = backend.endpoints[params["EndpointName"]]
        assert "BlueGreenUpdatePolicy" in params["DeploymentConfig"]
        if not self.endpoint_update_rolls_back:
            endpoint.endpoint_config_name = params["EndpointConfigName"]
        return {"EndpointArn": endpoint.arn}

    # -- executions --------------------------------------------------------------------
    def start(self, machine: str, payload: Dict[str, Any], name: Optional[str] = None) -> str:
        import uuid

        return boto3.client("stepfunctions", region_name=REGION).start_execution(
            stateMachineArn=self.state_machines[machine], input=json.dumps(payload), name=name or f"run-{uuid.uuid4()}"
        )["executionArn"]

    def wait(self, execution_arn: str, timeout: float = 60) -> Dict[str, Any]:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        deadline = time.time() + timeout
        while time.time() < deadline:
            result = sfn.describe_execution(executionArn=execution_arn)
            if result["status"] != "RUNNING":
                return result
            time.sleep(0.05)
        raise TimeoutError(f"{execution_arn} still running after {timeout} s")

    def states_entered(self, execution_arn: str) -> List[str]:
        events = boto3.client("stepfunctions", region_name=REGION).get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    def explain(self, execution_arn: str) -> str:
        """The states entered and every failure of an execution, for assertion messages."""
        events = boto3.client("stepfunctions", region_name=REGION).get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        lines = []
        for event in events:
            for key, value in event.items():
                if key == "stateEnteredEventDetails":
                    lines.append("entered " + value["name"])
                elif key.endswith("FailedEventDetails"):
                    lines.append(f"{event['type']}: {json.dumps(value)[:800]}")
        return "\n".join(lines)

    def alerts(self) -> List[Dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        messages = sqs.receive_message(QueueUrl=self.alerts_queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


def _tolerated_failures_enforced() -> Any:
    """moto 5.2.5 counts a Distributed Map's failed items but lets the Map succeed; Step
    Functions fails it with States.ExceedToleratedFailureThreshold beyond the tolerated failures."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import distributed_iteration_component
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    component = distributed_iteration_component.DistributedIterationComponent
    original = component._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        failed = record.item_counter.failed.get() + record.item_counter.timed_out.get()
        total = max(record.item_counter.total.get(), 1)
        if failed > (record.tolerated_failure_count or 0) or 100 * failed / total > (
            record.tolerated_failure_percentage or 0
        ):
            error = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
            cause = f"{failed} of {total} items failed"
            details = EventDetails(
                mapRunFailedEventDetails=MapRunFailedEventDetails(error=error.error_name, cause=cause)
            )
            raise FailureEventException(FailureEvent(env, error, HistoryEventType.MapRunFailed, details))

    return mock.patch.object(component, "_map_run", map_run)


def _request_shape(operation: str) -> Any:
    return boto3.client("sagemaker", region_name=REGION).meta.service_model.operation_model(operation).input_shape


def _check_request(operation: str, params: Dict[str, Any]) -> None:
    """The request is valid for the real SageMaker API (botocore's own validator)."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, _request_shape(operation))
    if report.has_errors():
        raise AssertionError(f"invalid {operation} request: " + report.generate_report())


def _sagemaker_sync_service(harness: WorkflowHarness) -> Any:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    class SageMakerSync(StateTaskServiceCallback):
        def __init__(self) -> None:
            super().__init__(
                supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
            )

        def _get_supported_parameters(self) -> Any:
            operation = (
                "CreateProcessingJob" if self.resource.api_action == "createProcessingJob" else "CreateTrainingJob"
            )
            return set(_request_shape(operation).members)

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            action = self.resource.api_action
            assert action in ("createTrainingJob", "createProcessingJob"), action
            if action == "createProcessingJob":
                _check_request("CreateProcessingJob", normalised_parameters)
                env.stack.append(harness.run_processing_job(normalised_parameters))
            else:
                _check_request("CreateTrainingJob", normalised_parameters)
                env.stack.append(harness.run_training_job(normalised_parameters))

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> Callable[[], Any]:
            def resolve() -> Any:
                description = env.stack.pop()
                status = description.get("TrainingJobStatus") or description.get("ProcessingJobStatus")
                if status == "Completed":
                    return description
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=json.dumps(description),
                            )
                        ),
                    )
                )

            return resolve

    return SageMakerSync()


def _states_service() -> Any:
    """moto 5.2.5 hands StartExecution's parameters to boto as written (StateMachineArn, Input);
    boto names them stateMachineArn and input, as Step Functions itself maps them."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    class States(StateTaskServiceSfn):
        def _normalise_parameters(
            self, parameters: dict, boto_service_name: Any = None, service_action_name: Any = None
        ) -> None:
            super()._normalise_parameters(parameters, boto_service_name, service_action_name)
            for key in list(parameters):
                parameters[key[0].lower() + key[1:]] = parameters.pop(key)
            if self._get_boto_service_action() == "start_execution":  # Step Functions names it, moto does not
                import uuid

                parameters.setdefault("name", str(uuid.uuid4()))

        def _normalise_response(
            self, response: Any, boto_service_name: Any = None, service_action_name: Any = None
        ) -> None:
            super()._normalise_response(response, boto_service_name, service_action_name)
            for key in list(response):
                response[key[0].upper() + key[1:]] = response.pop(key)

    return States()


def _aws_sdk_service(harness: WorkflowHarness) -> Any:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    class AwsSdk(StateTaskServiceAwsSdk):
        def _get_boto_service_name(self, boto_service_name: Optional[str] = None) -> str:
            name = super()._get_boto_service_name(boto_service_name)
            return "application-autoscaling" if name == "applicationautoscaling" else name

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            action = self.resource.api_action
            if self.resource.api_name == "sagemaker" and action == "updateEndpoint":
                env.stack.append(harness.update_endpoint(normalised_parameters))
                return
            if self.resource.api_name == "sagemaker" and action == "createModelPackage" and harness.registration_error:
                from botocore.exceptions import ClientError

                raise ClientError(
                    {
                        "Error": {"Code": harness.registration_error, "Message": "injected by the test"},
                        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "test"},
                    },
                    "CreateModelPackage",
                )
            if self.resource.api_name == "sagemaker" and action == "describeTrainingJob":
                env.stack.append(harness.jobs[normalised_parameters["TrainingJobName"]])
                return
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
            if self.resource.api_name == "sagemaker" and action == "createEndpoint" and harness.endpoint_create_fails:
                from moto.sagemaker.models import sagemaker_backends

                sagemaker_backends[ACCOUNT][REGION].endpoints[
                    normalised_parameters["EndpointName"]
                ].endpoint_status = "Failed"

    return AwsSdk()
