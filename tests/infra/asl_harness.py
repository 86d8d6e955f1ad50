"""Runs the synthesized state machines offline in moto's ASL interpreter.

What moto lacks, the harness fills, and nothing else changes in the definitions:
- CloudFormation tokens in a definition (function ARNs, roles, the key, the topic) resolve to
  the resources the harness creates in moto;
- Lambda tasks run our real handlers in-process, with the environment from the template;
- ``sagemaker:createTrainingJob.sync`` runs a fake training job (a TrainingOutcome the test
  chooses) that leaves output.tar.gz and model.tar.gz in S3 and answers with DescribeTrainingJob's
  shape, or with ``TrainingOutcome(script_mode=True)`` the real job, as SageMaker starts the MXNet
  image: the toolkit's ``train`` in the same private /opt/ml (``run_script_mode_job``);
- ``sagemaker:createProcessingJob.sync`` runs the job as SageMaker would: every input (the code
  archive under the key CDK gives it included) is downloaded with S3Prefix semantics into a
  private /opt/ml, ContainerEntrypoint + ContainerArguments run in a mount namespace with the
  container stack's python3 (.venv-container), and the outputs are uploaded;
- the aws-sdk integration maps ``applicationautoscaling`` to boto's name and adds UpdateEndpoint
  (absent from moto), which can be told to roll back as SageMaker's guardrails would and
  refuses a traffic routing SageMaker refuses;
- Wait states and Retry intervals wait 0 seconds;
- every Task's request, with its JSONPath values resolved, is checked against the API's model
  (request_shapes.py): an invalid one fails the state, and ``running()`` fails the test with it.

Every AWS call made on the way is authorized as AWS would (iam_model.py, aws_calls.py): each
Task state's integration by the state machine's role, each boto3 call of a Lambda handler by the
function's role, and what SageMaker does with a job's or model's role (channel reads, outputs,
KMS, ECR, logs). A denied call fails as in AWS (AccessDenied) and is listed in ``denied``;
``running()`` fails the test with that list unless told not to check.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import tarfile
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, MutableMapping, Optional
from unittest import mock

import boto3

from tests.builders import tar_gz

from .aws_calls import Calls
from .iam_model import ACCOUNT, KEY_ARN, REGION, Call, PolicyModel, World
from .request_shapes import operation_model, validate_request

FAKE_KEY = KEY_ARN


class ThreadEnviron(MutableMapping[str, str]):
    """``os.environ`` as each thread sees it. A Lambda invocation runs with its own copy (the
    test's variables plus the function's), kept by its thread and the threads it starts, as a
    Lambda's process has its own. Patching the one process environment instead
    (``mock.patch.dict``) lets concurrent invocations see each other's variables, and its restore
    (clear, then refill) left the test's own calls a moment without MOTO_ACCOUNT_ID: moto then
    answered from another account's backend (ExecutionDoesNotExist in the middle of a run)."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self._base = base
        self._local = threading.local()

    def scope(self) -> Optional[Dict[str, str]]:
        """This thread's own environment, or None when it uses the process's."""
        return getattr(self._local, "env", None)

    @contextlib.contextmanager
    def scoped(self, env: Optional[Dict[str, str]]) -> Iterator[None]:
        """Run the block with ``env`` as this thread's environment (None: the process's)."""
        previous = self.scope()
        self._local.env = env
        try:
            yield
        finally:
            self._local.env = previous

    def _view(self) -> MutableMapping[str, str]:
        env = self.scope()
        return self._base if env is None else env

    def __getitem__(self, key: str) -> str:
        return self._view()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._view()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._view()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._view()))

    def __len__(self) -> int:
        return len(self._view())

    def copy(self) -> Dict[str, str]:
        return dict(self._view())


class TrainingOutcome:
    """What a training job does: by default a fake one succeeds with an accuracy or fails with a
    reason; with ``script_mode`` the job runs for real from its request, as SageMaker starts the
    MXNet framework container (``WorkflowHarness.run_script_mode_job``), and the others are unused.
    ``baseline``: the fake job leaves baseline.json in model.tar.gz and output.tar.gz, as training
    does; False plays a job whose baseline could not be made (image_training.baseline.for_model)."""

    def __init__(
        self, accuracy: float = 0.95, failure: Optional[str] = None, script_mode: bool = False, baseline: bool = True
    ) -> None:
        self.accuracy = accuracy
        self.failure = failure
        self.script_mode = script_mode
        self.baseline = baseline


class WorkflowHarness:
    def __init__(self, templates: Dict[str, Dict[str, Any]], stage: str = "dev") -> None:
        self.templates = templates
        self.stage = stage
        self.training_outcomes: List[TrainingOutcome] = []
        self.training_requests: List[Dict[str, Any]] = []
        self.processing_requests: List[Dict[str, Any]] = []
        self.transform_requests: List[Dict[str, Any]] = []
        self.transform_failures: Dict[str, str] = {}  # input key -> why the container could not answer it
        self.endpoint_update_rolls_back = False
        self.endpoint_create_fails = False
        self.registration_error: Optional[str] = None  # an error code CreateModelPackage answers with
        self.scaling_errors: Dict[str, str] = {}  # applicationautoscaling action -> the error code it answers with
        self.functions: Dict[str, Dict[str, Any]] = {}  # function name -> {handler, environment}
        self.invocations: List[str] = []
        self.published: List[Dict[str, Any]] = []
        self.request_problems: List[str] = []  # requests AWS would refuse (request_shapes.py)
        self.world = World(templates)
        self.policy = PolicyModel(self.world)
        self.aws = Calls(self.world)
        self.calls: List[Call] = []  # every authorization request, in order
        self.denied: List[str] = []  # the ones AWS would refuse
        self._principals: Dict[int, str] = {}  # thread -> principal of the Lambda it runs
        self.environ = ThreadEnviron(os.environ)

    # -- IAM -----------------------------------------------------------------------------
    def authorize(self, calls: List[Call]) -> Optional[str]:
        """Record ``calls``; the first refusal's text, or None when AWS would allow them all."""
        first = None
        for call in calls:
            self.calls.append(call)
            reason = self.policy.decide(call)
            if reason:
                text = f"DENIED {call}: {reason}"
                if text not in self.denied:
                    self.denied.append(text)
                first = first or text
        return first

    def _principal(self) -> Optional[str]:
        """The role of the Lambda handler this thread runs (threads a handler starts through an
        executor inherit it: see _lambda_calls_authorized)."""
        return self._principals.get(threading.get_ident())

    # -- moto set-up -------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self, check_iam: bool = True) -> Iterator[WorkflowHarness]:
        from moto import mock_aws

        env = {
            "MOTO_ACCOUNT_ID": ACCOUNT,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        with mock.patch.dict(os.environ, env), mock.patch.object(os, "environ", self.environ), mock_aws(
            config=config
        ), self._patched():
            self._create_resources()
            yield self
        if self.request_problems:
            raise AssertionError("AWS would refuse these requests:\n" + "\n".join(self.request_problems))
        if check_iam and self.denied:
            raise AssertionError("AWS would refuse these calls:\n" + "\n".join(self.denied))

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
        stack.enter_context(_lambda_calls_authorized(harness))
        stack.enter_context(_item_reads_authorized(harness))
        original = state_task_factory.state_task_service_for

        def service_for(service_name: str) -> Any:
            if service_name == "sagemaker":
                service = _sagemaker_sync_service(harness)
            elif service_name == "aws-sdk":
                service = _aws_sdk_service(harness)
            elif service_name == "states":
                service = _states_service()
            else:
                service = original(service_name)
            return _authorized_task(harness, _validated_task(harness, service))

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
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

        # a Retry still runs its attempts, without waiting its intervals
        stack.enter_context(mock.patch.object(retrier_decl, "time", mock.Mock(sleep=lambda seconds: None)))
        stack.enter_context(_tolerated_failures_enforced(harness))
        from tests.moto_gaps import model_package_deletes

        stack.enter_context(model_package_deletes())
        return stack

    def _create_resources(self) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        prefix = f"imgclf-{self.stage}"
        self.datasets_bucket = f"{prefix}-datasets-{ACCOUNT}-{REGION}"
        self.artifacts_bucket = f"{prefix}-artifacts-{ACCOUNT}-{REGION}"
        for bucket in (self.datasets_bucket, self.artifacts_bucket, f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"):
            s3.create_bucket(Bucket=bucket)
        ((data, topic, _),) = (
            r for r in self.world.resources_of_type("AWS::SNS::Topic") if r[0] == f"Imgclf-{self.stage}-Data"
        )
        topic_name = self.world.attrs[data, topic, "TopicName"]
        self.topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name=topic_name)["TopicArn"]
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
        for stack, logical, resource in self.world.resources_of_type("AWS::IAM::Role"):
            iam.create_role(
                RoleName=self.world.refs[stack, logical],
                AssumeRolePolicyDocument=json.dumps(resource["Properties"].get("AssumeRolePolicyDocument", {})),
            )
        self.state_machines: Dict[str, str] = {}
        self.state_machines["deployment"] = self._create_state_machine(f"Imgclf-{self.stage}-Serving")
        self.state_machines["training"] = self._create_state_machine(f"Imgclf-{self.stage}-Training")
        if f"Imgclf-{self.stage}-Batch" in self.templates:
            self.state_machines["batch"] = self._create_state_machine(f"Imgclf-{self.stage}-Batch")
        self.upload_code_asset()

    def _create_state_machine(self, stack: str) -> str:
        template = self.templates[stack]

        def resolve(value: Any) -> Any:
            return self.world.resolve(stack, value)

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
                Role=self.world.role_arn(stack, props["Role"]),
                Handler=props["Handler"],
                Code={"ZipFile": b"harness"},
            )
        ((logical, machine),) = (
            (k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"
        )
        definition = resolve(machine["Properties"]["DefinitionString"])
        return boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=machine["Properties"]["StateMachineName"],
            definition=definition,
            roleArn=self.world.role_arn(stack, machine["Properties"]["RoleArn"]),
        )["stateMachineArn"]

    # -- Lambda ------------------------------------------------------------------------
    def set_environment(self, handler_module: str, **values: str) -> None:
        """Change the environment of the functions whose handler is in ``handler_module``."""
        for spec in self.functions.values():
            if spec["handler"].rsplit(".", 1)[0] == handler_module:
                spec["environment"].update(values)

    def invoke(self, handler: str, event: Dict[str, Any]) -> Any:
        """Run the function whose handler is ``handler`` (``lambdas.trigger.handler.handler``)
        as Lambda would, with its environment and role, outside any workflow."""
        (name,) = (n for n, spec in self.functions.items() if spec["handler"] == handler)
        return self._invoke(name, event)

    def _invoke(self, name: str, event: Dict[str, Any]) -> Any:
        spec = self.functions[name]
        module_name, function = spec["handler"].rsplit(".", 1)
        self.invocations.append(module_name)
        self.authorize(self.aws.lambda_runtime(name, f"Lambda {name}"))
        thread = threading.get_ident()
        self._principals[thread] = self.world.function_role(name)
        environment = {**self.environ, **spec["environment"], "AWS_DEFAULT_REGION": REGION}
        with contextlib.ExitStack() as cleanup, self.environ.scoped(environment):
            cleanup.callback(self._principals.pop, thread, None)
            module = importlib.import_module(module_name)
            context = mock.Mock(
                function_name=name,
                memory_limit_in_mb=512,
                aws_request_id="req",
                invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            )
            return getattr(module, function)(event, context)

    # -- SageMaker ---------------------------------------------------------------------
    def keys_under(self, uri: str) -> List[str]:
        """The object keys an ``S3Prefix`` input downloads (all keys starting with the prefix)."""
        bucket, _, prefix = uri[5:].partition("/")
        s3 = boto3.client("s3", region_name=REGION)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def run_training_job(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """CreateTrainingJob, authorized as SageMaker would; then the next ``training_outcomes``
        (a fake success by default) or, with ``script_mode``, the real job (``run_script_mode_job``).
        Answers with DescribeTrainingJob's shape, which ``describeTrainingJob`` returns later."""
        self.training_requests.append(request)
        name = request["TrainingJobName"]
        denial = self.authorize(self.aws.training_job(request, self.keys_under))
        if denial:  # SageMaker fails the job with the S3, KMS or ECR error
            return {"TrainingJobName": name, "TrainingJobStatus": "Failed", "FailureReason": f"ClientError: {denial}"}
        outcome = self.training_outcomes.pop(0) if self.training_outcomes else TrainingOutcome()
        bucket, _, prefix = request["OutputDataConfig"]["S3OutputPath"][5:].partition("/")
        base = f"{prefix}/{name}/output"
        description = {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
            "OutputDataConfig": request["OutputDataConfig"],
            "HyperParameters": request["HyperParameters"],
            "BillableTimeInSeconds": 60,
        }
        if outcome.script_mode:
            description.update(self.run_script_mode_job(request))
        elif outcome.failure:
            description.update(TrainingJobStatus="Failed", FailureReason=outcome.failure)
        else:
            s3 = boto3.client("s3", region_name=REGION)
            evaluation = {"accuracy": outcome.accuracy, "top_k_accuracy": 1.0, "loss": 0.1}
            output = {"evaluation.json": json.dumps(evaluation).encode()}
            model = {"model-info.json": b"{}"}
            if outcome.baseline:  # the job's own, so a test can tell whose a copy is
                output["baseline.json"] = model["baseline.json"] = json.dumps({"version": 1, "job": name}).encode()
            s3.put_object(Bucket=bucket, Key=f"{base}/output.tar.gz", Body=tar_gz(output))
            s3.put_object(Bucket=bucket, Key=f"{base}/model.tar.gz", Body=tar_gz(model))
            description.update(
                TrainingJobStatus="Completed",
                ModelArtifacts={"S3ModelArtifacts": f"s3://{bucket}/{base}/model.tar.gz"},
            )
        self.jobs = getattr(self, "jobs", {})
        self.jobs[name] = description
        return description

    # -- Training containers, as SageMaker starts the MXNet framework container (script mode) ----
    # the AWS MXNet DLC's framework module, played by app/container_entry.py (the harness writes it
    # where the container's site-packages would be): the DLC's sagemaker_mxnet_container.training
    # lets entry_point.run raise, so trainer.train() writes output/failure and exits non-zero
    FRAMEWORK_MODULE = '''"""sagemaker_mxnet_container.training, played by app/container_entry.py."""
import importlib.util
import os

from sagemaker_training import errors


def main():
    os.environ.setdefault("IMGCLF_FRAMEWORK", "mxnet")
    spec = importlib.util.spec_from_file_location("container_entry", {entry!r})
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    code = entry.main()
    if code:  # container_entry answers the toolkit's ExecuteUserScriptError with its exit status
        raise errors.ExecuteUserScriptError(cmd="sagemaker_program", return_code=code)
'''
    FRAMEWORK_SITE = "/opt/conda/lib/framework"  # where the framework module is, in the container

    @staticmethod
    def training_python() -> str:
        """The interpreter of the training container: .venv-mxnet (MXNet 1.9.1 and the
        sagemaker-training toolkit, which the AWS MXNet training images run as ``train``)."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        python = os.path.join(root, ".venv-mxnet", "bin", "python")
        if not os.path.exists(python):
            raise RuntimeError(".venv-mxnet does not exist: `make env` creates it")
        return python

    def run_script_mode_job(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """CreateTrainingJob as SageMaker runs it with the MXNet framework image; answers with
        DescribeTrainingJob's status fields.

        Each channel of InputDataConfig is downloaded with S3Prefix semantics to
        /opt/ml/input/data/<ChannelName>/ (the code channel: the archive under CDK's ``<hash>.gz``
        key) and the checkpoints from CheckpointConfig.S3Uri to its LocalPath (default
        /opt/ml/checkpoints); /opt/ml/input/config holds hyperparameters.json (the request's,
        strings as they are), inputdataconfig.json and resourceconfig.json (one host). The
        image's default command, ``train`` (the sagemaker-training toolkit's trainer.train(),
        SAGEMAKER_TRAINING_MODULE=sagemaker_mxnet_container.training:main, ``FRAMEWORK_MODULE``),
        runs in a private mount namespace (``_run_container``) with .venv-mxnet's python: it
        extracts sagemaker_submit_directory and runs sagemaker_program. Then the checkpoints are
        uploaded and, when it exits 0, /opt/ml/model becomes ``<S3OutputPath>/<job>/output/
        model.tar.gz`` and /opt/ml/output/data ``output.tar.gz``; otherwise /opt/ml/output/failure
        (its first 1024 characters) is the FailureReason. The log is in ``training_logs``."""
        import sys
        import tempfile

        name = request["TrainingJobName"]
        s3 = boto3.client("s3", region_name=REGION)
        assert request["ResourceConfig"]["InstanceCount"] == 1, "the harness runs single-host training jobs"
        checkpoint = request.get("CheckpointConfig")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="harness-training-") as work:
            opt = os.path.join(work, "opt")
            for channel in request["InputDataConfig"]:
                source = channel["DataSource"]["S3DataSource"]
                mode = channel.get("InputMode", request["AlgorithmSpecification"]["TrainingInputMode"])
                assert source["S3DataType"] == "S3Prefix" and mode == "File", channel
                local = self._container_path(opt, f"/opt/ml/input/data/{channel['ChannelName']}")
                os.makedirs(local, exist_ok=True)
                if not self._download_s3_prefix(s3, source["S3Uri"], local):
                    reason = (
                        f'ClientError: Data download failed:No S3 objects found under S3 URL "{source["S3Uri"]}" '
                        "given in input data source."
                    )
                    return {"TrainingJobStatus": "Failed", "FailureReason": reason}
            checkpoints = self._container_path(opt, (checkpoint or {}).get("LocalPath", "/opt/ml/checkpoints"))
            os.makedirs(checkpoints, exist_ok=True)
            if checkpoint:  # a job that resumes (a spot job's new instance) finds what it saved
                self._download_s3_prefix(s3, checkpoint["S3Uri"], checkpoints)
            for folder in ("model", "output/data"):
                os.makedirs(self._container_path(opt, f"/opt/ml/{folder}"), exist_ok=True)
            self._write_training_config(opt, request)
            command = self._training_command(opt, request)
            limit = min(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 600), 600)
            exit_code, log = self._run_container(command, opt, work, timeout=limit, python=self.training_python())
            self.training_logs = {**getattr(self, "training_logs", {}), name: log}
            sys.stderr.write(f"--- training job {name}: exit status {exit_code} ---\n{log}")
            if checkpoint:
                self._upload_folder(s3, checkpoints, checkpoint["S3Uri"])
            billable = {"BillableTimeInSeconds": max(1, round(time.monotonic() - started))}
            if exit_code != 0:
                failure = os.path.join(opt, "ml", "output", "failure")
                reason = "AlgorithmError: See job logs for more information"
                if os.path.exists(failure):
                    with open(failure, encoding="utf-8", errors="replace") as f:
                        reason = f.read()[:1024] or reason
                return {**billable, "TrainingJobStatus": "Failed", "FailureReason": reason}
            bucket, _, prefix = request["OutputDataConfig"]["S3OutputPath"][5:].partition("/")
            base = f"{prefix}/{name}/output"
            for folder, archive in (("model", "model.tar.gz"), ("output/data", "output.tar.gz")):
                body = self._tar_folder(self._container_path(opt, f"/opt/ml/{folder}"))
                s3.put_object(Bucket=bucket, Key=f"{base}/{archive}", Body=body)
        return {
            **billable,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://{bucket}/{base}/model.tar.gz"},
        }

    @staticmethod
    def _write_training_config(opt: str, request: Dict[str, Any]) -> None:
        """/opt/ml/input/config as SageMaker writes it for a training container: the request's
        HyperParameters (string values; script mode's keys JSON-encoded, as the planner wrote
        them), each channel's settings, and the one host's resources."""
        config = os.path.join(opt, "ml", "input", "config")
        os.makedirs(config, exist_ok=True)
        channels = {}
        for channel in request["InputDataConfig"]:
            source = channel["DataSource"]["S3DataSource"]
            settings = {
                "TrainingInputMode": channel.get("InputMode", request["AlgorithmSpecification"]["TrainingInputMode"]),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                settings["ContentType"] = channel["ContentType"]
            channels[channel["ChannelName"]] = settings
        instance_type = request["ResourceConfig"]["InstanceType"]
        resources = {
            "current_host": "algo-1",
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": ["algo-1"],
            "instance_groups": [
                {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": ["algo-1"]}
            ],
            "network_interface_name": "eth0",
        }
        for file, content in (
            ("hyperparameters.json", request.get("HyperParameters", {})),
            ("inputdataconfig.json", channels),
            ("resourceconfig.json", resources),
        ):
            with open(os.path.join(config, file), "w") as f:
                json.dump(content, f)

    @classmethod
    def _training_command(cls, opt: str, request: Dict[str, Any]) -> List[str]:
        """The MXNet image's default command, ``train``, with the image's and the job's
        environment; writes the framework module (``FRAMEWORK_MODULE``) and the ``train`` script."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        package = os.path.join(opt, cls.FRAMEWORK_SITE[len("/opt/") :], "sagemaker_mxnet_container")
        os.makedirs(package, exist_ok=True)
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write("")
        with open(os.path.join(package, "training.py"), "w") as f:
            f.write(cls.FRAMEWORK_MODULE.format(entry=os.path.join(root, "app", "container_entry.py")))
        train = os.path.join(opt, "conda", "bin", "train")
        os.makedirs(os.path.dirname(train), exist_ok=True)
        with open(train, "w") as f:  # the toolkit's console script
            f.write('#!/bin/sh\nexec python3 -m sagemaker_training.cli.train "$@"\n')
        os.chmod(train, 0o755)
        name = request["TrainingJobName"]
        environment = {
            "SAGEMAKER_TRAINING_MODULE": "sagemaker_mxnet_container.training:main",  # the image's ENV
            "PYTHONPATH": cls.FRAMEWORK_SITE,
            "TRAINING_JOB_NAME": name,
            "TRAINING_JOB_ARN": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
            "AWS_REGION": REGION,
            **request.get("Environment", {}),
        }
        return ["env", *(f"{key}={value}" for key, value in environment.items()), "train"]

    @staticmethod
    def _tar_folder(folder: str) -> bytes:
        """A folder's contents at the archive's root, gzipped, as SageMaker packs model.tar.gz
        and output.tar.gz."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for entry in sorted(os.listdir(folder)):
                tar.add(os.path.join(folder, entry), arcname=entry)
        return raw.getvalue()

    @staticmethod
    def _upload_folder(s3: Any, local: str, uri: str) -> None:
        """Upload every file under ``local`` to the S3 prefix ``uri``, keyed by its relative path."""
        bucket, _, prefix = uri[5:].partition("/")
        for folder, _, files in os.walk(local):
            for file in files:
                path = os.path.join(folder, file)
                relative = os.path.relpath(path, local).replace(os.sep, "/")
                key = f"{prefix.rstrip('/')}/{relative}" if prefix.strip("/") else relative
                s3.upload_file(path, bucket, key)

    def run_processing_job(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """CreateProcessingJob as SageMaker runs it: every input, the code archive included, is
        downloaded with S3Prefix semantics under a temporary folder that the job sees as /opt;
        ContainerEntrypoint + ContainerArguments run there in a private mount namespace, with
        the container stack's ``python3`` (``_run_container``); the outputs are uploaded when it
        exits 0. /opt/ml/output/message is the job's ExitMessage (its first 1 KB, documented in
        byoc-metadata) and, when the job fails, its FailureReason. The job's log (what
        CloudWatch would hold) is in ``processing_logs`` and on stderr."""
        import sys
        import tempfile

        self.processing_requests.append(request)
        name = request["ProcessingJobName"]
        description: Dict[str, Any] = {
            "ProcessingJobName": name,
            "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}",
        }
        denial = self.authorize(self.aws.processing_job(request, self.keys_under))
        if denial:  # SageMaker fails the job with the S3, KMS or ECR error
            return {**description, "ProcessingJobStatus": "Failed", "FailureReason": f"ClientError: {denial}"}
        s3 = boto3.client("s3", region_name=REGION)
        with tempfile.TemporaryDirectory(prefix="harness-processing-") as work:
            opt = os.path.join(work, "opt")
            for item in request["ProcessingInputs"]:
                source = item["S3Input"]
                assert source["S3DataType"] == "S3Prefix" and source["S3InputMode"] == "File", source
                local = self._container_path(opt, source["LocalPath"])
                if not self._download_s3_prefix(s3, source["S3Uri"], local):
                    reason = f"ClientError: No S3 objects found under S3 URL {source['S3Uri']!r}"
                    return {**description, "ProcessingJobStatus": "Failed", "FailureReason": reason}
            outputs = request["ProcessingOutputConfig"]["Outputs"]
            for output in outputs:  # SageMaker creates the output folders before the container starts
                os.makedirs(self._container_path(opt, output["S3Output"]["LocalPath"]), exist_ok=True)
            self._write_processing_config(opt, request)
            app = request["AppSpecification"]
            assert app.get("ContainerEntrypoint"), "the harness runs a ContainerEntrypoint, not an image's ENTRYPOINT"
            command = [*app["ContainerEntrypoint"], *app.get("ContainerArguments", [])]
            limit = min(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 600), 600)
            exit_code, log = self._run_container(command, opt, work, timeout=limit)
            self.processing_logs = {**getattr(self, "processing_logs", {}), name: log}
            sys.stderr.write(f"--- processing job {name}: exit status {exit_code} ---\n{log}")
            message_path = os.path.join(opt, "ml", "output", "message")
            message = None
            if os.path.exists(message_path):
                with open(message_path, "rb") as f:
                    raw = f.read()
                try:
                    message = raw.decode("utf-8")[:1024]
                except UnicodeDecodeError:
                    reason = "ClientError: /opt/ml/output/message is not UTF-8 encoded"
                    return {**description, "ProcessingJobStatus": "Failed", "FailureReason": reason}
                description["ExitMessage"] = message
            if exit_code != 0:
                reason = message or "AlgorithmError: See job logs for more information"
                return {**description, "ProcessingJobStatus": "Failed", "FailureReason": reason}
            for output in outputs:
                local = self._container_path(opt, output["S3Output"]["LocalPath"])
                self._upload_folder(s3, local, output["S3Output"]["S3Uri"])
        return {**description, "ProcessingJobStatus": "Completed"}

    def run_transform_job(self, caller: str, request: Dict[str, Any]) -> Dict[str, Any]:
        """CreateTransformJob as SageMaker runs it (``transform_job.py``)."""
        from .transform_job import run_transform_job

        self.transform_requests.append(request)
        return run_transform_job(self, caller, request)

    def upload_code_asset(self) -> None:
        """The training code archive (``infra.sourcedir.build_sourcedir()``, this checkout's
        training_code) in the assets bucket under the key CDK gives it, as ``cdk deploy``
        publishes it: the ``CODE_URI`` of the functions that plan the jobs."""
        from infra.sourcedir import build_sourcedir

        uris = {spec["environment"]["CODE_URI"] for spec in self.functions.values() if "CODE_URI" in spec["environment"]}
        assert uris, "no function has CODE_URI: where does the code archive go?"
        data = build_sourcedir()
        s3 = boto3.client("s3", region_name=REGION)
        for uri in sorted(uris):
            bucket, _, key = uri[5:].partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=data)

    # -- Processing containers, as SageMaker starts them ---------------------------------------
    # a container's environment, as the AWS DLC images set it (their python is in /opt/conda/bin)
    CONTAINER_ENV = {
        "PATH": "/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }

    @staticmethod
    def container_python() -> str:
        """The interpreter that plays the container's ``python3``: .venv-container (Python 3.8,
        numpy 1.19.5, Pillow 9.5.0, mxnet 1.9.1, no OpenCV: the AWS MXNet 1.9 containers' stack)
        where it is built, else .venv-mxnet (Python 3.11, numpy 1.23, OpenCV) on machines without
        a Python 3.8, where the Makefile does not build .venv-container."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for venv in (".venv-container", ".venv-mxnet"):
            python = os.path.join(root, venv, "bin", "python")
            if os.path.exists(python):
                return python
        raise RuntimeError("neither .venv-container nor .venv-mxnet exists: `make env` creates them")

    @staticmethod
    def _container_path(opt: str, path: str) -> str:
        """Where ``path`` (under /opt/ml/, as SageMaker requires) is in the folder the job sees as /opt."""
        assert path.startswith("/opt/ml/"), f"{path} is outside /opt/ml: SageMaker refuses it"
        return os.path.join(opt, path[len("/opt/") :])

    @staticmethod
    def _download_s3_prefix(s3: Any, uri: str, local: str) -> int:
        """Download an ``S3Prefix`` input as SageMaker does; returns the number of objects.

        Every object whose key starts with the prefix lands at ``local`` + the rest of its key
        (slashes make folders); an object whose key is the whole prefix (the URI names one
        object) lands as ``local/<last part of its key>``. That is SageMaker's documented rule
        for S3ModelDataSource (S3Prefix and S3Object), and what the SDK's processing inputs rely
        on (a code input ``s3://b/p/code/script.py`` with LocalPath
        ``/opt/ml/processing/input/code`` runs as ``/opt/ml/processing/input/code/script.py``)."""
        bucket, _, prefix = uri[5:].partition("/")
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):  # a folder marker
                    continue
                rest = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
                target = os.path.join(local, *rest.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                s3.download_file(bucket, key, target)
                count += 1
        return count

    @staticmethod
    def _write_processing_config(opt: str, request: Dict[str, Any]) -> None:
        """/opt/ml/config/processingjobconfig.json (the job's request) and resourceconfig.json
        (one host), which SageMaker Processing gives every container."""
        config = os.path.join(opt, "ml", "config")
        os.makedirs(config, exist_ok=True)
        with open(os.path.join(config, "processingjobconfig.json"), "w") as f:
            json.dump(request, f)
        with open(os.path.join(config, "resourceconfig.json"), "w") as f:
            json.dump({"current_host": "algo-1", "hosts": ["algo-1"]}, f)

    @classmethod
    def _run_container(
        cls, command: List[str], opt: str, work: str, timeout: float, python: Optional[str] = None
    ) -> tuple[int, str]:
        """Run ``command`` as the job's container; returns (exit status, log).

        In a private mount namespace (``unshare --mount --map-root-user``, as root or as a
        normal user) ``opt`` is bound over /opt, so /opt/ml is the job's tree; a fresh folder is
        bound over /tmp (with the repository and the interpreter's environment kept at their paths
        when they live under /tmp), and an empty one over the training_code/ folder that the
        interpreter's .pth file names, so the job runs only the code it unpacks from its code input.
        ``python3`` (/opt/conda/bin, first on the container's PATH) starts ``python``, by default
        the container stack's interpreter (``container_python``). The environment is the container's, not the
        harness's. Nothing the command needs lives under the real /opt: the interpreters are
        pyenv's (/root/.pyenv) and the repository's virtual environments."""
        import glob
        import shlex
        import signal
        import subprocess

        python = python or cls.container_python()
        conda = os.path.join(opt, "conda", "bin")
        os.makedirs(conda, exist_ok=True)
        for name in ("python3", "python"):
            with open(os.path.join(conda, name), "w") as f:
                f.write(f'#!/bin/sh\nexec {shlex.quote(python)} "$@"\n')
            os.chmod(os.path.join(conda, name), 0o755)
        empty, tmp = os.path.join(work, "empty"), os.path.join(work, "tmp")
        os.makedirs(empty)
        os.makedirs(tmp)
        site = os.path.join(os.path.dirname(os.path.dirname(python)), "lib", "python3*", "site-packages")
        hidden: set[str] = set()
        for pth in glob.glob(os.path.join(site, "imgclf-training-code.pth")):
            with open(pth) as f:
                hidden.update(line.strip() for line in f if os.path.isdir(line.strip()))
        mounts = [("--bind", empty, path) for path in sorted(hidden)] + [("--bind", opt, "/opt")]
        # the fresh /tmp keeps the repository (and the interpreter's environment) where they are
        # when they live under /tmp, as a clone in CI may: bound in with the training_code/ mask
        repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for kept in sorted({repository, os.path.dirname(os.path.dirname(python))}):
            if os.path.commonpath([kept, "/tmp"]) == "/tmp" and kept != "/tmp":
                inside = os.path.join(tmp, os.path.relpath(kept, "/tmp"))
                os.makedirs(inside, exist_ok=True)
                mounts.append(("--rbind", kept, inside))
        mounts.append(("--rbind", tmp, "/tmp"))
        script = "; ".join(
            ["set -e", *(f"mount {how} {shlex.quote(s)} {shlex.quote(d)}" for how, s, d in mounts)]
        )
        process = subprocess.Popen(
            ["unshare", "--mount", "--map-root-user", "sh", "-c", script + '; exec "$@"', "container", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd="/",
            env=cls.CONTAINER_ENV,
            start_new_session=True,
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise AssertionError(f"the job's container ran past {timeout} s: {command}") from None
        return process.returncode, out.decode("utf-8", "replace")

    def endpoint_starts(self, caller: str, endpoint: str, config_name: str) -> Optional[str]:
        """What starting ``config_name`` takes: a grant on its volume key by the caller, then
        the instances get the model data and pull the images with each model's role."""
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[ACCOUNT][REGION]
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        config = backend.endpoint_configs[config_name]
        calls: List[Call] = self.aws.endpoint_key(caller, endpoint, config.kms_key_id)
        for variant in config.production_variants:
            model = sagemaker.describe_model(ModelName=variant["ModelName"])
            containers = []
            for container in model.get("Containers", [model.get("PrimaryContainer", {})]):
                if container.get("ModelPackageName"):
                    package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
                    containers += package["InferenceSpecification"]["Containers"]
                else:
                    containers.append(container)
            calls += self.aws.endpoint_model(model["ExecutionRoleArn"], endpoint, containers)
            capture = sagemaker.describe_endpoint_config(EndpointConfigName=config_name).get("DataCaptureConfig")
            if capture:  # each variant's model role writes its captures
                calls += self.aws.endpoint_capture(model["ExecutionRoleArn"], endpoint, capture)
        return self.authorize(calls)

    def update_endpoint(self, caller: str, params: Dict[str, Any]) -> Dict[str, Any]:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[ACCOUNT][REGION]
        endpoint = backend.endpoints[params["EndpointName"]]
        policy = params["DeploymentConfig"]["BlueGreenUpdatePolicy"]
        (variant,) = backend.endpoint_configs[params["EndpointConfigName"]].production_variants
        problem = self.routing_error(policy["TrafficRoutingConfiguration"], variant["InitialInstanceCount"])
        if problem:
            from botocore.exceptions import ClientError

            raise ClientError(
                {
                    "Error": {"Code": "ValidationException", "Message": problem},
                    "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "test"},
                },
                "UpdateEndpoint",
            )
        # the new fleet starts with the new config's models; if it cannot, the update rolls back
        started = self.endpoint_starts(caller, params["EndpointName"], params["EndpointConfigName"]) is None
        if started and not self.endpoint_update_rolls_back:
            endpoint.endpoint_config_name = params["EndpointConfigName"]
        return {"EndpointArn": endpoint.arn}

    @staticmethod
    def routing_error(routing: Dict[str, Any], instances: int) -> Optional[str]:
        """Why SageMaker refuses ``routing`` (a TrafficRoutingConfig) for a new fleet of
        ``instances``, or None: a canary at most half the fleet, linear steps of 10-50%, a wait
        of 0-3600 s (API_TrafficRoutingConfig, API_CapacitySize)."""
        import math

        kind, wait = routing["Type"], routing.get("WaitIntervalInSeconds")
        if not isinstance(wait, int) or not 0 <= wait <= 3600:
            return f"WaitIntervalInSeconds {wait} is not between 0 and 3600"
        size = routing.get({"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(kind, ""))
        if kind == "ALL_AT_ONCE":
            return None
        if kind not in ("CANARY", "LINEAR") or not size:
            return f"{kind} traffic routing needs its size"
        count = size["Value"] if size["Type"] == "INSTANCE_COUNT" else math.ceil(instances * size["Value"] / 100)
        low = 1 if kind == "CANARY" else math.ceil(instances / 10)
        if size["Value"] < 1 or not low <= count or 2 * count > instances:
            return f"{kind} size {size} is {count} of {instances} instances: it must be at most 50% of the new fleet"
        return None

    # -- executions --------------------------------------------------------------------
    def start(self, machine: str, payload: Dict[str, Any], name: Optional[str] = None) -> str:
        import uuid

        return boto3.client("stepfunctions", region_name=REGION).start_execution(
            stateMachineArn=self.state_machines[machine], input=json.dumps(payload), name=name or f"run-{uuid.uuid4()}"
        )["executionArn"]

    def wait(self, execution_arn: str, timeout: float = 600) -> Dict[str, Any]:
        """The finished execution; generous, since a loaded CI machine runs it several times slower."""
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


def _authorized_task(harness: WorkflowHarness, service: Any) -> Any:
    """``service`` (a Task state's integration) authorizes its calls with the state machine's
    role before it makes them; a refusal fails the state as AWS would."""
    original = service._eval_service_task

    def eval_service_task(env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any) -> Any:
        principal = env.aws_execution_details.role_arn
        state = env.states.context_object.context_object_data.get("State", {}).get("Name", "?")
        calls = harness.aws.task(principal, service.resource.resource_arn, normalised_parameters, f"state {state}")
        denial = harness.authorize(calls)
        if denial:
            raise _access_denied(denial, service.resource.resource_arn)
        return original(env, resource_runtime_part, normalised_parameters, state_credentials)

    service._eval_service_task = eval_service_task
    return service


def _access_denied(text: str, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": text},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "iam"},
        },
        operation,
    )


def _lambda_calls_authorized(harness: WorkflowHarness) -> Any:
    """Every boto3 call a Lambda handler makes is authorized with the function's role."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: Dict[str, Any]) -> Any:
        principal = harness._principal()
        if principal:
            service = client.meta.service_model.service_name
            denial = harness.authorize(harness.aws.api(principal, service, operation, params, f"{service}.{operation}"))
            if denial:
                raise _access_denied(denial, operation)
        return original(client, operation, params)

    from concurrent.futures import ThreadPoolExecutor

    original_submit = ThreadPoolExecutor.submit

    def submit(executor: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        principal = harness._principal()
        if principal is None:
            return original_submit(executor, fn, *args, **kwargs)
        environment = harness.environ.scope()

        def as_principal(*a: Any, **kw: Any) -> Any:
            thread = threading.get_ident()
            harness._principals[thread] = principal
            try:
                with harness.environ.scoped(environment):
                    return fn(*a, **kw)
            finally:
                harness._principals.pop(thread, None)

        return original_submit(executor, as_principal, *args, **kwargs)

    patches = contextlib.ExitStack()
    patches.enter_context(mock.patch.object(BaseClient, "_make_api_call", make_api_call))
    patches.enter_context(mock.patch.object(ThreadPoolExecutor, "submit", submit))
    return patches


def _item_reads_authorized(harness: WorkflowHarness) -> Any:
    """A Distributed Map's ItemReader reads S3 with the state machine's role."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import resource_eval_s3

    reader = resource_eval_s3.ResourceEvalS3
    original = reader._handle_get_object

    def get_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        params = env.stack[-1]
        calls = harness.aws.s3_read(env.aws_execution_details.role_arn, params["Bucket"], params["Key"], "ItemReader")
        denial = harness.authorize(calls)
        if denial:
            raise _access_denied(denial, "GetObject")
        original(env, resource_runtime_part, state_credentials)

    return mock.patch.object(reader, "_handle_get_object", staticmethod(get_object))


def _tolerated_failures_enforced(harness: WorkflowHarness) -> Any:
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
        context = env.states.context_object.context_object_data
        calls = harness.aws.distributed_map(
            env.aws_execution_details.role_arn, context["StateMachine"]["Id"], context["Execution"]["Id"], "Map"
        )
        denial = harness.authorize(calls)
        if denial:
            raise _access_denied(denial, "StartExecution")
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
    return operation_model("sagemaker", operation).input_shape


def _check_request(
    harness: WorkflowHarness, service: str, operation: str, params: Dict[str, Any], step_functions_names: bool
) -> None:
    """The request is valid for the real API: every member's type, length, range, enum and
    pattern in botocore's model (request_shapes.py; botocore's own validator skips patterns,
    enums and maxima). A problem fails the state, and ``running()`` fails the test with it, even
    where a Catch goes on."""
    problems = validate_request(service, operation, params, step_functions_names=step_functions_names)
    if problems:
        harness.request_problems.extend(problems)
        raise AssertionError(f"invalid {service} {operation} request:\n  " + "\n  ".join(problems))


def _validated_task(harness: WorkflowHarness, service: Any) -> Any:
    """``service`` (a Task state's integration) checks each request, with its JSONPath values
    resolved, against the API's model before making it: aws-sdk tasks name the members in
    PascalCase; the optimized integrations (sagemaker .sync, sns, states, lambda) as the API."""
    original = service._eval_service_task

    def eval_service_task(
        env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> Any:
        resource = service.resource
        params = normalised_parameters
        if resource.api_name == "sns" and not isinstance(params.get("Message", ""), str):
            # sns:publish sends a JSON Message as text (moto does it later, in the call)
            params = {**params, "Message": json.dumps(params["Message"], separators=(",", ":"))}
        aws_sdk = resource.service_name == "aws-sdk"
        _check_request(harness, resource.api_name, resource.api_action, params, step_functions_names=aws_sdk)
        return original(env, resource_runtime_part, normalised_parameters, state_credentials)

    service._eval_service_task = eval_service_task
    return service


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
            action = self.resource.api_action
            return set(_request_shape(action[0].upper() + action[1:]).members)

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            action = self.resource.api_action
            assert action in ("createTrainingJob", "createProcessingJob", "createTransformJob"), action
            if action == "createTransformJob":
                env.stack.append(harness.run_transform_job(env.aws_execution_details.role_arn, normalised_parameters))
            elif action == "createProcessingJob":
                env.stack.append(harness.run_processing_job(normalised_parameters))
            else:
                env.stack.append(harness.run_training_job(normalised_parameters))

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> Callable[[], Any]:
            def resolve() -> Any:
                description = env.stack.pop()
                status = (
                    description.get("TrainingJobStatus")
                    or description.get("ProcessingJobStatus")
                    or description.get("TransformJobStatus")
                )
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
                env.stack.append(harness.update_endpoint(env.aws_execution_details.role_arn, normalised_parameters))
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
            if self.resource.api_name == "applicationautoscaling" and action in harness.scaling_errors:
                from botocore.exceptions import ClientError

                raise ClientError(
                    {
                        "Error": {"Code": harness.scaling_errors[action], "Message": "injected by the test"},
                        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "test"},
                    },
                    action[0].upper() + action[1:],
                )
            if self.resource.api_name == "sagemaker" and action == "describeTrainingJob":
                env.stack.append(harness.jobs[normalised_parameters["TrainingJobName"]])
                return
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
            if self.resource.api_name == "sagemaker" and action == "createEndpoint":
                started = harness.endpoint_starts(
                    env.aws_execution_details.role_arn,
                    normalised_parameters["EndpointName"],
                    normalised_parameters["EndpointConfigName"],
                )
            if self.resource.api_name == "sagemaker" and action == "createEndpoint" and (
                harness.endpoint_create_fails or started
            ):
                from moto.sagemaker.models import sagemaker_backends

                sagemaker_backends[ACCOUNT][REGION].endpoints[
                    normalised_parameters["EndpointName"]
                ].endpoint_status = "Failed"

    return AwsSdk()
