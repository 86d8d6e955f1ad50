"""The batch workflow's functions: ``start`` (an uploaded ``batch.json`` -> the workflow, or an
alert), ``plan`` (the model package, the inputs' manifest, a .rec's scan) and ``join`` (the
transform's outputs -> ``predictions.jsonl``)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from image_dataset.layout import RECORDIO
from imgclf_core import batch as rules
from imgclf_core.batch_request import BatchRequest, Rejected, execution_name, parse_request, request_name
from imgclf_core.environment import BatchJoinEnvironment, BatchPlanEnvironment, BatchTriggerEnvironment
from lambdas.s3_events import uploaded_objects

from .logic import (
    RecordJoin,
    count_records,
    manifest,
    output_lines,
    output_relatives,
    package_arn,
    read_manifest,
    report,
)
from .logic import (
    join as join_lines,
)
from .logic import (
    plan as plan_batch,
)

logger = Logger()
SCAN_BLOCK = 8 << 20  # bytes per ranged GET of a .rec's scan (the scanner's chunk)
SPOOL_BYTES = 64 << 20  # predictions.jsonl is kept in memory up to this, then in /tmp


class BatchRequestInvalid(Exception):
    """A request that cannot run (no such model, no images); the workflow's alert says why."""


@logger.inject_lambda_context
def start(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    env = BatchTriggerEnvironment.from_environment(os.environ)
    s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
    started, skipped = [], []
    for bucket, key in uploaded_objects(event):
        try:
            if request_name(key) is None:
                skipped.append(key)
                continue
            found = s3.get_object(Bucket=bucket, Key=key)
            request = parse_request(bucket, key, found["Body"].read())
        except Rejected as err:
            logger.warning("batch request rejected", extra={"reason": str(err)})
            boto3.client("sns").publish(
                TopicArn=env.alert_topic_arn,
                Subject="imgclf: batch request rejected",
                Message=f"s3://{bucket}/{key}: {err}",
            )
            skipped.append(key)
            continue
        name = execution_name(request.name, str(found.get("ETag", "")))
        try:
            sfn.start_execution(
                stateMachineArn=env.state_machine_arn, name=name, input=json.dumps({"request": request.as_dict()})
            )
        except sfn.exceptions.ExecutionAlreadyExists:
            logger.info("already started: a repeated event", extra={"execution": name})
        started.append(name)
    return {"executions": started, "skipped": skipped}


def _list_keys(s3: Any, bucket: str, prefix: str) -> List[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _describe_version(sagemaker: Any, function_arn: str, group: str, version: int) -> Optional[Dict[str, Any]]:
    """DescribeModelPackage of a version of ``group``, in the function's partition, region and account."""
    partition, region, account = function_arn.split(":")[1], function_arn.split(":")[3], function_arn.split(":")[4]
    arn = f"arn:{partition}:sagemaker:{region}:{account}:model-package/{group}/{version}"
    try:
        return dict(sagemaker.describe_model_package(ModelPackageName=arn))
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise


def _latest_approved(sagemaker: Any, group: str) -> Optional[str]:
    found = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    return str(found[0]["ModelPackageArn"]) if found else None


class RangedObject:
    """``read_at(offset, length)`` of one S3 object by ranged GETs, each reading ahead to a whole
    scan block, so that the scanner's small reads near its position need no request of their own."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int, block: int = SCAN_BLOCK) -> None:
        self.s3, self.bucket, self.key, self.size, self.block = s3, bucket, key, size, block
        self._start, self._data = 0, b""

    def read_at(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        if not (self._start <= offset and end <= self._start + len(self._data)):
            stop = max(end, min(offset + self.block, self.size))
            found = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={offset}-{stop - 1}")
            self._start, self._data = offset, found["Body"].read()
        return self._data[offset - self._start : end - self._start]


def _records(s3: Any, request: BatchRequest, max_payload_mb: int) -> int:
    """The number of records of the request's .rec, after logic.count_records' checks."""
    size = int(s3.head_object(Bucket=request.bucket, Key=request.input_key)["ContentLength"])
    name = request.input_key.rsplit("/", 1)[-1]
    return count_records(RangedObject(s3, request.bucket, request.input_key, size).read_at, size, name, max_payload_mb)


@logger.inject_lambda_context
def plan(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    """The transform job of ``event["request"]`` (start's BatchRequest): its model package, names,
    locations and settings (``event["batch"]``: the stage's ``batch_strategy`` and
    ``max_payload_mb``); writes the inputs' manifest. BatchRequestInvalid for a request that
    cannot run."""
    env = BatchPlanEnvironment.from_environment(os.environ)
    request = BatchRequest(**event["request"])
    settings = event["batch"]
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    group = env.model_package_group
    try:
        if request.bucket != env.datasets_bucket:
            raise Rejected(f"the input must be in {env.datasets_bucket}")
        package = package_arn(
            group,
            request.model_package,
            lambda version: _describe_version(sagemaker, context.invoked_function_arn, group, version),
            lambda: _latest_approved(sagemaker, group),
        )
        keys = _list_keys(s3, request.bucket, request.input_key)
        records = None
        if request.kind == RECORDIO and request.input_key in keys:
            records = _records(s3, request, int(settings["max_payload_mb"]))
        found, relatives = plan_batch(
            request,
            event["execution"],
            env.resource_prefix,
            env.artifact_bucket,
            package,
            keys,
            str(settings["batch_strategy"]),
            records,
        )
    except Rejected as err:
        raise BatchRequestInvalid(f"s3://{request.bucket}/{request.key}: {err}") from None
    body = manifest(request.bucket, found["input_prefix"], relatives)
    bucket, _, key = found["manifest_uri"][5:].partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    logger.info("batch planned", extra={k: v for k, v in found.items() if k != "input_prefix"})
    return found


def _failure(error: Any) -> Optional[str]:
    """The transform job's FailureReason from a Catch's error (its Cause is the job's description);
    None for a job that succeeded (TransformSucceeded leaves ``{}``)."""
    if not isinstance(error, dict) or not error:
        return None
    cause = str(error.get("Cause") or error.get("Error") or "failed")
    try:
        described = json.loads(cause)
    except ValueError:
        return cause
    return str(described.get("FailureReason", cause)) if isinstance(described, dict) else cause


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _chunks(s3: Any, bucket: str, key: str) -> Iterator[bytes]:
    """An object's bytes as they arrive (a .rec's .out may be larger than the function's memory)."""
    yield from s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20)


def _written(lines: Iterable[Dict[str, Any]], out: IO[bytes]) -> Iterator[Dict[str, Any]]:
    for line in lines:
        out.write(rules.dumps(line).encode("utf-8"))
        yield line


@logger.inject_lambda_context
def join(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    """``predictions.jsonl`` from the transform's ``.out`` objects, in the manifest's order, with
    an error line for each input without one (``event["transform_error"]``: the job failed). A
    .rec's ``.out`` holds a line per record, read as it streams in."""
    env = BatchJoinEnvironment.from_environment(os.environ)
    found = event["plan"]
    s3 = boto3.client("s3")
    bucket = env.artifact_bucket
    manifest_key = found["manifest_uri"][len(f"s3://{bucket}/") :]
    _, relatives = read_manifest(_read(s3, bucket, manifest_key))
    output_prefix = found["output_uri"][len(f"s3://{bucket}/") :]
    existing = output_relatives(output_prefix, _list_keys(s3, bucket, output_prefix))
    reason = _failure(event.get("transform_error"))
    failure = reason[:300] if reason else None  # in each line
    records: Optional[RecordJoin] = None
    if found.get("input_kind") == RECORDIO:
        (relative,) = relatives
        records = RecordJoin(relative, int(found["inputs"]))
        out = existing.get(relative)
        lines: Iterable[Dict[str, Any]] = records.lines(
            output_lines(_chunks(s3, bucket, out)) if out else None, failure
        )
    else:
        outputs = {relative: _read(s3, bucket, existing[relative]) for relative in relatives if relative in existing}
        lines = join_lines(relatives, outputs, failure)
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as body:
        counts = rules.tally(_written(lines, body), int(found.get("skipped", 0)))
        body.seek(0)
        s3.put_object(
            Bucket=bucket,
            Key=found["predictions_uri"][len(f"s3://{bucket}/") :],
            Body=body,
            ContentType="application/jsonlines",
        )
    problem = records.problem if records is not None else None
    result = report(found, counts, "; ".join(part for part in (reason, problem) if part) or None)
    logger.info("batch joined", extra=result)
    return result
