"""CreateTransformJob as SageMaker runs it, for the ASL harness: the model's container serves
(app.local_serving.ModelServer runs the model's own code/inference.py, as the framework's
serving container does) and every input object is POSTed to /invocations with
TransformInput.ContentType and TransformOutput.Accept; the answers become
``<S3OutputPath>/<key below the input prefix>.out``.

How an object becomes requests (API_TransformInput's SplitType, API_CreateTransformJob's
BatchStrategy and MaxPayloadInMB, API_TransformOutput's AssembleWith):

* SplitType None: the whole object is one request, its answer the ``.out`` (AssembleWith None).
* SplitType RecordIO: the object is split on its RecordIO record boundaries (a record that
  MXNet's writer cut into parts stays whole). SingleRecord sends one record per request with its
  padding removed ("When splitting is applied to a binary data format, padding is removed if
  the value of BatchStrategy is set to SingleRecord"): its data alone, without the frame, which
  is one reading of that sentence (the handlers also take a framed record without its padding,
  tests/unit/test_serving_recordio.py). MultiRecord sends as many whole records (frame and
  padding) as fit MaxPayloadInMB. AssembleWith Line ends each answer with a newline, in request
  order, into one ``.out``.

As documented for batch transform ("Troubleshooting batch transform" and TransformOutput): an
input the container cannot answer gets no ``.out`` and fails the job, while the other inputs
are still processed and their outputs kept. A record larger than MaxPayloadInMB fails the job as
well. Every S3, KMS, ECR and logs call is authorized with the model's role first
(aws_calls.Calls.transform_job)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Tuple

import boto3

from image_dataset.recordio import FRAME, LENGTH_MASK, RecordIOReader, padded

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


class PayloadTooLarge(Exception):
    """A record that no request of MaxPayloadInMB can carry: the job fails on it."""


def record_frames(data: bytes) -> List[bytes]:
    """The records of a RecordIO object as they lie in it (frame, data, padding), split on the
    boundaries that the records' own lengths give."""
    reader = RecordIOReader(io.BytesIO(data), "input")
    starts = [offset for offset, _ in reader] + [reader.offset]
    return [data[start:end] for start, end in zip(starts, starts[1:])]


def _unframed(frame: bytes) -> bytes:
    """A single-part record's data without its frame and padding (SingleRecord's payload)."""
    _, lrecord = FRAME.unpack_from(frame, 0)
    if lrecord >> 29:  # a record in parts: sent framed, without the last part's padding
        return frame[: len(frame) - (padded(len(frame)) - len(frame))]
    return frame[8 : 8 + (lrecord & LENGTH_MASK)]


def request_bodies(data: bytes, request: Dict[str, Any]) -> Iterator[bytes]:
    """The request bodies SageMaker makes of one input object; PayloadTooLarge for a record (or
    an object, SplitType None) that does not fit MaxPayloadInMB."""
    limit = request.get("MaxPayloadInMB", 6) << 20
    split = request["TransformInput"].get("SplitType", "None")
    if split == "None":
        if len(data) > limit:
            raise PayloadTooLarge(f"the object is larger than MaxPayloadInMB ({len(data)} bytes)")
        yield data
        return
    assert split == "RecordIO", f"the harness splits RecordIO objects only, not {split}"
    frames = record_frames(data)
    if request.get("BatchStrategy", "MultiRecord") == "SingleRecord":
        for number, frame in enumerate(frames):
            if len(_unframed(frame)) > limit:
                raise PayloadTooLarge(f"record {number} is larger than MaxPayloadInMB")
            yield _unframed(frame)
        return
    batch = b""
    for number, frame in enumerate(frames):
        if len(frame) > limit:
            raise PayloadTooLarge(f"record {number} is larger than MaxPayloadInMB")
        if batch and len(batch) + len(frame) > limit:
            yield batch
            batch = b""
        batch += frame
    if batch:
        yield batch


def assembled(answers: List[bytes], request: Dict[str, Any]) -> bytes:
    """The ``.out`` of one input object from its answers, in request order."""
    if request["TransformOutput"].get("AssembleWith", "None") == "Line":
        return b"".join(answer + b"\n" for answer in answers)
    return b"".join(answers)


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
    failures: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="harness-transform-") as work:
        model = os.path.join(work, "model.tar.gz")
        s3.download_file(*_parts(container["ModelDataUrl"]), model)
        with ModelServer(model) as server:
            for bucket, key, relative in inputs:
                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                answers: List[bytes] = []
                try:
                    for body in request_bodies(data, request):
                        status, _, answer = invoke(server.url, body, content_type, accept=accept)
                        if status != 200:
                            failures[key] = f"the container answered {status}: {answer[:200]!r}"
                            break
                        answers.append(answer)
                except PayloadTooLarge as err:
                    failures[key] = str(err)
                if key in failures:
                    continue
                s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{relative}.out", Body=assembled(answers, request))
    harness.transform_failures.update(failures)
    if failures:
        return {
            **description,
            "TransformJobStatus": "Failed",
            "FailureReason": "ClientError: See job logs for more information",
        }
    return {**description, "TransformJobStatus": "Completed"}
