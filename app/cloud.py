"""The client side of the AWS deployment: upload a dataset so that it starts exactly one run
(files first, the ``dataset.json`` descriptor last), and call the API with SigV4."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from image_dataset.descriptor import FILE_NAME, Descriptor, dump_descriptor
from image_dataset.naming import check_dataset_location
from imgclf_core import batch_request, s3_layout

DATASET_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>datasets/[^/]+/[^/]+)/?$")
API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


def parse_dataset_uri(uri: str) -> Tuple[str, str]:
    """(bucket, prefix ending in /) of ``s3://bucket/datasets/<name>/<version>/``; a ValueError
    (a DatasetNameError that names the rule) for a name or version that a run could not carry."""
    match = DATASET_URI.match(uri)
    if not match:
        raise ValueError(f"{uri!r} is not s3://<dataset bucket>/datasets/<name>/<version>/")
    _, name, version = match["prefix"].split("/")
    check_dataset_location(name, version)
    return match["bucket"], match["prefix"] + "/"


def dataset_files(root: Path) -> List[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != FILE_NAME and not p.name.startswith("."))


def upload_dataset(
    s3: Any,
    root: Path,
    uri: str,
    descriptor: Descriptor,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Dict[str, Any]:
    """Upload every file of ``root``, then the descriptor (whose arrival starts the run)."""
    bucket, prefix = parse_dataset_uri(uri)
    files = dataset_files(root)
    for done, path in enumerate(files, 1):
        s3.upload_file(str(path), bucket, prefix + path.relative_to(root).as_posix())
        if progress:
            progress(done, len(files))
    descriptor = descriptor._replace(file_count=len(files))
    s3.put_object(
        Bucket=bucket, Key=prefix + FILE_NAME, Body=dump_descriptor(descriptor), ContentType="application/json"
    )
    return {"bucket": bucket, "prefix": prefix, "files": len(files), "descriptor": prefix + FILE_NAME}


def signed_request(url: str, body: bytes, content_type: str, session: Any = None) -> urllib.request.Request:
    """A POST to an API Gateway URL, signed with SigV4 for execute-api (IAM auth)."""
    from urllib.parse import urlparse

    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    host = urlparse(url).hostname or ""
    match = API_HOST.match(host)
    session = session or boto3.Session()
    region = match["region"] if match else session.region_name
    credentials = session.get_credentials()
    if credentials is None:
        raise ValueError("no AWS credentials: configure them as for the AWS CLI")
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": content_type})
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return urllib.request.Request(url, data=body, method="POST", headers=dict(request.headers.items()))


def token_request(url: str, body: bytes, content_type: str, token: str) -> urllib.request.Request:
    """A POST to an API Gateway URL with a Cognito user pool's ID token (Cognito auth)."""
    headers = {"Content-Type": content_type, "Authorization": token.strip()}
    return urllib.request.Request(url, data=body, method="POST", headers=headers)


def invoke_api(
    url: str,
    body: bytes,
    content_type: str,
    session: Any = None,
    timeout: float = 60.0,
    token: Optional[str] = None,
) -> Tuple[int, bytes]:
    """(status, body) of POST /classify: signed with SigV4 (IAM auth), or with ``token``, a
    Cognito ID token, in the Authorization header (Cognito auth)."""
    request = (
        token_request(url, body, content_type, token) if token else signed_request(url, body, content_type, session)
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def start_batch(s3: Any, bucket: str, name: str, input_uri: str, model_package: Any = None) -> Dict[str, Any]:
    """Write ``batch/<name>/batch.json`` in the datasets bucket, which starts the stage's batch
    workflow; checked first by the start function's own rules (imgclf_core.batch_request), so
    a request it would refuse is never written. Returns the request, its key and the
    execution's name."""
    key = f"{s3_layout.BATCH}{name}/{s3_layout.BATCH_REQUEST}"
    document: Dict[str, Any] = {"input": input_uri}
    if model_package is not None:
        document["model_package"] = model_package
    body = json.dumps(document).encode()
    request = batch_request.parse_request(bucket, key, body)  # Rejected: what the workflow would refuse
    answer = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    etag = str(answer.get("ETag", ""))  # as the start function reads it back (GetObject's, quoted)
    return {"key": key, "request": request.as_dict(), "execution": batch_request.execution_name(name, etag)}
