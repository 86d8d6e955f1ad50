"""What every Lambda that S3 uploads start reads from its event (shared by the functions; it is
no function of its own)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple
from urllib.parse import unquote_plus


def uploaded_objects(event: Dict[str, Any]) -> Iterator[Tuple[str, str]]:
    """(bucket, key) of each created object, from an EventBridge "Object Created" event (the key
    as it is) or an S3 notification (the key URL-encoded, spaces as ``+``)."""
    if "detail" in event:
        yield event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]
    for record in event.get("Records", []):
        yield record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"])
