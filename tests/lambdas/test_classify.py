"""The API's proxy: wrong types and sizes never reach the endpoint; endpoint errors become
statuses a client can act on; answers are the verbose JSON of the inference contract."""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any, Dict
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from imgclf_core.environment import ClassifyEnvironment
from imgclf_core.payload_limits import MAX_BODY_BYTES
from lambdas.classify.logic import ApiError, endpoint_error, image_request
from tests.builders import jpeg

from .conftest import Context

ENVIRONMENT = ClassifyEnvironment(endpoint_name="ep", max_body_bytes=MAX_BODY_BYTES).as_environment()


def event(body: bytes, content_type: str = "image/jpeg") -> Dict[str, Any]:
    return {"headers": {"Content-Type": content_type}, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def test_valid_request_asks_for_verbose_json() -> None:
    request = image_request(event(jpeg()))
    assert request["ContentType"] == "image/jpeg" and request["Accept"] == "application/json;verbose"
    assert request["Body"] == jpeg()


@pytest.mark.parametrize(
    "evt, status",
    [
        (event(b"x", "text/plain"), 415),
        ({"headers": {}, "body": "", "isBase64Encoded": True}, 415),
        (event(b"", "image/png"), 400),
        ({"headers": {"content-type": "image/png"}, "body": "!!notbase64", "isBase64Encoded": True}, 400),
        (event(b"\xff" * 5000), 413),
    ],
    ids=["text", "no-type", "empty", "bad-base64", "too-large"],
)
def test_bad_requests_are_refused_before_the_endpoint(evt: Dict[str, Any], status: int) -> None:
    with pytest.raises(ApiError) as caught:
        image_request(evt, max_bytes=4096)
    assert caught.value.status == status


def test_endpoint_errors_map_to_clear_statuses() -> None:
    assert (
        endpoint_error("ModelError", 'Received client error (400) from model: {"error": "not an image"}', 400).status
        == 400
    )
    assert (
        str(endpoint_error("ModelError", 'Received client error (400): {"error": "not an image"}', 400))
        == "not an image"
    )
    assert endpoint_error("ModelError", "boom", 500).status == 502
    # the TensorFlow Serving container answers a refusing hook with 500; the hook's status wins
    refused = endpoint_error(
        "ModelError",
        'Received server error (500) from primary: {"error": "400 the body is not a JPEG or PNG image"}',
        500,
    )
    assert (refused.status, str(refused)) == (400, "the body is not a JPEG or PNG image")
    assert endpoint_error("ModelError", '{"error": "internal error: KeyError"}', 500).status == 502
    assert endpoint_error("ValidationException", "Endpoint imgclf-dev-endpoint of account x not found.").status == 503
    assert endpoint_error("ThrottlingException", "slow down").status == 429


def test_handler_round_trip() -> None:
    from lambdas.classify import handler as module

    answer = {"probabilities": [0.9, 0.1], "labels": ["cat", "dog"], "predicted_label": "cat", "top_k": []}
    runtime = mock.Mock()
    runtime.invoke_endpoint.return_value = {"Body": io.BytesIO(json.dumps(answer).encode())}
    with mock.patch.object(module, "runtime", lambda: runtime), mock.patch.dict(os.environ, ENVIRONMENT):
        ok = module.handler(event(jpeg()), Context())
        runtime.invoke_endpoint.side_effect = ClientError(
            {"Error": {"Code": "ModelError", "Message": '{"error": "cannot decode"}'}, "OriginalStatusCode": 400},
            "InvokeEndpoint",
        )
        refused = module.handler(event(jpeg()), Context())
        wrong = module.handler(event(b"hello", "text/plain"), Context())
    assert ok["statusCode"] == 200 and json.loads(ok["body"]) == answer
    assert refused["statusCode"] == 400 and json.loads(refused["body"]) == {"error": "cannot decode"}
    assert wrong["statusCode"] == 415 and runtime.invoke_endpoint.call_count == 2


class RealTimeEndpoint:
    """InvokeEndpoint of a real-time endpoint: a body over 6 MiB is refused (ValidationException)."""

    def __init__(self) -> None:
        self.bodies: list = []

    def invoke_endpoint(self, **request: Any) -> Dict[str, Any]:
        if len(request["Body"]) > 6 * 1024 * 1024:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Request payload is too large"}}, "InvokeEndpoint"
            )
        self.bodies.append(len(request["Body"]))
        return {"Body": io.BytesIO(b'{"predicted_label": "cat"}')}


MIB = 1024 * 1024


@pytest.mark.parametrize(
    "configured", [str(1 * MIB), str(4 * MIB), str(8 * MIB)], ids=["below", "the-api-limit", "above-invoke-endpoint"]
)
def test_no_body_size_gets_a_5xx(configured: Any) -> None:
    """At, below and above the promised limit and InvokeEndpoint's 6 MiB, whatever MAX_BODY_BYTES
    says: the proxy answers 200 or a JSON 413, and never sends SageMaker more than it takes."""
    from imgclf_core.payload_limits import INVOKE_ENDPOINT_PAYLOAD
    from lambdas.classify import handler as module

    endpoint = RealTimeEndpoint()
    environment = {"ENDPOINT_NAME": "ep", "MAX_BODY_BYTES": configured}
    limit = min(int(configured), INVOKE_ENDPOINT_PAYLOAD)
    with mock.patch.object(module, "runtime", lambda: endpoint), mock.patch.dict(os.environ, environment):
        for size in sorted({s + d for s in (limit, MAX_BODY_BYTES, INVOKE_ENDPOINT_PAYLOAD) for d in (-1, 0, 1)}):
            answer = module.handler(event(b"\xff" * size), Context())
            assert answer["statusCode"] == (200 if size <= limit else 413), (size, answer)
            if answer["statusCode"] == 413:
                assert f"over the limit of {limit}" in json.loads(answer["body"])["error"]
    assert endpoint.bodies and max(endpoint.bodies) <= INVOKE_ENDPOINT_PAYLOAD
