"""The workflow's Evaluate step: read the job's evaluation.json, keep a plain copy for the Model
Registry's metrics, and compare it with the threshold and the approved model; keep a copy of the
job's baseline.json, when it made one, for the Model Registry's drift check baselines."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgclf_core.environment import GateEnvironment
from imgclf_core.gate import approval_status, decide
from imgclf_core.s3_layout import baseline_key, s3_uri
from imgclf_core.s3_layout import evaluation_key as evaluation_key_of

from .logic import UnreadableBaseline, baseline_from_output, evaluation_from_output

logger = Logger()


def approved_metrics(sagemaker: Any, group: str) -> Optional[Dict[str, Any]]:
    """The metrics of the newest approved model package of ``group``, if any."""
    found = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    if not found:
        return None
    package = sagemaker.describe_model_package(ModelPackageName=found[0]["ModelPackageArn"])
    accuracy = package.get("CustomerMetadataProperties", {}).get("accuracy")
    return {"accuracy": float(accuracy), "model_package_arn": found[0]["ModelPackageArn"]} if accuracy else None


def copy_baseline(s3: Any, bucket: str, job: str, output_tar_gz: bytes) -> Optional[str]:
    """Copy the job's baseline.json beside its evaluation; its S3 URI, or None where the job made
    none or left one that cannot be read (a warning: the model is registered without it, as a
    model is exported without one, image_training.baseline.for_model)."""
    try:
        baseline = baseline_from_output(output_tar_gz)
    except UnreadableBaseline as err:
        logger.warning("baseline not recorded", extra={"job": job, "reason": str(err)})
        return None
    if baseline is None:
        logger.info("baseline not recorded", extra={"job": job, "reason": "the job made no baseline.json"})
        return None
    key = baseline_key(job)
    s3.put_object(Bucket=bucket, Key=key, Body=baseline, ContentType="application/json")
    return s3_uri(bucket, key)


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    job = event["training"]
    bucket, _, key = job["OutputDataConfig"]["S3OutputPath"][len("s3://") :].partition("/")
    output_key = f"{key.rstrip('/')}/{job['TrainingJobName']}/output/output.tar.gz".lstrip("/")
    s3 = boto3.client("s3")
    output = s3.get_object(Bucket=bucket, Key=output_key)["Body"].read()
    evaluation = evaluation_from_output(output)
    evaluation_key = evaluation_key_of(job["TrainingJobName"])
    s3.put_object(
        Bucket=bucket, Key=evaluation_key, Body=json.dumps(evaluation).encode(), ContentType="application/json"
    )
    baseline_uri = copy_baseline(s3, bucket, job["TrainingJobName"], output)
    env = GateEnvironment.from_environment(os.environ)
    current = approved_metrics(boto3.client("sagemaker"), env.model_package_group)
    decision = decide(evaluation, env.accuracy_threshold, current, env.max_regression)
    status = approval_status(decision, env.approval_mode)
    logger.info("gate", extra={"status": status, "reason": decision.reason})
    return {
        "status": status,
        "reason": decision.reason,
        "accuracy": f"{float(evaluation.get('accuracy', 0.0)):.4f}",
        "evaluation_uri": s3_uri(bucket, evaluation_key),
        "baseline_uri": baseline_uri,  # None: RegisterModelWithoutBaseline
        "approval": env.approval_mode,
    }
