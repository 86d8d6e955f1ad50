"""The API's request and error rules, checked before a request reaches the endpoint: image
content types only (415), bodies within the limit (413), and the endpoint's errors turned into
statuses a client can act on. Responses are the verbose JSON of the inference contract.

The size promise (docs/deploy.md, "Classify images"): up to MAX_BODY_BYTES an image reaches the
endpoint; a larger body gets a 413 here, or from API Gateway when Lambda cannot take the event
(its REQUEST_TOO_LARGE gateway response, infra/classify_api.py) or the body is over API
Gateway's own quota."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Dict, Mapping, Optional

from image_training.serving import IMAGE_TYPES, VERBOSE, media_type
from imgclf_core.payload_limits import MAX_BODY_BYTES


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def header(headers: Optional[Mapping[str, str]], name: str) -> Optional[str]:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def image_request(event: Mapping[str, Any], max_bytes: int = MAX_BODY_BYTES) -> Dict[str, Any]:
    """The body and content type of a valid request, or :class:`ApiError`."""
    content_type = header(event.get("headers"), "content-type")
    if media_type(content_type) not in IMAGE_TYPES:
        raise ApiError(415, f"content type {content_type!r} is not supported; send {', '.join(IMAGE_TYPES)}")
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        if len(raw) > (max_bytes + 2) // 3 * 4:
            raise ApiError(413, f"the image is over the limit of {max_bytes} bytes")
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "the body is not valid base64") from None
    else:  # a binary type API Gateway did not encode: a client error, not a text image
        body = raw.encode("utf-8", "surrogateescape")
    if not body:
        raise ApiError(400, "the body is empty; send the image bytes")
    if len(body) > max_bytes:
        raise ApiError(413, f"the image has {len(body)} bytes, over the limit of {max_bytes}")
    return {"Body": body, "ContentType": media_type(content_type), "Accept": VERBOSE}


def endpoint_error(code: str, message: str, original_status: Optional[int] = None) -> ApiError:
    """InvokeEndpoint's error as an API status: the model's own 4xx passes through with its
    message, a model fault is 502, a missing endpoint 503, throttling 429."""
    if code == "ModelError":
        text = _model_message(message)
        if original_status is not None and 400 <= original_status < 500:
            return ApiError(original_status, text)
        refused = re.match(r"(4\d\d) (.+)", text, re.DOTALL)
        if refused:  # the TensorFlow Serving container answers a refusing hook with 500
            return ApiError(int(refused.group(1)), refused.group(2))
        return ApiError(502, "the model failed to answer; see the endpoint's logs")
    if code == "ValidationException" and "not found" in message.lower():
        return ApiError(503, "no model is deployed yet")
    if code in ("ThrottlingException", "ServiceUnavailable", "ModelNotReadyException"):
        return ApiError(429 if code == "ThrottlingException" else 503, "the endpoint is busy; retry with backoff")
    return ApiError(502, f"the endpoint call failed: {code}")


def _model_message(message: str) -> str:
    """The model server's own error text out of InvokeEndpoint's ModelError message."""
    start = message.find("{")
    if start >= 0:
        try:
            return str(json.loads(message[start : message.rindex("}") + 1]).get("error", message))
        except ValueError:
            pass
    return message


def response(status: int, payload: Any) -> Dict[str, Any]:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": body}
