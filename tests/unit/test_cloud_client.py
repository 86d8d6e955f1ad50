"""`imgclf upload` (files first, descriptor last) and `imgclf predict --api` (SigV4)."""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Dict, Iterator, List
from unittest import mock

import boto3
import pytest

from app.cli.main import main
from tests.builders import folder_dataset, write_file
from tests.http_stub import http_stub

REGION = "us-east-1"


@pytest.fixture()
def s3() -> Iterator[Any]:
    from moto import mock_aws

    env = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, env), mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="data")
        yield client


def test_upload_puts_the_descriptor_last(s3: Any, tmp_path: Path) -> None:
    folder_dataset(str(tmp_path / "pets"), {"cat": 3, "dog": 3})
    order: List[str] = []
    real_put, real_upload = s3.put_object, s3.upload_file
    with mock.patch("boto3.client", return_value=s3), mock.patch.object(
        s3, "upload_file", side_effect=lambda f, b, k: (order.append(k), real_upload(f, b, k))
    ), mock.patch.object(s3, "put_object", side_effect=lambda **kw: (order.append(kw["Key"]), real_put(**kw))[1]):
        code = main(["upload", str(tmp_path / "pets"), "s3://data/datasets/pets/v1/", "--hp", "epochs=5"])
    assert code == 0
    keys = list(dict.fromkeys(order))  # upload_file may call put_object itself
    files = sorted(p for p in (tmp_path / "pets").rglob("*") if p.is_file())
    assert keys[-1] == "datasets/pets/v1/dataset.json" and len(keys) == len(files) + 1
    descriptor = json.loads(s3.get_object(Bucket="data", Key="datasets/pets/v1/dataset.json")["Body"].read())
    assert descriptor == {"file_count": len(files), "hyperparameters": {"epochs": "5"}, "label_names": ["cat", "dog"]}


def test_invalid_dataset_is_not_uploaded(s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder_dataset(str(tmp_path / "pets"), {"cat": 2, "dog": 2})
    write_file(str(tmp_path / "pets" / "train" / "cat" / "bad.jpg"), b"not a jpeg")
    with mock.patch("boto3.client", return_value=s3):
        assert main(["upload", str(tmp_path / "pets"), "s3://data/datasets/pets/v1/"]) == 1
    assert "train/cat/bad.jpg" in capsys.readouterr().err
    assert "Contents" not in s3.list_objects_v2(Bucket="data")


@pytest.mark.parametrize("uri", ["s3://data/pets/v1/", "s3://data/datasets/pets/", "/tmp/x"])
def test_upload_refuses_other_locations(tmp_path: Path, uri: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["upload", str(tmp_path), uri])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    "uri, shown",
    [
        ("s3://data/datasets/fleurs d'été/v1/", 'dataset name "fleurs d\'été": "\'" not allowed'),
        ("s3://data/datasets/pets/" + "v" * 65 + "/", "dataset version 'vvv"),
        ("s3://data/datasets/../v1/", "dataset name '..' is a path step"),
    ],
    ids=["apostrophe", "long-version", "dot-dot"],
)
def test_upload_refuses_names_a_run_cannot_carry(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture, uri: str, shown: str
) -> None:
    """One clear line, exit 2, and nothing uploaded (not even the dataset's files)."""
    folder_dataset(str(tmp_path / "pets"), {"cat": 2, "dog": 2})
    with mock.patch("boto3.client", return_value=s3), pytest.raises(SystemExit) as caught:
        main(["upload", str(tmp_path / "pets"), uri])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: imgclf upload ")  # the usage lines, then the reason
    line = err.splitlines()[-1]
    assert line.startswith("imgclf upload: error: " + shown), line
    assert line.endswith(
        "a dataset name and version are each 1-64 characters of letters, digits, spaces and _ . : = + - @"
    )
    assert "Traceback" not in err and "Contents" not in s3.list_objects_v2(Bucket="data")


class _Recorder(BaseHTTPRequestHandler):
    seen: Dict[str, str] = {}

    def do_POST(self) -> None:  # noqa: N802
        _Recorder.seen = dict(self.headers.items())
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(
            {
                "probabilities": [0.8, 0.2],
                "labels": ["cat", "dog"],
                "predicted_label": "cat",
                "top_k": [{"label": "cat", "probability": 0.8}],
            }
        ).encode()
        self.send_response(200 if self.headers["Content-Type"] == "image/jpeg" else 415)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_predict_api_signs_with_sigv4(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = write_file(str(tmp_path / "a.jpg"), b"\xff\xd8\xff" + b"0" * 100)
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "eu-west-1"}
    with http_stub(_Recorder) as url, mock.patch.dict(os.environ, env):
        code = main(["predict", "--api", f"{url}/v1/classify", image])
    assert code == 0 and "cat 0.800" in capsys.readouterr().out
    auth = _Recorder.seen["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/eu-west-1/execute-api/aws4_request" in auth
    assert "X-Amz-Date" in _Recorder.seen


def test_predict_api_with_a_cognito_token(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = write_file(str(tmp_path / "a.jpg"), b"\xff\xd8\xff" + b"0" * 100)
    no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    with http_stub(_Recorder) as url, mock.patch.dict(os.environ, no_keys):
        code = main(["predict", "--api", f"{url}/v1/classify", "--token", "eyJraWQ.header.signature", image])
    assert code == 0 and "cat 0.800" in capsys.readouterr().out
    assert _Recorder.seen["Authorization"] == "eyJraWQ.header.signature" and "X-Amz-Date" not in _Recorder.seen
