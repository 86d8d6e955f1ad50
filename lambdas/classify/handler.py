"""POST /classify: API Gateway (Lambda proxy) -> checks -> SageMaker InvokeEndpoint."""

from __future__ import annotations

import functools
import os
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from .logic import INVOKE_ENDPOINT_PAYLOAD, MAX_BODY_BYTES, ApiError, endpoint_error, image_request, response

logger = Logger()


@functools.lru_cache(maxsize=1)
def runtime() -> Any:
    """One client per container: connections are reused across invocations."""
    return boto3.client("sagemaker-runtime")


def body_limit() -> int:
    """MAX_BODY_BYTES from the environment, never above what InvokeEndpoint takes."""
    return min(int(os.environ.get("MAX_BODY_BYTES", MAX_BODY_BYTES)), INVOKE_ENDPOINT_PAYLOAD)


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    try:
        request = image_request(event, body_limit())
        try:
            result = runtime().invoke_endpoint(EndpointName=os.environ["ENDPOINT_NAME"], **request)
        except ClientError as err:
            error = err.response.get("Error", {})
            raise endpoint_error(
                error.get("Code", ""), error.get("Message", ""), err.response.get("OriginalStatusCode")
            ) from None
        return response(200, result["Body"].read().decode("utf-8"))
    except ApiError as err:
        logger.info("request refused", extra={"status": err.status, "reason": str(err)})
        return response(err.status, {"error": str(err)})
