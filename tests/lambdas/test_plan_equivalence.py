"""The local pipeline and the cloud workflow run one plan (issue 14): for each dataset shape,
backend and override set, what ``imgclf pipeline run`` decides equals what the trigger,
validate and plan Lambdas decide for the same files uploaded to S3, field by field: the
execution name, the effective and data-derived hyperparameters, what validation expects and
finds, and the training job's HyperParameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import boto3
import pytest

from app.local_sagemaker import LocalTrainingJob
from app.pipeline.run import LOCAL_TRAINING, PipelineRun
from image_dataset.lst import format_lst_line
from image_dataset.validate import load_index
from imgclf_core.backends import backend as backend_record
from imgclf_core.environment import PlannerEnvironment
from imgclf_core.plan import stage_identity
from lambdas.training.logic import plan as training_plan
from lambdas.trigger.logic import parse_upload, workflow_input
from lambdas.validate.logic import dataset_reader, summary, validate
from lambdas.validate.s3_store import S3Store
from tests.builders import folder_dataset, jpeg, manifest_lines, write_file, write_rec

from .conftest import REGION

BUCKET, VERSION, THRESHOLD, REGRESSION = "data", "v7", 0.8, 0.05
SUBMIT = "sagemaker_submit_directory"  # where the code is differs by design: a tree here, a channel there


def folders(root: Path) -> Dict[str, Any]:
    folder_dataset(str(root), {"cat": 4, "dog": 4})
    return {}


def train_only(root: Path) -> Dict[str, Any]:
    folder_dataset(str(root), {"cat": 6, "dog": 6}, channels=("train",))
    return {}


def small_validation(root: Path) -> Dict[str, Any]:
    """10 validation images: fewer than a default batch (the drift case of issue 14)."""
    folder_dataset(str(root), {"cat": 10, "dog": 10})
    return {}


def lst(root: Path) -> Dict[str, Any]:
    for channel, count in (("train", 8), ("validation", 4)):
        lines = []
        for i in range(count):
            write_file(str(root / channel / "img" / f"{i}.jpg"), jpeg(24, 24, (30 * i % 256, 90, 160)))
            lines.append(format_lst_line(i, [float(i % 2)], f"img/{i}.jpg"))
        write_file(str(root / channel / f"{channel}.lst"), "".join(lines))
    return {"format": "lst"}


def multi_label_manifest(root: Path) -> Dict[str, Any]:
    for channel, count in (("train", 8), ("validation", 4)):
        rows = []
        for i in range(count):
            write_file(str(root / channel / "img" / f"{i}.jpg"), jpeg(24, 24, (20 * i % 256, 40, 200)))
            rows.append({"source-ref": f"img/{i}.jpg", "tags": [i % 3, (i + 1) % 3]})
        write_file(str(root / channel / f"{channel}.manifest"), manifest_lines(rows))
    return {"format": "manifest", "label_attribute": "tags"}


def recordio(root: Path) -> Dict[str, Any]:
    images = [jpeg(32, 32, (40 * i % 256, 10, 90)) for i in range(6)]
    write_rec(str(root / "train" / "data.rec"), [(float(i % 3), images[i % 6]) for i in range(12)])
    write_rec(str(root / "validation" / "data.rec"), [(float(i % 3), images[i]) for i in range(6)])
    return {"format": "recordio"}


SHAPES: Dict[str, Callable[[Path], Dict[str, Any]]] = {
    "folders": folders,
    "train-only": train_only,
    "small-validation": small_validation,
    "lst": lst,
    "multi-label-manifest": multi_label_manifest,
    "recordio": recordio,
}
OVERRIDES = {
    "mxnet": [{}, {"epochs": "3", "mini_batch_size": "4"}, {"multi_label": "1"}],
    "tensorflow": [{}, {"epochs": "2", "batch_size": "4", "image_size": "48"}],
}
CASES = [(shape, b, o) for shape in SHAPES for b, sets in OVERRIDES.items() for o in sets]


def upload(root: Path, descriptor: Dict[str, Any]) -> Tuple[str, bytes]:
    """The dataset's files and its dataset.json, as `imgclf upload` leaves them in S3."""
    s3 = boto3.client("s3", region_name=REGION)
    prefix = f"datasets/{root.name}/{VERSION}/"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.put_object(Bucket=BUCKET, Key=prefix + path.relative_to(root).as_posix(), Body=path.read_bytes())
    body = json.dumps(descriptor).encode()
    s3.put_object(Bucket=BUCKET, Key=prefix + "dataset.json", Body=body)
    return prefix + "dataset.json", body


def report_facts(report: Dict[str, Any]) -> Dict[str, Any]:
    """What a report says about the data, without where it read them (paths vs S3 keys)."""
    return {
        "valid": report["valid"],
        "num_classes": report["num_classes"],
        "channels": {n: (c["format"], c["samples"]) for n, c in report["channels"].items()},
        "errors": sorted(e["code"] for e in report["errors"]),
        "warnings": sorted(w["code"] for w in report["warnings"]),
    }


def local_side(root: Path, work: Path, backend: str, overrides: Dict[str, str], read: Dict[str, Any]) -> Dict:
    run = PipelineRun(
        str(root),
        str(work),
        backend,
        overrides,
        THRESHOLD,
        say=lambda _: None,
        max_regression=REGRESSION,
        descriptor=read,
    )
    plan = run.plan(VERSION)
    report = load_index(str(root), plan.validation).report
    plan = plan.with_report(report)
    job = LocalTrainingJob(backend, str(work / "job"), {"train": str(root / "train")}, plan.hyperparameters)
    job.layout("algo-1")
    job_hyperparameters = json.loads((work / "job" / "input" / "config" / "hyperparameters.json").read_text())
    return {
        "execution": plan.execution,
        "effective": plan.effective,
        "validation": plan.validation.as_dict(),
        "report": report_facts(report),
        "from_data": plan.from_data,
        "job": {k: v for k, v in job_hyperparameters.items() if k != SUBMIT},
    }


def cloud_side(root: Path, backend: str, overrides: Dict[str, str], read: Dict[str, Any]) -> Dict:
    s3 = boto3.client("s3", region_name=REGION)
    key, body = upload(root, {**read, "hyperparameters": overrides})
    found = parse_upload(BUCKET, key)
    assert found is not None
    defaults = dict(backend_record(backend).local_defaults)
    stage = stage_identity(backend, LOCAL_TRAINING, THRESHOLD, REGRESSION)
    run = workflow_input(found, body, backend, defaults, stage)  # the trigger Lambda
    dataset, effective = run["input"]["dataset"], run["input"]["hyperparameters"]
    request = {"backend": backend, "hyperparameters": effective, "dataset": dataset}
    store = S3Store(s3, BUCKET, dataset["prefix"])
    _, options = dataset_reader(store, request)
    report = validate(store, backend, effective, dataset["descriptor"])  # the validate Lambda
    validated = summary(report, backend, "s3://x/report.json")
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=dataset["prefix"], Delimiter="/")
    folders = [p["Prefix"][len(dataset["prefix"]) :].rstrip("/") for p in listing.get("CommonPrefixes", [])]
    settings = PlannerEnvironment("imgclf-dev", backend, 1, "s3://assets/code/src.tar.gz", "artifacts")
    request_parts = training_plan(run["name"], 1, dataset, effective, validated, folders, settings)  # the plan Lambda
    return {
        "execution": run["name"],
        "effective": effective,
        "validation": options.as_dict(),
        "report": report_facts(report),
        "from_data": validated["hyperparameters"],
        "job": {k: v for k, v in request_parts["HyperParameters"].items() if k != SUBMIT},
    }


@pytest.mark.parametrize(
    ("shape", "backend", "overrides"), CASES, ids=[f"{s}-{b}-{i}" for i, (s, b, _) in enumerate(CASES)]
)
def test_the_local_pipeline_and_the_cloud_lambdas_make_the_same_plan(
    aws: None, tmp_path: Path, shape: str, backend: str, overrides: Dict[str, str]
) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    root = tmp_path / "flowers"
    read = SHAPES[shape](root)
    local = local_side(root, tmp_path / "work", backend, overrides, read)
    cloud = cloud_side(root, backend, overrides, read)
    differences: List[str] = [f"{k}: local {local[k]!r} != cloud {cloud[k]!r}" for k in local if local[k] != cloud[k]]
    assert not differences, "\n".join(differences)
    assert local["report"]["valid"] == (local["from_data"] != {}), "a valid dataset decides hyperparameters"


def test_the_small_validation_channel_is_valid_in_both_for_tensorflow(aws: None, tmp_path: Path) -> None:
    """The measured drift: 10 validation images with the TensorFlow defaults were valid in the
    cloud (batch size 1) and TOO_FEW_SAMPLES locally (batch size 32)."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    root = tmp_path / "flowers"
    small_validation(root)
    local = local_side(root, tmp_path / "work", "tensorflow", {}, {})
    assert local["report"]["valid"] and local["report"]["channels"]["validation"] == ("folders", 10)
    assert cloud_side(root, "tensorflow", {}, {})["report"] == local["report"]
