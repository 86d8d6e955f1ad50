"""The plans of the Pack and Train steps: what each request holds for a run."""

from __future__ import annotations

from imgclf_core.environment import PlannerEnvironment
from lambdas.training.logic import input_channels, job_name, pack_plan

SETTINGS = PlannerEnvironment(
    resource_prefix="imgclf-dev",
    backend="mxnet",
    instance_count=1,
    code_uri="s3://assets/abc.tar.gz",
    artifact_bucket="artifacts",
)
DATASET = {
    "bucket": "data",
    "prefix": "datasets/flowers/v1/",
    "descriptor": {"format": "manifest", "label_attribute": "class"},
}


def test_recordio_channels_need_no_packing() -> None:
    validation = {"channels": {"train": {"format": "recordio"}, "validation": {"format": "recordio"}}}
    assert pack_plan("run-1", DATASET, {}, validation, SETTINGS) == {"needed": False, "channels": {}}


def test_image_channels_are_packed_with_the_descriptors_options() -> None:
    validation = {"channels": {"train": {"format": "manifest"}, "validation": {"format": "recordio"}}}
    plan = pack_plan("flowers-v1-0123456789abcdef", DATASET, {"multi_label": "1"}, validation, SETTINGS)
    assert plan["needed"] is True and plan["ProcessingJobName"] == job_name(
        "imgclf-dev-pack", "flowers-v1-0123456789abcdef", 1
    )
    assert len(plan["ProcessingJobName"]) <= 63
    assert plan["Arguments"][-6:] == ["--format", "manifest", "--label-attribute", "class", "--multi-label", "1"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in plan["ProcessingInputs"]}
    assert inputs == {"dataset": "s3://data/datasets/flowers/v1/", "code": "s3://assets/abc.tar.gz"}
    packed = f"s3://artifacts/packed/{plan['ProcessingJobName']}/"
    assert plan["Outputs"][0]["S3Output"]["S3Uri"] == packed
    assert plan["channels"] == {"train": packed + "train/"}  # the RecordIO channel stays where it is


def test_training_reads_packed_channels_and_drops_their_image_lists() -> None:
    channels = input_channels(
        "data",
        "datasets/flowers/v1/",
        ["train", "train_lst", "validation", "validation_lst"],
        "s3://assets/abc.tar.gz",
        {"train": "s3://artifacts/packed/job/train/"},
    )
    uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in channels}
    assert uris == {
        "train": "s3://artifacts/packed/job/train/",
        "validation": "s3://data/datasets/flowers/v1/validation/",
        "validation_lst": "s3://data/datasets/flowers/v1/validation_lst/",
        "code": "s3://assets/abc.tar.gz",
    }


def test_recordio_at_the_dataset_root_is_refused_before_the_job() -> None:
    """A .rec at the root validates (locally a channel may be a file) but no folder can carry it
    into a training channel: the plan fails with where to put it, instead of a job with no train."""
    import pytest

    with pytest.raises(ValueError, match=r"upload them under datasets/flowers/v1/train/"):
        input_channels("data", "datasets/flowers/v1/", [], "s3://assets/abc.tar.gz", {}, ["train"])
    channels = input_channels("data", "datasets/flowers/v1/", ["train"], "s3://assets/abc.tar.gz", {}, ["train"])
    assert [c["ChannelName"] for c in channels] == ["train", "code"]
