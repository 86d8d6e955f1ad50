"""The workflow's Evaluate step: read the job's evaluation.json, keep a plain copy for the Model
Registry's metrics, and compare it with the threshold and the approved model."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .logic import approval_status, decide, evaluation_from_output

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


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    job = event["training"]
    bucket, _, key = job["OutputDataConfig"]["S3OutputPath"][len("s3://") :].partition("/")
    output_key = f"{key.rstrip('/')}/{job['TrainingJobName']}/output/output.tar.gz".lstrip("/")
    s3 = boto3.client("s3")
    evaluation = evaluation_from_output(s3.get_object(Bucket=bucket, Key=output_key)["Body"].read())
    evaluation_key = f"evaluations/{job['TrainingJobName']}/evaluation.json"
    s3.put_object(
        Bucket=bucket, Key=evaluation_key, Body=json.dumps(evaluation).encode(), ContentType="application/json"
    )
    current = approved_metrics(boto3.client("sagemaker"), os.environ["MODEL_PACKAGE_GROUP"])
    decision = decide(
        evaluation, float(os.environ["ACCURACY_THRESHOLD"]), current, float(os.environ.get("MAX_REGRESSION", "0"))
    )
    status = approval_status(decision, os.environ["APPROVAL_MODE"])
    logger.info("gate", extra={"status": status, "reason": decision.reason})
    return {
        "status": status,
        "reason": decision.reason,
        "accuracy": f"{float(evaluation.get('accuracy', 0.0)):.4f}",
        "evaluation_uri": f"s3://{bucket}/{evaluation_key}",
        "approval": os.environ["APPROVAL_MODE"],
    }
