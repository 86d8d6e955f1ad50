"""The deployment workflow's Plan step."""

from __future__ import annotations

import os
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from imgclf_core.environment import DeployEnvironment

from .logic import deployment_plan

logger = Logger()


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    env = DeployEnvironment.from_environment(os.environ)
    sagemaker = boto3.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=event["model_package_arn"])
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=env.endpoint_name)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ValidationException":
            raise
        endpoint = None
    plan = deployment_plan(package, endpoint, env.resource_prefix, event["run_id"])
    logger.info("deployment planned", extra=plan)
    return plan
