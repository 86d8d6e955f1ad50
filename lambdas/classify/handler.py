"""POST /classify: API Gateway (Lambda proxy) -> checks -> SageMaker InvokeEndpoint."""

from __future__ import annotations

import functools
import os
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from imgclf_core.environment import ClassifyEnvironment
from imgclf_core.payload_limits import INVOKE_ENDPOINT_PAYLOAD

from .logic import ApiError, endpoint_error, image_request, response

logger = Logger()


@functools.lru_cache(maxsize=1)
def runtime() -> Any:
    """One client per container: connections are reused across invocations."""
    return boto3.client("sagemaker-runtime")


def body_limit(env: ClassifyEnvironment) -> int:
    """The construct's body limit, never above what InvokeEndpoint takes."""
    return min(env.max_body_bytes, INVOKE_ENDPOINT_PAYLOAD)


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    env = ClassifyEnvironment.from_environment(os.environ)
    try:
        request = image_request(event, body_limit(env))
        try:
            result = runtime().invoke_endpoint(EndpointName=env.endpoint_name, **request)
        except ClientError as err:
            error = err.response.get("Error", {})
            raise endpoint_error(
                error.get("Code", ""), error.get("Message", ""), err.response.get("OriginalStatusCode")
            ) from None
        return response(200, result["Body"].read().decode("utf-8"))
    except ApiError as err:
        logger.info("request refused", extra={"status": err.status, "reason": str(err)})
        return response(err.status, {"error": str(err)})
