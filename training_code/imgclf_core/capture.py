"""Endpoint data capture as SageMaker writes it (DataCaptureConfig), so that one monitor reads
the captures of ``imgclf serve --capture`` and those of a real endpoint alike.

A record is one JSON line::

    {"captureData": {
        "endpointInput": {"observedContentType": "image/png", "mode": "INPUT",
                          "data": "<base64>", "encoding": "BASE64"},
        "endpointOutput": {"observedContentType": "application/json;verbose", "mode": "OUTPUT",
                           "data": "{\\"probabilities\\": ...}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<X-Amzn-SageMaker-Inference-Id>",
                       "inferenceTime": "2026-11-30T23:18:31Z"},
     "eventVersion": "0"}

JSON payloads are kept as text (encoding JSON), CSV as text (CSV), anything else (images) as
BASE64. Files lie as in S3: ``<prefix>/<endpoint>/<variant>/YYYY/MM/DD/HH/<mm-ss-SSS>-<id>.jsonl``
(UTC). Standard library only, Python 3.8.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from typing import Any, Dict, NamedTuple, Optional, Sequence

EVENT_VERSION = "0"
INPUT, OUTPUT = "INPUT", "OUTPUT"
BASE64, JSON, CSV = "BASE64", "JSON", "CSV"
DEFAULT_VARIANT = "AllTraffic"
LOCAL_ENDPOINT = "imgclf-local"  # the endpoint name of ``imgclf serve``'s captures, unless named
# CaptureContentTypeHeader's defaults: these media types are captured as text
JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")
CSV_CONTENT_TYPES = ("text/csv",)
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
_ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # CreateEndpoint's EndpointName


def check_endpoint_name(name: str) -> str:
    """``name`` when SageMaker would accept it as an endpoint name; ValueError otherwise."""
    if not _ENDPOINT_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an endpoint name: 1-63 letters, digits and hyphens, not at either end")
    return name


def check_percent(percent: float) -> float:
    """A sampling percentage (InitialSamplingPercentage): 0 to 100; ValueError otherwise."""
    if not 0 <= percent <= 100:
        raise ValueError(f"{percent:g} is not a percentage from 0 to 100")
    return percent


def sampled(percent: float, draw: float) -> bool:
    """Whether a request is captured, for a uniform ``draw`` in [0, 1)."""
    return draw * 100 < percent


def _media_type(content_type: Optional[str]) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def encoding_of(
    content_type: Optional[str],
    json_types: Sequence[str] = JSON_CONTENT_TYPES,
    csv_types: Sequence[str] = CSV_CONTENT_TYPES,
) -> str:
    """How a payload of ``content_type`` is captured: JSON, CSV or BASE64."""
    media = _media_type(content_type)
    if media in json_types:
        return JSON
    if media in csv_types:
        return CSV
    return BASE64


def payload(data: bytes, content_type: Optional[str], mode: str) -> Dict[str, str]:
    """One side of an exchange (``mode`` INPUT or OUTPUT) as captured; text that is not UTF-8
    is kept as BASE64, so that every byte survives."""
    encoding = encoding_of(content_type)
    if encoding != BASE64:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = BASE64
    if encoding == BASE64:
        text = base64.b64encode(data).decode("ascii")
    return {"observedContentType": content_type or "", "mode": mode, "data": text, "encoding": encoding}


def inference_time(when: datetime.datetime) -> str:
    """``2026-11-30T23:18:31Z``: UTC, to the second, as SageMaker writes ``inferenceTime``."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(when: datetime.datetime) -> datetime.datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)


def record(
    request: bytes,
    request_type: Optional[str],
    response: bytes,
    response_type: Optional[str],
    event_id: str,
    when: datetime.datetime,
    inference_id: Optional[str] = None,
) -> Dict[str, Any]:
    """The capture record of one invocation."""
    metadata = {"eventId": event_id}
    if inference_id:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = inference_time(when)
    return {
        "captureData": {
            "endpointInput": payload(request, request_type, INPUT),
            "endpointOutput": payload(response, response_type, OUTPUT),
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


def dumps(capture: Dict[str, Any]) -> str:
    """A record as one line of a capture file, newline included."""
    return json.dumps(capture, separators=(",", ":")) + "\n"


def capture_prefix(endpoint: str, when: datetime.datetime, variant: str = DEFAULT_VARIANT) -> str:
    """The hour's folder: ``<endpoint>/<variant>/YYYY/MM/DD/HH`` (UTC)."""
    return "{}/{}/{}".format(check_endpoint_name(endpoint), variant, _utc(when).strftime("%Y/%m/%d/%H"))


def capture_key(
    endpoint: str, when: datetime.datetime, file_id: str, variant: str = DEFAULT_VARIANT, prefix: str = ""
) -> str:
    """A capture file's key below the capture destination ``prefix``:
    ``<prefix>/<endpoint>/<variant>/YYYY/MM/DD/HH/<mm>-<ss>-<SSS>-<file_id>.jsonl``."""
    at = _utc(when)
    name = f"{at:%M-%S}-{at.microsecond // 1000:03d}-{file_id}.jsonl"
    key = capture_prefix(endpoint, at, variant) + "/" + name
    return prefix.rstrip("/") + "/" + key if prefix.strip("/") else key


class Captured(NamedTuple):
    """One captured invocation, read back. A side that was not captured (CaptureOptions with
    only Input or only Output) is None, with an empty content type."""

    request: Optional[bytes]
    request_type: str
    response: Optional[bytes]
    response_type: str
    event_id: str
    inference_time: str
    inference_id: Optional[str]

    def response_json(self) -> Any:
        """The answer, parsed (ValueError when there is none or it is not JSON)."""
        if self.response is None:
            raise ValueError("the response was not captured")
        return json.loads(self.response.decode("utf-8"))


def _payload_bytes(side: Any, mode: str) -> Optional[bytes]:
    if side is None:
        return None
    if not isinstance(side, dict) or side.get("mode", mode) != mode or not isinstance(side.get("data"), str):
        raise ValueError(f"no {mode} payload")
    encoding = side.get("encoding")
    if encoding == BASE64:
        try:
            return base64.b64decode(side["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the {mode} data is not base64") from None
    if encoding in (JSON, CSV):
        return str(side["data"]).encode("utf-8")
    raise ValueError(f"unknown {mode} encoding {encoding!r}")


def _content_type(side: Any) -> str:
    return str(side.get("observedContentType", "")) if isinstance(side, dict) else ""


def parse_record(line: str) -> Captured:
    """A capture record (one line of a capture file) read back; ValueError for anything else."""
    try:
        data = json.loads(line)
    except ValueError as err:
        raise ValueError(f"not JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("captureData"), dict):
        raise ValueError("not a capture record: no captureData")
    capture, meta = data["captureData"], data.get("eventMetadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("eventId"), str):
        raise ValueError("not a capture record: no eventMetadata.eventId")
    request_side, response_side = capture.get("endpointInput"), capture.get("endpointOutput")
    if request_side is None and response_side is None:
        raise ValueError("not a capture record: neither endpointInput nor endpointOutput")
    inference_id = meta.get("inferenceId")
    return Captured(
        request=_payload_bytes(request_side, INPUT),
        request_type=_content_type(request_side),
        response=_payload_bytes(response_side, OUTPUT),
        response_type=_content_type(response_side),
        event_id=meta["eventId"],
        inference_time=str(meta.get("inferenceTime", "")),
        inference_id=inference_id if isinstance(inference_id, str) else None,
    )
