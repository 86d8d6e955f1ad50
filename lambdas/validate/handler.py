"""The workflow's Validate step: validate the dataset in S3 (ranged reads), write the report
beside it, return the summary the next states branch on."""

from __future__ import annotations

import json
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .logic import REPORT_NAME, summary, validate
from .s3_store import S3Store

logger = Logger()


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    dataset = event["dataset"]
    s3 = boto3.client("s3")
    store = S3Store(s3, dataset["bucket"], dataset["prefix"])
    report = validate(store, event["backend"], event["hyperparameters"], dataset.get("descriptor", {}))
    key = dataset["prefix"] + REPORT_NAME
    s3.put_object(
        Bucket=dataset["bucket"],
        Key=key,
        Body=json.dumps(report, indent=2).encode(),
        ContentType="application/json",
    )
    result = summary(report, event["backend"], f"s3://{dataset['bucket']}/{key}")
    logger.info("validated", extra={"valid": result["valid"], "errors": result["error_count"], "reads": store.requests})
    return result
