"""The rules of the Train and Pack plans (lambdas.training.logic), each checked on its own and with
the exact request parts SageMaker receives: job names, channels, hyperparameters, the registry
metadata check and the whole plan of one run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import pytest

from imgclf_core.environment import PlannerEnvironment
from imgclf_core.plan import job_hyperparameters
from lambdas.training.logic import (
    input_channels,
    job_name,
    pack_plan,
    plan,
    registry_metadata,
    s3_channel,
)

SETTINGS = PlannerEnvironment(
    resource_prefix="imgclf-dev",
    backend="mxnet",
    instance_count=1,
    code_uri="s3://assets/code/abc.tar.gz",
    artifact_bucket="artifacts",
)
DATASET = {"bucket": "data", "prefix": "datasets/flowers/v1/", "descriptor": {"format": "manifest"}}
REPORT = "s3://artifacts/validation/run-1/report.json"


def digest(execution: str) -> str:
    return hashlib.sha256(execution.encode()).hexdigest()[:8]


def test_job_name_is_prefix_readable_execution_hash_and_attempt() -> None:
    assert job_name("imgclf-dev", "flowers-v1", 2) == f"imgclf-dev-flowers-v1-{digest('flowers-v1')}-2"


def test_job_name_replaces_runs_of_other_characters_and_trims_dashes() -> None:
    execution = "__flowers  v1.0__"
    assert job_name("p", execution, 1) == f"p-flowers-v1-0-{digest(execution)}-1"


def test_job_name_is_cut_to_63_characters_without_a_dangling_dash() -> None:
    long = "a" * 80
    assert job_name("imgclf-production", long, 13) == "imgclf-production-" + "a" * 33 + f"-{digest(long)}-13"
    assert len(job_name("imgclf-production", long, 13)) == 63
    execution = "a" * 32 + "-" + "b" * 40  # the cut falls just after the "-"
    name = job_name("imgclf-production", execution, 13)
    assert name == "imgclf-production-" + "a" * 32 + f"-{digest(execution)}-13"
    assert re.fullmatch(r"[A-Za-z0-9-]+", name) and "--" not in name


def test_job_name_without_room_or_readable_part_is_prefix_hash_attempt() -> None:
    assert job_name("imgclf-dev", "___", 1) == f"imgclf-dev-{digest('___')}-1"
    long_prefix = "p" * 60
    assert job_name(long_prefix, "flowers", 1) == f"{long_prefix}-{digest('flowers')}-1"


def test_job_name_changes_with_the_execution_and_the_attempt() -> None:
    names = {job_name("p", e, a) for e in ("run 1", "run-1", "run_1") for a in (1, 2)}
    assert len(names) == 6  # sanitising never merges two executions


def test_s3_channel_is_the_exact_request_shape() -> None:
    assert s3_channel("train", "s3://b/p/train/") == {
        "ChannelName": "train",
        "InputMode": "File",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": "s3://b/p/train/",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }
    assert s3_channel("train", "s3://b/p/train/", "Pipe")["InputMode"] == "Pipe"


def test_input_channels_keep_order_and_prefer_packed_channels() -> None:
    channels = input_channels(
        "data", "ds/v1/", ["validation", "train", "train_lst", "other"], "s3://code.tar.gz", {"train": "s3://p/train/"}
    )
    assert [(c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"]) for c in channels] == [
        ("train", "s3://p/train/"),  # packed: its image list (train_lst) is not sent
        ("validation", "s3://data/ds/v1/validation/"),
        ("code", "s3://code.tar.gz"),
    ]


def test_registry_metadata_makes_the_execution_valid() -> None:
    assert registry_metadata("run 1", {"report_uri": REPORT}) == {"execution": "run 1"}
    assert registry_metadata("run#1", {}) == {"execution": "run-1"}


def test_registry_metadata_refuses_a_report_uri_the_registry_cannot_record() -> None:
    bad = "s3://artifacts/validation/run#1/report.json"
    with pytest.raises(ValueError) as err:
        registry_metadata("run-1", {"report_uri": bad})
    message = str(err.value)
    assert message.startswith(f"the model registry cannot record the validation report {bad} (")
    assert "'#' not allowed" in message and "a dataset name and version are each" in message


def test_pack_plan_checks_the_registry_metadata_first() -> None:
    validation = {"report_uri": "s3://a/b#c", "channels": {"train": {"format": "recordio"}}}
    with pytest.raises(ValueError, match="cannot record the validation report"):
        pack_plan("run-1", DATASET, {}, validation, SETTINGS)


def test_pack_plan_is_the_exact_processing_request() -> None:
    validation = {"channels": {"validation": {"format": "lst"}, "train": {"format": "manifest"}}}
    hp = {"multi_label": "0"}
    got = pack_plan("run-1", {**DATASET, "descriptor": {"format": "manifest", "label_attribute": "c"}}, hp, validation,
                    SETTINGS)  # fmt: skip
    name = job_name("imgclf-dev-pack", "run-1", 1)
    output = f"s3://artifacts/packed/{name}/"

    def s3_input(input_name: str, uri: str) -> dict:
        return {
            "InputName": input_name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": f"/opt/ml/processing/input/{input_name}",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        }

    assert got == {
        "needed": True,
        "ProcessingJobName": name,
        "ProcessingInputs": [
            s3_input("dataset", "s3://data/datasets/flowers/v1/"),
            s3_input("code", "s3://assets/code/abc.tar.gz"),
        ],
        "Outputs": [
            {
                "OutputName": "packed",
                "S3Output": {"S3Uri": output, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"},
            }
        ],
        "Arguments": [
            "--input",
            "/opt/ml/processing/input/dataset",
            "--output",
            "/opt/ml/processing/output",
            "--format",
            "manifest",
            "--label-attribute",
            "c",
            "--multi-label",
            "0",
        ],  # fmt: skip
        "channels": {"train": output + "train/", "validation": output + "validation/"},
    }


def test_pack_plan_leaves_out_options_the_descriptor_does_not_set() -> None:
    validation = {"channels": {"train": {"format": "folders"}}}
    tf = dataclasses.replace(SETTINGS, backend="tensorflow")
    got = pack_plan("run-1", {"bucket": "data", "prefix": "p/"}, {}, validation, tf)
    assert got["Arguments"] == ["--input", "/opt/ml/processing/input/dataset", "--output", "/opt/ml/processing/output"]
    assert pack_plan("run-1", DATASET, {}, {}, SETTINGS) == {"needed": False, "channels": {}}


@pytest.mark.parametrize(("count", "backend", "flag"), [(2, "mxnet", "sagemaker_parameter_server_enabled"),
                         (3, "tensorflow", "sagemaker_multi_worker_mirrored_strategy_enabled")])  # fmt: skip
def test_hyperparameters_layer_config_data_and_script_mode(count: int, backend: str, flag: str) -> None:
    values = job_hyperparameters({"epochs": "5", "num_classes": "9"}, {"num_classes": "3"}, backend,
                                 "/opt/ml/input/data/code/abc.tar.gz", count)  # fmt: skip
    program = {"mxnet": "train_mxnet.py", "tensorflow": "train_tensorflow.py"}[backend]
    assert values == {
        "epochs": "5",
        "num_classes": "3",  # the data's value wins over the config's
        "sagemaker_program": json.dumps(program),
        "sagemaker_submit_directory": json.dumps("/opt/ml/input/data/code/abc.tar.gz"),
        flag: "true",
    }
    single = job_hyperparameters({}, {}, backend, "/opt/ml/input/data/code/c.tar.gz", 1)
    assert flag not in single and sorted(single) == ["sagemaker_program", "sagemaker_submit_directory"]


def test_plan_is_the_whole_dynamic_request_of_one_attempt() -> None:
    settings = dataclasses.replace(SETTINGS, instance_count=2)
    validation = {"hyperparameters": {"num_classes": "3"}, "report_uri": REPORT}
    got = plan("run 1", 2, DATASET, {"epochs": "4"}, validation, ["train", "validation"], settings,
               packed={"validation": "s3://artifacts/packed/x/validation/"})  # fmt: skip
    name = job_name("imgclf-dev", "run 1", 2)
    assert got == {
        "TrainingJobName": name,
        "HyperParameters": job_hyperparameters(
            {"epochs": "4"}, {"num_classes": "3"}, "mxnet", "/opt/ml/input/data/code/abc.tar.gz", 2
        ),
        "InputDataConfig": [
            s3_channel("train", "s3://data/datasets/flowers/v1/train/"),
            s3_channel("validation", "s3://artifacts/packed/x/validation/"),
            s3_channel("code", "s3://assets/code/abc.tar.gz"),
        ],
        "S3OutputPath": "s3://artifacts/training-jobs",
        "CheckpointS3Uri": f"s3://artifacts/checkpoints/{name}",
        "attempt": 2,
        "Metadata": {"execution": "run 1"},
    }
    assert got["HyperParameters"]["sagemaker_parameter_server_enabled"] == "true"


def test_plan_without_a_validation_report_or_packed_channels() -> None:
    got = plan("run-9", 1, DATASET, {}, {}, ["train"], SETTINGS)
    assert [c["ChannelName"] for c in got["InputDataConfig"]] == ["train", "code"]
    assert got["HyperParameters"] == job_hyperparameters({}, {}, "mxnet", "/opt/ml/input/data/code/abc.tar.gz", 1)


def test_job_name_keeps_capitals_and_x_and_cuts_after_leading_punctuation() -> None:
    assert job_name("p", "XFlowers-RunX", 1) == f"p-XFlowers-RunX-{digest('XFlowers-RunX')}-1"
    execution = "__" + "a" * 80
    assert job_name("imgclf-production", execution, 1) == "imgclf-production-" + "a" * 34 + f"-{digest(execution)}-1"
    cut = "a" * 33 + "X" + "b" * 10  # the cut ends on an "X", which stays
    assert job_name("imgclf-production", cut, 1) == "imgclf-production-" + "a" * 33 + f"X-{digest(cut)}-1"


def test_plan_refuses_a_validated_channel_without_a_folder() -> None:
    validation = {"channels": {"train": {"format": "recordio"}}}
    with pytest.raises(ValueError, match="the train channel's RecordIO files are at the dataset's root"):
        plan("run-1", 1, DATASET, {}, validation, [], SETTINGS)
    assert (
        plan("run-1", 1, DATASET, {}, validation, ["train"], SETTINGS)["InputDataConfig"][0]["ChannelName"] == "train"
    )
