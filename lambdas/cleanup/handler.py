"""A CloudFormation custom resource: on stack deletion, remove the endpoint, the endpoint configs
and models that the deployment workflow created, and the versions in the Model Package Group.
Create and Update do nothing."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgclf_core.environment import CleanupEnvironment

from .logic import remove_deployments

logger = Logger()


def send(event: Dict[str, Any], status: str, reason: str, data: Dict[str, Any]) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": event.get("PhysicalResourceId") or os.environ.get("RESOURCE_PREFIX", "imgclf"),
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - CloudFormation's pre-signed URL
        pass


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> None:
    try:
        data: Dict[str, Any] = {}
        if event["RequestType"] == "Delete":
            env = CleanupEnvironment.from_environment(os.environ)
            removed = remove_deployments(
                boto3.client("sagemaker"),
                boto3.client("application-autoscaling"),
                env.endpoint_name,
                env.resource_prefix,
                group=env.model_package_group,
            )
            logger.info("removed", extra=removed)
            data = {k: str(len(v)) for k, v in removed.items()}  # counts: a response is at most 4 KB
        send(event, "SUCCESS", "ok", data)
    except Exception as err:  # noqa: BLE001 - CloudFormation must hear back, or it waits an hour
        logger.exception("cleanup failed")
        send(event, "FAILED", f"{type(err).__name__}: {err}", {})
