"""CreateTransformJob as SageMaker runs it, for the ASL harness: the model's container serves
(app.local_serving.ModelServer runs the model's own code/inference.py, as the framework's
serving container does) and every input object is POSTed to /invocations as one request
(SplitType None), with TransformInput.ContentType and TransformOutput.Accept; each answer becomes
``<S3OutputPath>/<key below the input prefix>.out``.

As documented for batch transform ("Troubleshooting batch transform" and TransformOutput): an
input the container cannot answer gets no ``.out`` and fails the job, while the other inputs
are still processed and their outputs kept. Every S3, KMS, ECR and logs call is authorized with
the model's role first (aws_calls.Calls.transform_job)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

import boto3

from .iam_model import ACCOUNT, REGION

if TYPE_CHECKING:
    from .asl_harness import WorkflowHarness


def _parts(uri: str) -> Tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def model_containers(model_name: str) -> Tuple[str, List[Dict[str, Any]]]:
    """(the model's execution role, its containers with a model package's resolved)."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    model = sagemaker.describe_model(ModelName=model_name)
    containers: List[Dict[str, Any]] = []
    for container in model.get("Containers", [model.get("PrimaryContainer", {})]):
        if container.get("ModelPackageName"):
            package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
            containers += package["InferenceSpecification"]["Containers"]
        else:
            containers.append(container)
    return model["ExecutionRoleArn"], containers


def transform_inputs(request: Dict[str, Any]) -> Tuple[str, List[Tuple[str, str, str]]]:
    """(the manifest's key or "", [(bucket, key, key below the input prefix)]) of the request."""
    s3 = boto3.client("s3", region_name=REGION)
    source = request["TransformInput"]["DataSource"]["S3DataSource"]
    bucket, key = _parts(source["S3Uri"])
    if source["S3DataType"] == "ManifestFile":
        items = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        prefix_bucket, prefix = _parts(items[0]["prefix"])
        return key, [(prefix_bucket, prefix + str(item), str(item)) for item in items[1:]]
    assert source["S3DataType"] == "S3Prefix", source
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
    keys = [o["Key"] for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return "", [(bucket, k, k[len(key) :].lstrip("/") or k.rsplit("/", 1)[-1]) for k in keys]


def run_transform_job(harness: WorkflowHarness, caller: str, request: Dict[str, Any]) -> Dict[str, Any]:
    from app.local_serving import ModelServer, invoke

    name = request["TransformJobName"]
    description: Dict[str, Any] = {
        "TransformJobName": name,
        "TransformJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{name.lower()}",
        "ModelName": request["ModelName"],
        "TransformInput": request["TransformInput"],
        "TransformOutput": request["TransformOutput"],
        "TransformResources": request["TransformResources"],
    }
    assert request["TransformInput"].get("SplitType", "None") == "None", "the harness sends one object per request"
    role, containers = model_containers(request["ModelName"])
    manifest, inputs = transform_inputs(request)
    denial = harness.authorize(harness.aws.transform_job(caller, role, request, manifest, inputs, containers))
    if denial:
        return {**description, "TransformJobStatus": "Failed", "FailureReason": f"ClientError: {denial}"}
    (container,) = containers
    s3 = boto3.client("s3", region_name=REGION)
    out_bucket, out_prefix = _parts(request["TransformOutput"]["S3OutputPath"])
    out_prefix = out_prefix.rstrip("/") + "/" if out_prefix.strip("/") else ""
    content_type = request["TransformInput"].get("ContentType", "application/octet-stream")
    accept = request["TransformOutput"].get("Accept", "application/json")
    limit = request.get("MaxPayloadInMB", 6) << 20
    failures: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="harness-transform-") as work:
        model = os.path.join(work, "model.tar.gz")
        s3.download_file(*_parts(container["ModelDataUrl"]), model)
        with ModelServer(model) as server:
            for bucket, key, relative in inputs:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                if len(body) > limit:
                    failures[key] = f"the object is larger than MaxPayloadInMB ({len(body)} bytes)"
                    continue
                status, _, answer = invoke(server.url, body, content_type, accept=accept)
                if status != 200:
                    failures[key] = f"the container answered {status}: {answer[:200]!r}"
                    continue
                s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{relative}.out", Body=answer)
    harness.transform_failures.update(failures)
    if failures:
        return {
            **description,
            "TransformJobStatus": "Failed",
            "FailureReason": "ClientError: See job logs for more information",
        }
    return {**description, "TransformJobStatus": "Completed"}
