"""The scheduled monitor (EventBridge Scheduler, every ``monitoring.every_hours``): the window of
the endpoint's captured traffic that ended at the last whole hour, against the baseline.json of
the model the endpoint serves; writes monitor.json and its page monitor.html (the page of
``imgclf monitor``, image_training.monitor_page, its charts inline) under
``monitoring/<endpoint>/<until>/`` and publishes the CloudWatch metrics the drift alarm and the
dashboard read. A window without captures (or without an endpoint) publishes Records=0 and
succeeds."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, Optional

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from image_training import monitor_page
from imgclf_core import capture as rules
from imgclf_core import s3_layout
from imgclf_core import traffic as shared
from imgclf_core.environment import MonitorEnvironment

from . import logic

logger = Logger()
MAX_LABEL_OBJECTS = 1000  # label files read per run (the newest are matched first)


def _when(event: Dict[str, Any]) -> datetime.datetime:
    """The run's time: the schedule's ``<aws.scheduler.scheduled-time>``, else now."""
    text = event.get("time") if isinstance(event, dict) else None
    return shared.parse_time(str(text)) if text else datetime.datetime.now(datetime.UTC)


def _live_model_data(sagemaker: Any, endpoint: str) -> Optional[str]:
    """DescribeEndpoint -> DescribeEndpointConfig -> DescribeModel (-> DescribeModelPackage):
    the model.tar.gz the endpoint serves; None when there is no endpoint."""
    try:
        found = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise
    config = sagemaker.describe_endpoint_config(EndpointConfigName=logic.config_name(found))
    model = sagemaker.describe_model(ModelName=logic.model_name(config))
    kind, source = logic.model_source(model)
    if kind == "url":
        return source
    return logic.package_model_data(sagemaker.describe_model_package(ModelPackageName=source))


def _keys(s3: Any, bucket: str, prefix: str) -> Any:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _read_traffic(s3: Any, env: MonitorEnvironment, base: Dict[str, Any], window: shared.Window) -> shared.Traffic:
    """The capture files of the hours the window covers (one listing per hour folder)."""
    traffic = logic.new_traffic(base)
    for hour in shared.window_hours(window):
        prefix = s3_layout.capture_hour_prefix(env.endpoint_name, rules.capture_prefix(env.endpoint_name, hour))
        for item in _keys(s3, env.artifact_bucket, prefix):
            body = s3.get_object(Bucket=env.artifact_bucket, Key=item["Key"])["Body"].read()
            traffic.add_lines(item["Key"], body.decode("utf-8", "replace").splitlines(), window)
    return traffic


def _read_labels(s3: Any, env: MonitorEnvironment, traffic: shared.Traffic, window: shared.Window) -> Dict[str, Any]:
    """Label files under ``feedback/<endpoint>/`` uploaded since the window began."""
    labels = shared.Labels(traffic)
    found = [
        item
        for item in _keys(s3, env.feedback_bucket, s3_layout.feedback_prefix(env.endpoint_name))
        if window.since is None or item["LastModified"] >= window.since
    ]
    found.sort(key=lambda item: item["LastModified"], reverse=True)
    for item in found[:MAX_LABEL_OBJECTS]:
        body = s3.get_object(Bucket=env.feedback_bucket, Key=item["Key"])["Body"].read()
        labels.add_lines(item["Key"], body.decode("utf-8", "replace").splitlines())
    return labels.summary()


def _publish(env: MonitorEnvironment, report: Optional[Dict[str, Any]], when: datetime.datetime) -> None:
    boto3.client("cloudwatch").put_metric_data(
        Namespace=env.metric_namespace, MetricData=logic.metrics(env.endpoint_name, report, when)
    )


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    env = MonitorEnvironment.from_environment(os.environ)
    window = shared.last_hours(_when(event), env.window_hours)
    assert window.until is not None
    s3 = boto3.client("s3")
    model_data = _live_model_data(boto3.client("sagemaker"), env.endpoint_name)
    if model_data is None:
        logger.info("no endpoint: nothing to monitor", extra={"endpoint": env.endpoint_name})
        _publish(env, None, window.until)
        return {"records": 0, "endpoint": None}
    bucket, key = logic.s3_parts(model_data)
    base = logic.read_baseline(s3.get_object(Bucket=bucket, Key=key)["Body"], model_data)
    traffic = _read_traffic(s3, env, base, window)
    if not traffic.records:
        logger.info("no captures in the window", extra={"since": shared.iso(window.since)})
        _publish(env, None, window.until)
        return {"records": 0, "problems": traffic.problem_count}
    report = logic.compare(base, traffic, _read_labels(s3, env, traffic, window), window)
    report["model_data"] = model_data
    folder = logic.report_folder_time(window.until)
    report_key = s3_layout.monitoring_key(env.endpoint_name, folder)
    page_key = s3_layout.monitoring_key(env.endpoint_name, folder, monitor_page.PAGE_NAME)
    page = monitor_page.render(report).encode("utf-8")  # rendered before any write: an error writes neither
    s3.put_object(
        Bucket=env.artifact_bucket,
        Key=report_key,
        Body=json.dumps(report, indent=1).encode("utf-8"),
        ContentType="application/json",
    )
    s3.put_object(Bucket=env.artifact_bucket, Key=page_key, Body=page, ContentType=monitor_page.CONTENT_TYPE)
    _publish(env, report, window.until)
    logger.info("monitored", extra={"drift": report["drift_detected"], "significant": report["significant"]})
    return {
        "records": traffic.records,
        "drift_detected": report["drift_detected"],
        "significant": report["significant"],
        "report": s3_layout.s3_uri(env.artifact_bucket, report_key),
        "page": s3_layout.s3_uri(env.artifact_bucket, page_key),
    }
