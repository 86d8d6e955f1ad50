"""The scheduled monitor's function in moto (S3, SageMaker, CloudWatch): the live model's
baseline from its model.tar.gz, the window's captures by hour folder, labels by inference id,
monitor.json, its page monitor.html (the very page ``imgclf monitor`` writes for the same window)
and the metrics; an unshifted window has no drift, an inverted one has, an empty one publishes
Records=0."""

from __future__ import annotations

import datetime
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Tuple
from unittest import mock

import boto3
import pytest

from imgclf_core import traffic as shared
from imgclf_core.environment import MonitorEnvironment
from lambdas.monitor import logic
from tests.builders import tar_gz
from tests.unit.test_monitor import HOUR, hour_args, site  # noqa: F401 - the module's fixture

from .conftest import Context
from .monitor_site import REGION, at, deploy, metric_values, upload_site

ENDPOINT = "imgclf-test-endpoint"
ARTIFACTS, DATASETS = "artifacts", "datasets"
ROLE = "arn:aws:iam::123456789012:role/model"
ENV = MonitorEnvironment(ENDPOINT, ARTIFACTS, DATASETS, 1, "Imgclf")


@pytest.fixture()
def live(aws: None, site: Dict[str, Any]) -> Iterator[Dict[str, Any]]:  # noqa: F811
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (ARTIFACTS, DATASETS):
        s3.create_bucket(Bucket=bucket)
    upload_site(site, ENDPOINT, ARTIFACTS, DATASETS)
    deploy(ENDPOINT, ARTIFACTS, ROLE)
    with mock.patch.dict(os.environ, ENV.as_environment()):
        yield site


def run(time: str) -> Dict[str, Any]:
    from lambdas.monitor.handler import handler

    return dict(handler({"time": time}, Context()))


def report(result: Dict[str, Any]) -> Dict[str, Any]:
    key = result["report"].split("/", 3)[3]
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()
    return dict(json.loads(body))


def page(result: Dict[str, Any]) -> Tuple[str, str]:
    """The run's monitor.html and its ContentType."""
    key = result["page"].split("/", 3)[3]
    found = boto3.client("s3", region_name=REGION).get_object(Bucket=ARTIFACTS, Key=key)
    return found["Body"].read().decode("utf-8"), found["ContentType"]


def test_an_unshifted_window_has_no_drift_and_live_accuracy(live: Dict[str, Any]) -> None:
    result = run(at(1))
    assert result["drift_detected"] is False and result["records"] == live["count"]
    assert result["report"].endswith("monitoring/imgclf-test-endpoint/2026-11-30T11-00-00Z/monitor.json")
    found = report(result)
    assert found["window"]["since"] == "2026-11-30T10:00:00Z" and found["window"]["labels_matched"] == live["count"]
    assert found["model_data"].endswith("training-jobs/job-1/output/model.tar.gz")
    values = metric_values("Imgclf", ENDPOINT)
    assert values["DriftDetected"] == 0 and values["Records"] == live["count"] and values["LiveAccuracy"] == 1.0
    assert values["MeanConfidence"] == pytest.approx(0.9)
    assert "CheckValue/image.brightness" in values and "CheckValue/predicted_class" in values


def test_an_inverted_window_is_drift(live: Dict[str, Any]) -> None:
    result = run(at(2))
    assert result["drift_detected"] is True and "image.brightness" in result["significant"]
    values = metric_values("Imgclf", ENDPOINT)
    assert values["DriftDetected"] == 1 and values["CheckValue/image.brightness"] >= 0.25
    assert values["LiveAccuracy"] < 0.5  # the inverted images were all predicted 0


def test_the_page_lies_beside_the_report_and_names_the_drifted_statistics(live: Dict[str, Any]) -> None:
    result = run(at(2))
    assert result["page"] == result["report"].replace("/monitor.json", "/monitor.html")
    html, content_type = page(result)
    assert content_type.startswith("text/html") and html.startswith("<!doctype html>")
    assert "<title>imgclf monitor: drift detected</title>" in html
    significant = re.findall(r"<tr><td>([^<]+)</td>(?:<td>[^<]*</td>){3}<td class='significant'>", html)
    assert "image.brightness" in significant and set(significant) == set(report(result)["significant"])
    assert html.count("<img src='data:image/png;base64,") == len(report(result)["histograms"]) + 1
    calm, _ = page(run(at(1)))
    assert "<title>imgclf monitor: no drift detected</title>" in calm and "class='significant'" not in calm


def test_the_page_is_the_one_imgclf_monitor_writes(
    live: Dict[str, Any], cli: Callable[..., Tuple[int, str, str]], tmp_path: Path
) -> None:
    """The same window (HOUR + 1 to HOUR + 2), model and labels: the same page, byte for byte
    (the cloud report's extra model_data is not on the page)."""
    code, _, err = cli(*hour_args(live, 1, tmp_path), "--labels", str(live["labels"]))
    assert code == 0, err
    local = (tmp_path / "monitor.html").read_text(encoding="utf-8")
    cloud, _ = page(run(at(2)))
    assert cloud == local


def test_a_window_without_captures_publishes_no_records(live: Dict[str, Any]) -> None:
    assert run(at(6)) == {"records": 0, "problems": 0}
    assert metric_values("Imgclf", ENDPOINT) == {"Records": 0.0}
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=ARTIFACTS, Prefix="monitoring/")
    assert listed["KeyCount"] == 0


def test_no_endpoint_is_no_failure(aws: None) -> None:
    with mock.patch.dict(os.environ, ENV.as_environment()):
        assert run(at(1)) == {"records": 0, "endpoint": None}


def test_the_window_reads_only_its_hour_folders() -> None:
    window = shared.last_hours(datetime.datetime(2026, 11, 30, 12, 30, tzinfo=datetime.UTC), 3)
    assert [h.hour for h in shared.window_hours(window)] == [9, 10, 11]
    assert window == shared.Window(HOUR - datetime.timedelta(hours=1), HOUR + datetime.timedelta(hours=2))



def test_the_baseline_is_streamed_from_the_archive() -> None:
    baseline = {"version": 1, "labels": ["a"]}
    found = logic.read_baseline(
        io.BytesIO(tar_gz({"model.params": b"x" * 1000, "./baseline.json": json.dumps(baseline).encode()})), "m"
    )
    assert found == baseline
    with pytest.raises(logic.MonitorError, match="trained before baselines"):
        logic.read_baseline(io.BytesIO(tar_gz({"model.params": b"x"})), "m")
    with pytest.raises(logic.MonitorError, match="version 7"):
        logic.read_baseline(io.BytesIO(tar_gz({"baseline.json": b'{"version": 7}'})), "m")
    with pytest.raises(logic.MonitorError, match="cannot be read"):
        logic.read_baseline(io.BytesIO(b"not a tar"), "m")


def test_the_live_model_is_found_through_its_descriptions() -> None:
    assert logic.model_name({"ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}]}) == "m"
    with pytest.raises(logic.MonitorError):
        logic.model_name({"ProductionVariants": [{"VariantName": "Other", "ModelName": "m"}]})
    assert logic.model_source({"Containers": [{"ModelPackageName": "arn:p"}]}) == ("package", "arn:p")
    assert logic.model_source({"PrimaryContainer": {"ModelDataUrl": "s3://b/k"}}) == ("url", "s3://b/k")
    package = {"InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://b/m.tar.gz"}]}}
    assert logic.package_model_data(package) == "s3://b/m.tar.gz"
    assert logic.metrics("e", None, HOUR)[0]["MetricName"] == "Records"
