"""The authorization requests behind each AWS call the system makes at run time.

One API call can mean several IAM checks, by different principals: a Step Functions
``createTrainingJob.sync`` task is CreateTrainingJob, AddTags (tag on create), PassRole of the
job's role, DescribeTrainingJob and the managed EventBridge rule, all by the state machine's
role; the job itself then lists and reads its channels, writes its output and checkpoints,
encrypts its volume, pulls its image and writes logs and metrics, all by the job's role; and
every S3 object in an SSE-KMS bucket is a KMS call as well. This module turns each call into
the :class:`Call` list that AWS authorizes, from the AWS documentation of each API (cited where
it is not obvious). An API call this module has no rule for fails loudly, so a new call cannot
go unchecked.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from .iam_model import ACCOUNT, REGION, Call, World

SECURE = {"aws:SecureTransport": "true"}


def _s3_parts(uri: str) -> Tuple[str, str]:
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _sm_arn(kind: str, name: str) -> str:
    """SageMaker puts names into ARNs in lower case (IAM compares ARNs case-sensitively)."""
    if name.startswith("arn:"):
        return name
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


class Calls:
    """Builds the calls for one world (the synthesized app's physical names)."""

    def __init__(self, world: World) -> None:
        self.world = world

    # -- S3 and the KMS calls S3 makes for SSE-KMS buckets ----------------------------------
    def _kms_via_s3(self, principal: str, bucket: str, actions: Iterable[str], why: str) -> List[Call]:
        key = self.world.key_of_bucket(bucket)
        if not key:
            return []
        context = {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            "kms:CallerAccount": ACCOUNT,
            "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket}",
        }
        return [Call(principal, action, key, why, context) for action in actions]

    def s3_read(self, principal: str, bucket: str, key: str, why: str) -> List[Call]:
        return [
            Call(principal, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", why, SECURE),
            *self._kms_via_s3(principal, bucket, ["kms:Decrypt"], why),
        ]

    def s3_write(self, principal: str, bucket: str, key: str, why: str, kms_key: Optional[str] = None) -> List[Call]:
        calls = [Call(principal, "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", why, SECURE)]
        calls += self._kms_via_s3(principal, bucket, ["kms:GenerateDataKey", "kms:Decrypt"], why)
        if kms_key and kms_key != self.world.key_of_bucket(bucket):
            context = {"kms:ViaService": f"s3.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}
            calls += [Call(principal, a, kms_key, why, context) for a in ("kms:GenerateDataKey", "kms:Decrypt")]
        return calls

    def s3_list(self, principal: str, bucket: str, prefix: str, why: str) -> List[Call]:
        return [Call(principal, "s3:ListBucket", f"arn:aws:s3:::{bucket}", why, {**SECURE, "s3:prefix": prefix})]

    def s3_prefix_download(self, principal: str, uri: str, why: str, keys: Iterable[str]) -> List[Call]:
        """An ``S3Prefix`` input: SageMaker lists the prefix, then gets every object under it."""
        bucket, prefix = _s3_parts(uri)
        calls = self.s3_list(principal, bucket, prefix, why)
        for key in keys:
            calls += self.s3_read(principal, bucket, key, why)
        return calls

    # -- boto3 calls (what a Lambda function or a service makes) ----------------------------
    def api(self, principal: str, service: str, operation: str, params: Mapping[str, Any], why: str) -> List[Call]:
        rule = API_RULES.get((service, operation))
        if rule is None:
            raise NotImplementedError(f"no IAM rule for {service}.{operation} (tests/infra/aws_calls.py)")
        return rule(self, principal, params, why)

    # -- Step Functions tasks ------------------------------------------------------------
    def task(self, principal: str, resource: str, params: Mapping[str, Any], why: str) -> List[Call]:
        """The calls of a Task state with ``Resource`` ``resource`` and resolved ``params``."""
        parts = resource.split(":")
        if parts[2] == "lambda" or resource.endswith(":lambda:invoke"):
            function = params.get("FunctionName", resource)
            return [Call(principal, "lambda:InvokeFunction", str(function), why)]
        integration = ":".join(parts[5:])  # e.g. sns:publish, aws-sdk:sagemaker:createModel
        service, _, action = integration.partition(":")
        pattern = ""
        for suffix in (".sync:2", ".sync", ".waitForTaskToken"):
            if action.endswith(suffix):
                action, pattern = action[: -len(suffix)], suffix
        if service == "aws-sdk":
            api_service, _, api_action = action.partition(":")
            return self.api(principal, SDK_SERVICES.get(api_service, api_service), _pascal(api_action), params, why)
        if service == "sns" and action == "publish":
            return self.api(principal, "sns", "Publish", params, why)
        if service == "states" and action == "startExecution":
            target = params.get("StateMachineArn") or params["stateMachineArn"]
            calls = [Call(principal, "states:StartExecution", target, why)]
            if pattern:  # .sync: Step Functions follows the child with the caller's permissions
                name = target.split(":")[-1]
                execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:child"
                calls += [Call(principal, a, execution, why) for a in ("states:DescribeExecution", "states:StopExecution")]
                calls += self._managed_rule(principal, "StepFunctionsGetEventsForStepFunctionsExecutionRule", why)
            return calls
        if service == "sagemaker" and action in ("createTrainingJob", "createProcessingJob", "createTransformJob"):
            kind = {"createTrainingJob": "Training", "createProcessingJob": "Processing"}.get(action, "Transform")
            name = params[f"{kind}JobName"]
            arn = _sm_arn(f"{kind.lower()}-job", name)
            calls = self.api(principal, "sagemaker", f"Create{kind}Job", params, why)
            if pattern:  # https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html
                calls += [Call(principal, f"sagemaker:{a}{kind}Job", arn, why) for a in ("Describe", "Stop")]
                calls += self._managed_rule(principal, f"StepFunctionsGetEventsForSageMaker{kind}JobsRule", why)
            return calls
        raise NotImplementedError(f"no IAM rule for the integration {resource} (tests/infra/aws_calls.py)")

    def _managed_rule(self, principal: str, rule: str, why: str) -> List[Call]:
        arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"
        return [Call(principal, f"events:{a}", arn, why) for a in ("PutTargets", "PutRule", "DescribeRule")]

    def pass_role(self, principal: str, role: str, why: str, service: str = "sagemaker.amazonaws.com") -> Call:
        return Call(principal, "iam:PassRole", role, why, {"iam:PassedToService": service})

    def distributed_map(self, principal: str, state_machine: str, execution: str, why: str) -> List[Call]:
        """A Distributed Map runs its items as child executions of the same state machine, with
        the state machine's role, and describes and stops them through the parent execution
        (https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html)."""
        return [
            Call(principal, "states:StartExecution", state_machine, why),
            Call(principal, "states:DescribeExecution", execution, why),
            Call(principal, "states:StopExecution", execution, why),
        ]

    # -- what SageMaker does with a job's role ----------------------------------------------
    def _container(self, role: str, image: str, log_group: str, stream: str, why: str) -> List[Call]:
        """Pulling the image (ECR), writing logs and metrics."""
        registry, _, rest = image.partition("/")
        account, region = registry.split(".")[0], registry.split(".")[3]
        repository = rest.split(":")[0].split("@")[0]
        repo_arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
        calls = [Call(role, "ecr:GetAuthorizationToken", "*", why)]
        calls += [
            Call(role, f"ecr:{a}", repo_arn, why)
            for a in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage")
        ]
        group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}"
        calls += [
            Call(role, "logs:CreateLogGroup", f"{group}:log-stream:", why),
            Call(role, "logs:CreateLogStream", f"{group}:log-stream:{stream}", why),
            Call(role, "logs:PutLogEvents", f"{group}:log-stream:{stream}", why),
            Call(role, "cloudwatch:PutMetricData", "*", why, {"cloudwatch:namespace": log_group}),
        ]
        return calls

    def _volume(self, role: str, key: Optional[str], why: str) -> List[Call]:
        """An encrypted ML storage volume: kms:CreateGrant by the job's role, or else by the
        caller (https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html);
        this project grants it to the role."""
        if not key:
            return []
        return [Call(role, "kms:CreateGrant", key, why), Call(role, "kms:DescribeKey", key, why)]

    def training_job(self, request: Mapping[str, Any], keys_under: Callable[[str], List[str]]) -> List[Call]:
        role, name = request["RoleArn"], request["TrainingJobName"]
        why = f"training job {name}"
        calls: List[Call] = []
        for channel in request["InputDataConfig"]:
            source = channel["DataSource"]["S3DataSource"]
            assert source["S3DataType"] == "S3Prefix", source
            calls += self.s3_prefix_download(role, source["S3Uri"], f"{why}, channel {channel['ChannelName']}",
                                             keys_under(source["S3Uri"]))
        output = request["OutputDataConfig"]
        bucket, prefix = _s3_parts(output["S3OutputPath"])
        for file in ("model.tar.gz", "output.tar.gz"):
            key = f"{prefix.rstrip('/')}/{name}/output/{file}".lstrip("/")
            calls += self.s3_write(role, bucket, key, f"{why}, output", output.get("KmsKeyId"))
        checkpoint = request.get("CheckpointConfig")
        if checkpoint:
            cb, cp = _s3_parts(checkpoint["S3Uri"])
            calls += self.s3_list(role, cb, cp, f"{why}, checkpoints")
            calls += self.s3_read(role, cb, cp.rstrip("/") + "/checkpoint-state.json", f"{why}, checkpoints")
            calls += self.s3_write(role, cb, cp.rstrip("/") + "/checkpoint-state.json", f"{why}, checkpoints")
        calls += self._volume(role, request["ResourceConfig"].get("VolumeKmsKeyId"), f"{why}, volume")
        image = request["AlgorithmSpecification"]["TrainingImage"]
        calls += self._container(role, image, "/aws/sagemaker/TrainingJobs", f"{name}/algo-1-0", why)
        return calls

    def processing_job(self, request: Mapping[str, Any], keys_under: Callable[[str], List[str]]) -> List[Call]:
        role, name = request["RoleArn"], request["ProcessingJobName"]
        why = f"processing job {name}"
        calls: List[Call] = []
        for item in request["ProcessingInputs"]:
            source = item["S3Input"]
            assert source["S3DataType"] == "S3Prefix", source
            calls += self.s3_prefix_download(role, source["S3Uri"], f"{why}, input {item['InputName']}",
                                             keys_under(source["S3Uri"]))
        config = request["ProcessingOutputConfig"]
        for output in config["Outputs"]:
            bucket, prefix = _s3_parts(output["S3Output"]["S3Uri"])
            key = prefix.rstrip("/") + "/train/train.rec"
            calls += self.s3_write(role, bucket, key, f"{why}, output {output['OutputName']}", config.get("KmsKeyId"))
        cluster = request["ProcessingResources"]["ClusterConfig"]
        calls += self._volume(role, cluster.get("VolumeKmsKeyId"), f"{why}, volume")
        image = request["AppSpecification"]["ImageUri"]
        calls += self._container(role, image, "/aws/sagemaker/ProcessingJobs", f"{name}/algo-1-0", why)
        return calls

    def transform_job(
        self,
        caller: str,
        role: str,
        request: Mapping[str, Any],
        manifest: str,
        inputs: Iterable[Tuple[str, str, str]],
        containers: Iterable[Mapping[str, Any]],
    ) -> List[Call]:
        """What a transform job does with its model's execution role (CreateTransformJob takes
        no role: https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html): read the
        manifest (a ManifestFile names its objects: no listing) and each input, load the model
        and pull its image, write each ``.out`` under TransformOutput.KmsKeyId ("the KMS key
        policy must grant permission to the IAM role that you specify in your CreateModel
        request": API_TransformOutput), encrypt the volume, write logs to
        /aws/sagemaker/TransformJobs."""
        name = request["TransformJobName"]
        why = f"transform job {name}"
        source = request["TransformInput"]["DataSource"]["S3DataSource"]
        calls: List[Call] = []
        if manifest:
            calls += self.s3_read(role, _s3_parts(source["S3Uri"])[0], manifest, f"{why}, manifest")
        else:
            calls += self.s3_list(role, *_s3_parts(source["S3Uri"]), f"{why}, input")
        output = request["TransformOutput"]
        out_bucket, out_prefix = _s3_parts(output["S3OutputPath"])
        out_prefix = out_prefix.rstrip("/") + "/" if out_prefix.strip("/") else ""
        for bucket, key, relative in inputs:
            calls += self.s3_read(role, bucket, key, f"{why}, input")
            calls += self.s3_write(role, out_bucket, f"{out_prefix}{relative}.out", f"{why}, output", output.get("KmsKeyId"))
        calls += self._volume(role, request["TransformResources"].get("VolumeKmsKeyId"), f"{why}, volume")
        for container in containers:
            if container.get("ModelDataUrl"):
                calls += self.s3_read(role, *_s3_parts(container["ModelDataUrl"]), why=f"{why}, model data")
            calls += self._container(role, container["Image"], "/aws/sagemaker/TransformJobs", f"{name}/i-0", why)
        return calls

    def endpoint_capture(self, role: str, endpoint: str, capture: Mapping[str, Any]) -> List[Call]:
        """An endpoint with DataCaptureConfig: SageMaker writes the capture files with the
        endpoint's model execution role, under DestinationS3Uri/<endpoint>/<variant>/YYYY/MM/DD/HH/,
        encrypted with the config's KmsKeyId (S3 server-side encryption: the role's KMS use
        through S3). https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html"""
        if not capture.get("EnableCapture", True) or not capture.get("InitialSamplingPercentage"):
            return []
        bucket, prefix = _s3_parts(capture["DestinationS3Uri"])
        key = f"{prefix.rstrip('/')}/{endpoint}/AllTraffic/2026/11/30/23/18-31-000-0a1b.jsonl".lstrip("/")
        return self.s3_write(role, bucket, key, f"endpoint {endpoint}, data capture", capture.get("KmsKeyId"))

    def endpoint_key(self, caller: str, endpoint: str, key: Optional[str]) -> List[Call]:
        """CreateEndpoint/UpdateEndpoint with a config that names a KmsKeyId: kms:CreateGrant by
        the caller (https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html)."""
        if not key:
            return []
        return [Call(caller, "kms:CreateGrant", key, f"endpoint {endpoint}, storage volume")]

    def endpoint_model(self, role: str, endpoint: str, containers: Iterable[Mapping[str, Any]]) -> List[Call]:
        """What an endpoint's instances do with the model's execution role: get the model
        artifact and pull the image of each container."""
        why = f"endpoint {endpoint}"
        calls: List[Call] = []
        for container in containers:
            if container.get("ModelDataUrl"):
                calls += self.s3_read(role, *_s3_parts(container["ModelDataUrl"]), why=f"{why}, model data")
            calls += self._container(role, container["Image"], f"/aws/sagemaker/Endpoints/{endpoint}",
                                     "AllTraffic/i-0", why)
        return calls

    def lambda_runtime(self, function: str, why: str) -> List[Call]:
        """Lambda writes the function's logs to its log group with the function's role."""
        for stack, logical, resource in self.world.resources_of_type("AWS::Lambda::Function"):
            if logical != function:
                continue
            props = resource["Properties"]
            role = self.world.role_arn(stack, props["Role"])
            group = self.world.resolve(stack, props.get("LoggingConfig", {}).get("LogGroup", f"/aws/lambda/{function}"))
            group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
            calls = [
                Call(role, "logs:CreateLogStream", f"{group_arn}:log-stream:2026/11/30/[$LATEST]0", why),
                Call(role, "logs:PutLogEvents", f"{group_arn}:log-stream:2026/11/30/[$LATEST]0", why),
            ]
            if props.get("TracingConfig", {}).get("Mode") == "Active":
                calls += [Call(role, "xray:PutTraceSegments", "*", why), Call(role, "xray:PutTelemetryRecords", "*", why)]
            return calls
        raise KeyError(function)


def _pascal(action: str) -> str:
    return action[0].upper() + action[1:]


# Step Functions' aws-sdk service names that differ from boto3's
SDK_SERVICES = {"applicationautoscaling": "application-autoscaling", "sfn": "stepfunctions"}

Rule = Callable[[Calls, str, Mapping[str, Any], str], List[Call]]


def _sagemaker(operation: str, kind: Optional[str] = None, param: str = "", creates: bool = False) -> Rule:
    """A SageMaker call on the resource named by ``param`` (``kind`` None: authorized on "*").
    Creating with Tags needs sagemaker:AddTags on the new resource too
    (https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html#api-access-tag-on-create)."""

    def rule(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
        action = f"sagemaker:{operation}"
        resource = "*" if kind is None else _sm_arn(kind, str(params[param]))
        context: Dict[str, Any] = {}
        if creates and params.get("Tags"):
            context["aws:TagKeys"] = [t["Key"] for t in params["Tags"]]
        found = [Call(principal, action, resource, why, context)]
        if creates and params.get("Tags"):
            found.append(Call(principal, "sagemaker:AddTags", resource, why, context))
        return found

    return rule


def _create_training(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    found = _sagemaker("CreateTrainingJob", "training-job", "TrainingJobName", creates=True)(calls, principal, params, why)
    return found + [calls.pass_role(principal, params["RoleArn"], why)]


def _create_processing(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    found = _sagemaker("CreateProcessingJob", "processing-job", "ProcessingJobName", creates=True)(calls, principal, params, why)
    return found + [calls.pass_role(principal, params["RoleArn"], why)]


def _create_model(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    found = _sagemaker("CreateModel", "model", "ModelName", creates=True)(calls, principal, params, why)
    found.append(calls.pass_role(principal, params["ExecutionRoleArn"], why))
    for container in params.get("Containers", [params.get("PrimaryContainer", {})]):
        if container.get("ModelPackageName"):
            arn = _sm_arn("model-package", container["ModelPackageName"])
            found.append(Call(principal, "sagemaker:DescribeModelPackage", arn, why))
    return found


def _create_endpoint_config(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    return _sagemaker("CreateEndpointConfig", "endpoint-config", "EndpointConfigName", creates=True)(
        calls, principal, params, why
    )


def _create_package(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    group = params["ModelPackageGroupName"]
    # a versioned package is authorized on its group's ARN and the new package's
    found = [
        Call(principal, "sagemaker:CreateModelPackage", _sm_arn("model-package-group", group), why),
        Call(principal, "sagemaker:CreateModelPackage", _sm_arn("model-package", f"{group}/1"), why),
    ]
    if params.get("Tags"):
        found.append(Call(principal, "sagemaker:AddTags", _sm_arn("model-package", f"{group}/1"), why))
    return found


def _autoscaling(action: str, needs: Tuple[str, ...]) -> Rule:
    """Application Auto Scaling checks the caller's own permissions on the target service
    (https://docs.aws.amazon.com/autoscaling/application/userguide/auth-and-access-control.html)."""

    def rule(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
        endpoint = str(params.get("ResourceId", "endpoint/unknown")).split("/")[1]
        # a scalable target's ARN ends in an ID that Application Auto Scaling makes up
        target = f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0sm{endpoint}"
        found = [Call(principal, f"application-autoscaling:{action}", target, why)]
        for need in needs:
            if need.startswith("sagemaker:"):
                found.append(Call(principal, need, _sm_arn("endpoint", endpoint), why))
            elif need.startswith("iam:CreateServiceLinkedRole"):
                found.append(
                    Call(
                        principal,
                        "iam:CreateServiceLinkedRole",
                        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                        why,
                        {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"},
                    )
                )
            else:
                # target tracking names its alarms TargetTracking-<ResourceId>-AlarmHigh-<uuid> (and AlarmLow)
                alarm = f"TargetTracking-endpoint/{endpoint}/variant/AllTraffic-AlarmHigh-0a1b"
                found.append(Call(principal, need, f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}", why))
        return found

    return rule


def _s3(operation: str) -> Rule:
    def rule(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
        bucket = params["Bucket"]
        if operation in ("GetObject", "HeadObject"):
            return calls.s3_read(principal, bucket, params["Key"], why)
        if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return calls.s3_write(principal, bucket, params["Key"], why)
        if operation in ("ListObjectsV2", "ListObjects"):
            return calls.s3_list(principal, bucket, params.get("Prefix", ""), why)
        if operation == "AbortMultipartUpload":
            return [Call(principal, "s3:AbortMultipartUpload", f"arn:aws:s3:::{bucket}/{params['Key']}", why, SECURE)]
        if operation == "DeleteObject":
            return [Call(principal, "s3:DeleteObject", f"arn:aws:s3:::{bucket}/{params['Key']}", why, SECURE)]
        raise NotImplementedError(operation)

    return rule


def _publish(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    """Publishing to an SSE topic: SNS makes and uses a data key with the publisher's permissions
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html)."""
    topic = params["TopicArn"]
    found = [Call(principal, "sns:Publish", topic, why, SECURE)]
    key = calls.world.topic_keys.get(topic)
    if key:
        context = {"kms:ViaService": f"sns.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}
        found += [Call(principal, a, key, why, context) for a in ("kms:GenerateDataKey", "kms:Decrypt")]
    return found


def _put_metric_data(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    """PutMetricData has no resource-level permissions; the cloudwatch:namespace condition key
    names the request's Namespace
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html)."""
    return [Call(principal, "cloudwatch:PutMetricData", "*", why, {"cloudwatch:namespace": params["Namespace"]})]


def _start_execution(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    return [Call(principal, "states:StartExecution", params["stateMachineArn"], why)]


def _invoke_endpoint(calls: Calls, principal: str, params: Mapping[str, Any], why: str) -> List[Call]:
    return [Call(principal, "sagemaker:InvokeEndpoint", _sm_arn("endpoint", params["EndpointName"]), why)]


SAGEMAKER: Dict[str, Rule] = {
    "CreateTrainingJob": _create_training,
    "CreateProcessingJob": _create_processing,
    "CreateModel": _create_model,
    "CreateEndpointConfig": _create_endpoint_config,
    "CreateModelPackage": _create_package,
    "CreateEndpoint": _sagemaker("CreateEndpoint", "endpoint", "EndpointName", creates=True),
    "CreateTransformJob": _sagemaker("CreateTransformJob", "transform-job", "TransformJobName", creates=True),
    **{
        op: _sagemaker(op, kind, param)
        for op, kind, param in (
            ("DescribeTrainingJob", "training-job", "TrainingJobName"),
            ("DescribeTransformJob", "transform-job", "TransformJobName"),
            ("DescribeProcessingJob", "processing-job", "ProcessingJobName"),
            ("DeleteModel", "model", "ModelName"),
            ("DeleteEndpointConfig", "endpoint-config", "EndpointConfigName"),
            ("DescribeEndpointConfig", "endpoint-config", "EndpointConfigName"),
            ("DescribeModel", "model", "ModelName"),
            ("UpdateEndpoint", "endpoint", "EndpointName"),
            ("DescribeEndpoint", "endpoint", "EndpointName"),
            ("DeleteEndpoint", "endpoint", "EndpointName"),
            ("DescribeModelPackage", "model-package", "ModelPackageName"),
            ("DeleteModelPackage", "model-package", "ModelPackageName"),
            ("UpdateModelPackage", "model-package", "ModelPackageArn"),
            ("DeleteModelPackageGroup", "model-package-group", "ModelPackageGroupName"),
        )
    },
    # List* actions take no resource-level permissions: authorized against "*"
    **{op: _sagemaker(op) for op in ("ListModelPackages", "ListEndpoints", "ListEndpointConfigs", "ListModels")},
}

API_RULES: Dict[Tuple[str, str], Rule] = {
    **{("sagemaker", op): rule for op, rule in SAGEMAKER.items()},
    ("sagemaker-runtime", "InvokeEndpoint"): _invoke_endpoint,
    ("sns", "Publish"): _publish,
    ("cloudwatch", "PutMetricData"): _put_metric_data,
    ("stepfunctions", "StartExecution"): _start_execution,
    **{
        ("s3", op): _s3(op)
        for op in (
            "GetObject",
            "HeadObject",
            "PutObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
            "AbortMultipartUpload",
            "ListObjectsV2",
            "ListObjects",
            "DeleteObject",
        )
    },
    ("application-autoscaling", "RegisterScalableTarget"): _autoscaling(
        "RegisterScalableTarget",
        ("sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities", "iam:CreateServiceLinkedRole"),
    ),
    ("application-autoscaling", "PutScalingPolicy"): _autoscaling(
        "PutScalingPolicy", ("cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm")
    ),
    ("application-autoscaling", "DeregisterScalableTarget"): _autoscaling("DeregisterScalableTarget", ()),
    ("application-autoscaling", "DescribeScalableTargets"): _autoscaling("DescribeScalableTargets", ()),
    ("application-autoscaling", "DeleteScalingPolicy"): _autoscaling(
        "DeleteScalingPolicy", ("cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms")
    ),
    ("sts", "GetCallerIdentity"): lambda calls, principal, params, why: [],  # needs no permission
}


def deliveries(world: World) -> List[Call]:
    """What AWS services do on their own for the app, read from the templates: EventBridge
    invoking each rule's target (a Lambda through its resource policy, a state machine with the
    target's role) and sending failed events to the dead-letter queue (the queue policy, and the
    queue's key for an SSE-KMS queue:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html); CloudWatch Logs
    encrypting each log group with its key; API Gateway invoking the proxy function; Lambda
sending a failed asynchronous invocation to its on-failure destination."""
    calls: List[Call] = []
    events = "service:events.amazonaws.com"
    for stack, logical, resource in world.resources_of_type("AWS::Events::Rule"):
        rule_arn = world.attrs[stack, logical, "Arn"]
        source = {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT}
        for target in world.resolve(stack, resource["Properties"].get("Targets", [])):
            why = f"rule {logical} -> {target['Id']}"
            arn = target["Arn"]
            if ":lambda:" in arn:
                calls.append(Call(events, "lambda:InvokeFunction", arn, why, source))
            elif ":states:" in arn:
                calls.append(Call(target["RoleArn"], "states:StartExecution", arn, why))
            else:
                raise NotImplementedError(f"{why}: no rule for a target {arn}")
            queue = target.get("DeadLetterConfig", {}).get("Arn")
            if queue:
                calls.append(Call(events, "sqs:SendMessage", queue, f"{why} dead letters", source))
                key = world.queue_keys.get(queue)
                if key:
                    context = {**source, "kms:ViaService": f"sqs.{REGION}.amazonaws.com"}
                    calls += [
                        Call(events, a, key, f"{why} dead letters", context)
                        for a in ("kms:GenerateDataKey", "kms:Decrypt")
                    ]
    calls += _scheduled_and_alarmed(world)
    calls += _async_failures(world)
    for stack, logical, resource in world.resources_of_type("AWS::Logs::LogGroup"):
        props = resource["Properties"]
        if "KmsKeyId" not in props:
            continue
        group = world.refs[stack, logical]
        context = {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"}
        calls += [
            Call(f"service:logs.{REGION}.amazonaws.com", a, world.resolve(stack, props["KmsKeyId"]), f"log group {group}", context)
            for a in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:Describe*")
            if a != "kms:Describe*"
        ]
    for stack, logical, resource in world.resources_of_type("AWS::ApiGateway::Method"):
        props = world.resolve(stack, resource["Properties"])
        integration = props.get("Integration", {})
        if integration.get("Type") != "AWS_PROXY":
            continue
        function = str(integration["Uri"]).split("/functions/")[1].split("/invocations")[0]
        api = props["RestApiId"]
        stages = [world.refs[s, lg] for s, lg, r in world.resources_of_type("AWS::ApiGateway::Stage") if s == stack]
        for stage in stages:
            source_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{stage}/{props['HttpMethod']}/classify"
            calls.append(
                Call("service:apigateway.amazonaws.com", "lambda:InvokeFunction", function, f"API {logical}",
                     {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT})
            )
    return calls


def _async_failures(world: World) -> List[Call]:
    """Lambda sending the record of an asynchronous invocation that failed (its retries spent) to
    the function's on-failure destination, with the function's execution role
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html), and,
    for an SSE-KMS queue, using the queue's key through SQS as any producer does."""
    calls: List[Call] = []
    for stack, logical, resource in world.resources_of_type("AWS::Lambda::EventInvokeConfig"):
        props = world.resolve(stack, resource["Properties"])
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination is None:
            continue
        if ":sqs:" not in destination:
            raise NotImplementedError(f"{logical}: no rule for an on-failure destination {destination}")
        role, why = world.function_role(props["FunctionName"]), f"function {props['FunctionName']} on failure"
        calls.append(Call(role, "sqs:SendMessage", destination, why, SECURE))
        key = world.queue_keys.get(destination)
        if key:
            via = {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}
            calls += [Call(role, a, key, why, via) for a in ("kms:GenerateDataKey", "kms:Decrypt")]
    return calls


def _scheduled_and_alarmed(world: World) -> List[Call]:
    """EventBridge Scheduler invoking each schedule's Lambda target with the schedule's
    execution role (https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role),
    and sending what it could not deliver to the target's dead-letter queue with that role too
    (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html), using
    the queue's key through SQS for an SSE-KMS queue as any producer does; and CloudWatch publishing each alarm's state changes to its SNS actions as the service
    principal, with the alarm as the source, and using the topic's key for an SSE-KMS topic
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services)."""
    calls: List[Call] = []
    for stack, logical, resource in world.resources_of_type("AWS::Scheduler::Schedule"):
        target = world.resolve(stack, resource["Properties"]["Target"])
        if ":lambda:" not in target["Arn"]:
            raise NotImplementedError(f"schedule {logical}: no rule for a target {target['Arn']}")
        calls.append(Call(target["RoleArn"], "lambda:InvokeFunction", target["Arn"], f"schedule {logical}"))
        queue = target.get("DeadLetterConfig", {}).get("Arn")
        if queue:
            why = f"schedule {logical} dead letters"
            calls.append(Call(target["RoleArn"], "sqs:SendMessage", queue, why, SECURE))
            key = world.queue_keys.get(queue)
            if key:
                via = {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}
                calls += [Call(target["RoleArn"], a, key, why, via) for a in ("kms:GenerateDataKey", "kms:Decrypt")]
    for stack, logical, resource in world.resources_of_type("AWS::CloudWatch::Alarm"):
        props = world.resolve(stack, resource["Properties"])
        alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{props.get('AlarmName', logical)}"
        source = {"aws:SourceArn": alarm, "aws:SourceAccount": ACCOUNT}
        for action in {*props.get("AlarmActions", []), *props.get("OKActions", [])}:
            if ":sns:" not in action:
                raise NotImplementedError(f"alarm {logical}: no rule for an action {action}")
            why = f"alarm {logical} -> {action}"
            calls.append(Call("service:cloudwatch.amazonaws.com", "sns:Publish", action, why, {**SECURE, **source}))
            key = world.topic_keys.get(action)
            if key:
                calls += [
                    Call("service:cloudwatch.amazonaws.com", a, key, why, source)
                    for a in ("kms:GenerateDataKey", "kms:Decrypt")
                ]
    return calls
