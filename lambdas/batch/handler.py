"""The batch workflow's functions: ``start`` (an uploaded ``batch.json`` -> the workflow, or an
alert), ``plan`` (the model package, the inputs' manifest) and ``join`` (the transform's outputs
-> ``predictions.jsonl``)."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from imgclf_core import batch as rules
from imgclf_core.batch_request import BatchRequest, Rejected, execution_name, parse_request, request_name
from imgclf_core.environment import BatchJoinEnvironment, BatchPlanEnvironment, BatchTriggerEnvironment
from lambdas.s3_events import uploaded_objects

from .logic import (
    join as join_lines,
)
from .logic import (
    manifest,
    output_relatives,
    package_arn,
    read_manifest,
    report,
)
from .logic import (
    plan as plan_batch,
)

logger = Logger()


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


@logger.inject_lambda_context
def plan(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    """The transform job of ``event["request"]`` (start's BatchRequest): its model package, names
    and locations; writes the inputs' manifest. BatchRequestInvalid for a request that cannot run."""
    env = BatchPlanEnvironment.from_environment(os.environ)
    request = BatchRequest(**event["request"])
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
        found, relatives = plan_batch(
            request, event["execution"], env.resource_prefix, env.artifact_bucket, package, keys
        )
    except Rejected as err:
        raise BatchRequestInvalid(f"s3://{request.bucket}/{request.key}: {err}") from None
    body = manifest(request.bucket, found["input_prefix"], relatives)
    bucket, _, key = found["manifest_uri"][5:].partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    logger.info("batch planned", extra={k: v for k, v in found.items() if k != "input_prefix"})
    return found


def _failure(error: Any) -> Optional[str]:
    """The transform job's FailureReason from a Catch's error (its Cause is the job's description)."""
    if not isinstance(error, dict):
        return None
    cause = str(error.get("Cause") or error.get("Error") or "failed")
    try:
        described = json.loads(cause)
    except ValueError:
        return cause
    return str(described.get("FailureReason", cause)) if isinstance(described, dict) else cause


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@logger.inject_lambda_context
def join(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    """``predictions.jsonl`` from the transform's ``.out`` objects, in the manifest's order, with
    an error line for each input without one (``event["transform_error"]``: the job failed)."""
    env = BatchJoinEnvironment.from_environment(os.environ)
    found = event["plan"]
    s3 = boto3.client("s3")
    bucket = env.artifact_bucket
    manifest_key = found["manifest_uri"][len(f"s3://{bucket}/") :]
    _, relatives = read_manifest(_read(s3, bucket, manifest_key))
    output_prefix = found["output_uri"][len(f"s3://{bucket}/") :]
    existing = output_relatives(output_prefix, _list_keys(s3, bucket, output_prefix))
    outputs = {relative: _read(s3, bucket, existing[relative]) for relative in relatives if relative in existing}
    failure = _failure(event.get("transform_error"))
    lines = join_lines(relatives, outputs, failure[:300] if failure else None)
    body = "".join(rules.dumps(line) for line in lines).encode("utf-8")
    s3.put_object(
        Bucket=bucket,
        Key=found["predictions_uri"][len(f"s3://{bucket}/") :],
        Body=body,
        ContentType="application/jsonlines",
    )
    result = report(found, lines, failure)
    logger.info("batch joined", extra=result)
    return result
