"""The scheduled monitor's rules, apart from AWS: the live model of an endpoint from its
descriptions, baseline.json read from a streamed model.tar.gz, the drift report of a window
(imgclf_core.traffic and imgclf_core.drift, the image statistics of image_training.baseline, as
``imgclf monitor`` computes them) and the CloudWatch metrics of a report."""

from __future__ import annotations

import datetime
import json
import tarfile
from typing import IO, Any, Dict, List, Mapping, Optional, Tuple

from image_training import baseline as stats
from imgclf_core import drift
from imgclf_core import traffic as shared

VARIANT = "AllTraffic"
MAX_BASELINE_BYTES = 16 << 20  # a baseline.json is a few kB; anything this large is not one
# metric names (namespace: the stage's, dimension EndpointName; per check also Check)
DRIFT_DETECTED, RECORDS, MEAN_CONFIDENCE, LIVE_ACCURACY, CHECK_VALUE = (
    "DriftDetected",
    "Records",
    "MeanConfidence",
    "LiveAccuracy",
    "CheckValue",
)


class MonitorError(Exception):
    """The monitor cannot compare this endpoint's traffic (no baseline, an unknown model)."""


def config_name(endpoint: Mapping[str, Any]) -> str:
    """DescribeEndpoint's current EndpointConfigName."""
    return str(endpoint["EndpointConfigName"])


def model_name(config: Mapping[str, Any], variant: str = VARIANT) -> str:
    """The model of ``variant`` in DescribeEndpointConfig's ProductionVariants."""
    for found in config.get("ProductionVariants", []):
        if found.get("VariantName") == variant:
            return str(found["ModelName"])
    raise MonitorError(f"the endpoint config {config.get('EndpointConfigName')} has no variant {variant}")


def model_source(model: Mapping[str, Any]) -> Tuple[str, str]:
    """DescribeModel's first container: ``("url", ModelDataUrl)`` or ``("package", ModelPackageName)``."""
    containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
    container = containers[0]
    if container.get("ModelDataUrl"):
        return "url", str(container["ModelDataUrl"])
    if container.get("ModelPackageName"):
        return "package", str(container["ModelPackageName"])
    raise MonitorError(f"the model {model.get('ModelName')} names neither model data nor a model package")


def package_model_data(package: Mapping[str, Any]) -> str:
    """DescribeModelPackage's ModelDataUrl (its first inference container's)."""
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("ModelDataUrl"):
        raise MonitorError(f"the model package {package.get('ModelPackageArn')} has no model data")
    return str(containers[0]["ModelDataUrl"])


def s3_parts(uri: str) -> Tuple[str, str]:
    if not uri.startswith("s3://"):
        raise MonitorError(f"{uri} is not an S3 URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def read_baseline(stream: IO[bytes], where: str) -> Dict[str, Any]:
    """baseline.json from a model.tar.gz read as a stream (its members in order, stopping at
    baseline.json: memory stays bounded whatever the model's size)."""
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            for member in archive:
                if member.name.lstrip("./") != stats.FILE_NAME or not member.isfile():
                    continue
                if member.size > MAX_BASELINE_BYTES:
                    raise MonitorError(f"{where}: {stats.FILE_NAME} of {member.size} bytes is no baseline")
                found = archive.extractfile(member)
                data = json.loads(found.read().decode("utf-8")) if found else None
                break
            else:
                raise MonitorError(f"{where} holds no {stats.FILE_NAME}: the model was trained before baselines")
    except (ValueError, tarfile.TarError, EOFError, OSError) as err:
        raise MonitorError(f"{where}: the baseline cannot be read: {err}") from None
    if not isinstance(data, dict) or data.get("version") != stats.BASELINE_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise MonitorError(f"{where}: baseline version {version!r}; this monitor reads {stats.BASELINE_VERSION}")
    return data


def new_traffic(base: Mapping[str, Any]) -> shared.Traffic:
    return shared.Traffic(base["labels"], stats.MAX_IMAGES, stats.encoded_statistics)


def compare(
    base: Dict[str, Any], traffic: shared.Traffic, truth: Optional[Dict[str, Any]], window: shared.Window
) -> Dict[str, Any]:
    """monitor.json of the window, as ``imgclf monitor`` writes it."""
    images = stats.section(traffic.images, {k: v["edges"] for k, v in base["train"]["histograms"].items()})
    labels = truth or shared.no_labels()
    report = drift.compare(base, images, traffic.predictions(), labels)
    return shared.describe(report, base, images, traffic, labels, window)


def report_folder_time(when: datetime.datetime) -> str:
    """``2026-11-30T23-00-00Z``: a window's end as an S3 key part."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


def metrics(endpoint: str, report: Optional[Mapping[str, Any]], when: datetime.datetime) -> List[Dict[str, Any]]:
    """PutMetricData's MetricData of a run: Records always; with a report, DriftDetected (0 or
    1), MeanConfidence, LiveAccuracy when labels matched, and the value of each check that has
    one (CheckValue, dimension Check)."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}]

    def datum(name: str, value: float, unit: str = "None", extra: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        more = [{"Name": k, "Value": v} for k, v in (extra or {}).items()]
        return {"MetricName": name, "Dimensions": dimensions + more, "Timestamp": when, "Value": value, "Unit": unit}

    if report is None:
        return [datum(RECORDS, 0.0, "Count")]
    found = [
        datum(RECORDS, float(report["window"]["records"]), "Count"),
        datum(DRIFT_DETECTED, 1.0 if report["drift_detected"] else 0.0),
    ]
    confidence = report["checks"]["mean_confidence"].get("window")
    if confidence is not None:
        found.append(datum(MEAN_CONFIDENCE, float(confidence)))
    accuracy = report["checks"]["live_accuracy"].get("window")
    if accuracy is not None:
        found.append(datum(LIVE_ACCURACY, float(accuracy)))
    for name, check in sorted(report["checks"].items()):
        if check["value"] is not None:
            found.append(datum(CHECK_VALUE, float(check["value"]), extra={"Check": name}))
    return found
