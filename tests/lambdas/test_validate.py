"""The validator Lambda reads datasets from S3 with ranged GETs, holds no payload, and reports
exactly what `imgclf validate` reports for the same files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Dict

import boto3
import pytest

from image_dataset.validate import ValidationOptions, validate_path
from imgclf_core.environment import ValidateEnvironment
from lambdas.validate.logic import summary, validate
from lambdas.validate.s3_store import S3Store
from tests.builders import folder_dataset, jpeg, noisy_jpeg, write_rec

from .conftest import REGION, Context

BUCKET = "data"
WORK_BUCKET = "artifacts"


def upload_folder(root: Path, prefix: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.put_object(Bucket=BUCKET, Key=prefix + path.relative_to(root).as_posix(), Body=path.read_bytes())


@pytest.fixture()
def bucket(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=WORK_BUCKET)
    env = ValidateEnvironment(work_bucket=WORK_BUCKET, shard_bytes=1 << 30, shard_images=5000)
    for name, value in env.as_environment().items():
        monkeypatch.setenv(name, value)
    return BUCKET


def test_large_recordio_is_read_in_bounded_ranged_blocks(bucket: str, tmp_path: Path) -> None:
    images = [noisy_jpeg(64, 64, seed) for seed in range(8)]
    records = [(float(i % 4), images[i % 8]) for i in range(4000)]
    write_rec(str(tmp_path / "train" / "data.rec"), records)
    write_rec(str(tmp_path / "validation" / "data.rec"), records[:200])
    upload_folder(tmp_path, "datasets/big/v1/")
    size = (tmp_path / "train" / "data.rec").stat().st_size
    store = S3Store(boto3.client("s3", region_name=REGION), bucket, "datasets/big/v1/", block=1 << 20)
    report = validate(store, "mxnet", {"image_shape": "3,32,32"}, {})
    assert report["valid"], report["errors"][:3]
    assert report["channels"]["train"]["samples"] == 4000
    assert store.requests <= (size >> 20) + 10, "one ranged GET per block, not one per record"
    assert summary(report, "mxnet", "s3://x")["hyperparameters"] == {"num_classes": "4", "num_training_samples": "4000"}


def test_damaged_record_is_located_by_byte_offset_like_the_local_validator(bucket: str, tmp_path: Path) -> None:
    rec = tmp_path / "train" / "data.rec"
    write_rec(str(rec), [(float(i % 2), jpeg(40, 40)) for i in range(50)])
    write_rec(str(tmp_path / "validation" / "data.rec"), [(float(i % 2), jpeg(40, 40)) for i in range(10)])
    data = bytearray(rec.read_bytes())
    magic = (0xCED7230A).to_bytes(4, "little")
    third = data.index(magic, data.index(magic, 4) + 4)
    data[third : third + 4] = b"\x00\x00\x00\x00"  # the third record loses its magic number
    rec.write_bytes(bytes(data))
    upload_folder(tmp_path, "datasets/broken/v1/")
    store = S3Store(boto3.client("s3", region_name=REGION), bucket, "datasets/broken/v1/")
    remote = validate(store, "mxnet", {"image_shape": "3,32,32", "mini_batch_size": "4"}, {})
    options = ValidationOptions(image_shape=(3, 32, 32), resize=None, mini_batch_size=4, multi_label=False)
    local = validate_path(str(tmp_path), options)
    assert not remote["valid"]
    assert [(e["code"], e["location"]) for e in remote["errors"]] == [
        (e["code"], e["location"]) for e in local["errors"]
    ]
    assert any("@byte" in e["location"] and e["location"].startswith("train/data.rec") for e in remote["errors"]), (
        remote["errors"]
    )


def test_handler_writes_the_report_beside_the_dataset(bucket: str, tmp_path: Path) -> None:
    folder_dataset(str(tmp_path), {"cat": 4, "dog": 4})
    upload_folder(tmp_path, "datasets/pets/v1/")
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key="datasets/pets/v1/dataset.json", Body=b"{}")
    from lambdas.validate.handler import handler

    event = {
        "execution": "pets-v1",
        "dataset": {"bucket": bucket, "prefix": "datasets/pets/v1/", "descriptor": {}},
        "hyperparameters": {"image_shape": "3,32,32", "resize": "32", "mini_batch_size": "2"},
        "backend": "mxnet",
    }
    result: Dict = handler(event, Context())
    assert result["valid"], result["first_errors"]
    assert result["report_uri"] == f"s3://{bucket}/datasets/pets/v1/validation-report.json"
    body = boto3.client("s3", region_name=REGION).get_object(
        Bucket=bucket, Key="datasets/pets/v1/validation-report.json"
    )
    report = json.loads(body["Body"].read())
    assert report["label_names"] == ["cat", "dog"] and not report["warnings"]


def test_an_upload_without_data_is_an_error_not_a_crash(bucket: str, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key="datasets/empty/v1/dataset.json", Body=b"{}")
    store = S3Store(boto3.client("s3", region_name=REGION), bucket, "datasets/empty/v1/")
    report = validate(store, "tensorflow", {}, {})
    local = validate_path(str(tmp_path))
    assert not report["valid"]
    assert [e["code"] for e in report["errors"]] == [e["code"] for e in local["errors"]]


def fan_out(event: Dict, monkeypatch: pytest.MonkeyPatch, shard_bytes: int, shard_images: int) -> Dict:
    """The three steps as the Distributed Map runs them: plan, every shard, merge."""
    from lambdas.validate.handler import handler, merge_handler, shard_handler

    monkeypatch.setenv("SHARD_BYTES", str(shard_bytes))
    monkeypatch.setenv("SHARD_IMAGES", str(shard_images))
    planned = handler(event, Context())
    assert planned["shards"] > 1, planned
    s3 = boto3.client("s3", region_name=REGION)
    items = json.loads(s3.get_object(Bucket=WORK_BUCKET, Key=planned["work"]["items"])["Body"].read())
    assert len(items) == planned["shards"]
    for shard in reversed(items):  # the Map runs shards in any order
        assert shard_handler({**event, "shard": shard, "work": planned["work"]}, Context()) == {"index": shard["index"]}
    return merge_handler({**event, "work": planned["work"]}, Context())


def report_at(uri: str) -> Dict:
    bucket, key = uri[len("s3://") :].split("/", 1)
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def test_a_large_dataset_fans_out_and_merges_into_the_same_report(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.validate.handler import handler

    records = [(float(i % 3), noisy_jpeg(24 + i % 5, 24, i)) for i in range(300)]
    records[123] = (7.5, records[123][1])  # one bad label, deep inside a middle shard
    write_rec(str(tmp_path / "train" / "data.rec"), records, ids=[i if i != 250 else 17 for i in range(300)])
    write_rec(str(tmp_path / "validation" / "data.rec"), records[:40])
    upload_folder(tmp_path, "datasets/big/v2/")
    event = {
        "execution": "big-v2-abc",
        "dataset": {"bucket": bucket, "prefix": "datasets/big/v2/", "descriptor": {}},
        "hyperparameters": {"image_shape": "3,24,24"},
        "backend": "mxnet",
    }
    whole = handler(event, Context())
    whole_report = report_at(whole["report_uri"])
    sharded = fan_out(event, monkeypatch, 64 << 10, 5000)
    sharded_report = report_at(sharded["report_uri"])
    assert sharded == whole and not whole["valid"]
    assert {e["code"] for e in whole_report["errors"]} == {"LABEL_INVALID", "DUPLICATE_ID", "IDX_DUPLICATE_KEY"}
    assert sharded_report == whole_report


def test_an_image_dataset_fans_out_by_image_count(bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdas.validate.handler import handler

    folder_dataset(str(tmp_path), {"cat": 9, "dog": 8})
    (tmp_path / "train" / "dog" / "003.jpg").write_bytes(b"\xff\xd8\xff broken")
    upload_folder(tmp_path, "datasets/pets/v2/")
    event = {
        "execution": "pets-v2-abc",
        "dataset": {"bucket": bucket, "prefix": "datasets/pets/v2/", "descriptor": {}},
        "hyperparameters": {"image_shape": "3,32,32", "resize": "32", "mini_batch_size": "2"},
        "backend": "mxnet",
    }
    whole = handler(event, Context())
    whole_report = report_at(whole["report_uri"])
    sharded = fan_out(event, monkeypatch, 1 << 30, 4)
    assert sharded == whole and whole["first_errors"] and "IMG_CORRUPT" in whole["first_errors"][0]
    assert report_at(sharded["report_uri"]) == whole_report


def test_image_files_are_fetched_concurrently_in_order(bucket: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for i in range(40):
        s3.put_object(Bucket=bucket, Key=f"datasets/many/v1/train/a/{i}.jpg", Body=f"image {i}".encode())
    store = S3Store(s3, bucket, "datasets/many/v1/")
    paths = [f"train/a/{i}.jpg" for i in reversed(range(40))]
    assert store.read_many(paths) == [f"image {i}".encode() for i in reversed(range(40))]
    assert store.requests == 40

    import threading
    import time

    class SlowClient:
        """Counts the GETs in flight at once."""

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.now = self.most = 0

        def get_object(self, Bucket: str, Key: str) -> Dict:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.02)
            with self.lock:
                self.now -= 1
            return {"Body": io.BytesIO(Key.encode())}

    slow = SlowClient()
    store.client = slow
    assert store.read_many(paths[:32]) == [(store.prefix + p).encode() for p in paths[:32]]
    assert slow.most > 1
    with pytest.raises(FileNotFoundError):
        store.read_many(["train/a/missing.jpg"])
