"""The workflow's Validate steps. ``handler`` validates the dataset in S3 (ranged reads) and
writes the report beside it; a dataset above one shard's work is planned instead, for
``check_shard`` under a Distributed Map and ``merge_shards`` after it. Each step that ends a
validation returns the summary the next states branch on."""

from __future__ import annotations

import json
import os
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgclf_core.environment import ValidateEnvironment
from imgclf_core.s3_layout import s3_uri, validation_work

from .logic import REPORT_NAME, ShardLimits, check_shard, merge_shards, plan_fan_out, summary, validate
from .s3_store import S3Store, WorkArea

logger = Logger()


def _dataset_store(s3: Any, event: Dict[str, Any]) -> S3Store:
    return S3Store(s3, event["dataset"]["bucket"], event["dataset"]["prefix"])


def _publish(s3: Any, event: Dict[str, Any], report: Dict[str, Any], requests: int) -> Dict[str, Any]:
    dataset = event["dataset"]
    key = dataset["prefix"] + REPORT_NAME
    s3.put_object(
        Bucket=dataset["bucket"],
        Key=key,
        Body=json.dumps(report, indent=2).encode(),
        ContentType="application/json",
    )
    result = summary(report, event["backend"], s3_uri(dataset["bucket"], key))
    logger.info("validated", extra={"valid": result["valid"], "errors": result["error_count"], "reads": requests})
    return result


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    s3 = boto3.client("s3")
    store = _dataset_store(s3, event)
    env = ValidateEnvironment.from_environment(os.environ)
    work = WorkArea(s3, env.work_bucket, validation_work(event["execution"]))
    limits = ShardLimits(env.shard_bytes, env.shard_images)
    fan_out = plan_fan_out(store, work, event, limits)
    if fan_out is not None:
        logger.info("planned", extra={"shards": fan_out["shards"], "reads": store.requests})
        return fan_out
    report = validate(store, event["backend"], event["hyperparameters"], event["dataset"].get("descriptor", {}))
    return _publish(s3, event, report, store.requests)


@logger.inject_lambda_context
def shard_handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    s3 = boto3.client("s3")
    store = _dataset_store(s3, event)
    result = check_shard(store, WorkArea(s3, **_work(event)), event, event["shard"])
    logger.info("shard checked", extra={"shard": event["shard"], "reads": store.requests})
    return result


@logger.inject_lambda_context
def merge_handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    s3 = boto3.client("s3")
    store = _dataset_store(s3, event)
    report = merge_shards(store, WorkArea(s3, **_work(event)), event)
    return _publish(s3, event, report, store.requests)


def _work(event: Dict[str, Any]) -> Dict[str, str]:
    return {"bucket": event["work"]["bucket"], "prefix": event["work"]["prefix"]}
