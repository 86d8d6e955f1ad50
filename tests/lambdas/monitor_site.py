"""A live endpoint in moto for the scheduled monitor: the digits model (tests/unit/test_monitor's
site: its baseline, an unshifted hour of captures at HOUR and an inverted one at HOUR + 1), its
model data in the artifacts bucket, the endpoint's captures under captures/<endpoint>/ and the
labels under feedback/<endpoint>/ of the datasets bucket."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Dict, Optional

import boto3

from imgclf_core import s3_layout
from tests.unit.test_monitor import HOUR

REGION = "us-east-1"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-inference:1.9.0-cpu-py38"
MODEL_KEY = "training-jobs/job-1/output/model.tar.gz"


def at(hours: float) -> str:
    """A scheduled time, ``hours`` after HOUR (a 1-hour window then holds HOUR + hours - 1)."""
    return (HOUR + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def upload_site(site: Dict[str, Any], endpoint: str, artifacts: str, datasets: str, labels: bool = True) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=artifacts, Key=MODEL_KEY, Body=Path(site["model"]).read_bytes())
    for path in sorted(Path(site["capture"]).rglob("*.jsonl")):
        relative = path.relative_to(site["capture"]).as_posix().split("/", 1)[1]  # below <endpoint>/
        s3.put_object(Bucket=artifacts, Key=f"{s3_layout.CAPTURES}{endpoint}/{relative}", Body=path.read_bytes())
    if labels:
        key = s3_layout.feedback_prefix(endpoint) + "labels.jsonl"
        s3.put_object(Bucket=datasets, Key=key, Body=Path(site["labels"]).read_bytes())


def deploy(endpoint: str, artifacts: str, role: str, package_group: Optional[str] = None) -> None:
    """The endpoint, its config and model: from a model package of ``package_group`` (as the
    deployment workflow creates it), or with the model data named directly."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    data = f"s3://{artifacts}/{MODEL_KEY}"
    if package_group:
        package = sagemaker.create_model_package(
            ModelPackageGroupName=package_group,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": data}],
                "SupportedContentTypes": ["application/x-image"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
        container: Dict[str, Any] = {"ModelPackageName": package}
    else:
        container = {"Image": IMAGE, "ModelDataUrl": data}
    model = f"{endpoint}-model-1"
    sagemaker.create_model(ModelName=model, Containers=[container], ExecutionRoleArn=role)
    config = f"{endpoint}-config-1"
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.xlarge"}
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)


def metric_values(namespace: str, endpoint: str) -> Dict[str, float]:
    """The latest value of each metric of the endpoint (CheckValue as ``CheckValue/<check>``)."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    found: Dict[str, float] = {}
    for metric in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        if dims.get("EndpointName") != endpoint:
            continue
        name = metric["MetricName"] + (f"/{dims['Check']}" if "Check" in dims else "")
        stats = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric["MetricName"],
            Dimensions=metric["Dimensions"],
            StartTime=HOUR - datetime.timedelta(days=1),
            EndTime=HOUR + datetime.timedelta(days=1),
            Period=3600,
            Statistics=["Maximum"],
        )["Datapoints"]
        found[name] = max(stats, key=lambda p: p["Timestamp"])["Maximum"]
    return found
