"""The quality gate (imgclf_core.gate) and the run name (imgclf_core.plan.execution_name),
each checked on its own: boundaries, reasons, and the exact names that replays depend on."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from imgclf_core.gate import GateDecision, approval_status, decide
from imgclf_core.plan import execution_name
from lambdas.gate.logic import evaluation_from_output
from lambdas.trigger.logic import Rejected, parse_upload, workflow_input
from tests.builders import tar_gz


# -- the gate ---------------------------------------------------------------------------------
def test_accuracy_at_the_threshold_passes_and_just_below_fails() -> None:
    assert decide({"accuracy": 0.8}, 0.8) == GateDecision(True, "accuracy 0.8000 >= threshold 0.8000")
    assert decide({"accuracy": 0.7999}, 0.8) == GateDecision(False, "accuracy 0.7999 is below the threshold 0.8000")


def test_a_missing_accuracy_counts_as_zero() -> None:
    assert decide({}, 0.5) == GateDecision(False, "accuracy 0.0000 is below the threshold 0.5000")
    assert decide({}, 0.0) == GateDecision(True, "accuracy 0.0000 >= threshold 0.0000")


def test_the_approved_model_is_the_second_bar() -> None:
    assert decide({"accuracy": 0.9}, 0.8, {"accuracy": 0.9}) == GateDecision(
        True, "accuracy 0.9000 >= threshold 0.8000 and >= the approved model's 0.9000"
    )
    assert decide({"accuracy": 0.89}, 0.8, {"accuracy": 0.9}) == GateDecision(
        False, "accuracy 0.8900 is below the approved model's 0.9000"
    )


def test_the_tolerance_lowers_the_second_bar_only() -> None:
    assert decide({"accuracy": 0.88}, 0.8, {"accuracy": 0.9}, tolerance=0.02).approved
    assert not decide({"accuracy": 0.87}, 0.8, {"accuracy": 0.9}, tolerance=0.02).approved
    assert not decide({"accuracy": 0.79}, 0.8, {"accuracy": 0.5}, tolerance=0.5).approved  # threshold stays


def test_an_approved_model_without_accuracy_counts_as_zero() -> None:
    assert decide({"accuracy": 0.01}, 0.0, {}) == GateDecision(
        True, "accuracy 0.0100 >= threshold 0.0000 and >= the approved model's 0.0000"
    )


@pytest.mark.parametrize(
    ("approved", "mode", "status"),
    [(True, "auto", "Approved"), (True, "manual", "PendingManualApproval"), (False, "auto", "Rejected"),
     (False, "manual", "Rejected")],
)  # fmt: skip
def test_approval_status(approved: bool, mode: str, status: str) -> None:
    assert approval_status(GateDecision(approved, "why"), mode) == status



@pytest.mark.parametrize("name", ["evaluation.json", "./evaluation.json"])
def test_evaluation_is_read_from_the_job_output(name: str) -> None:
    data = tar_gz({"model/other.json": b"{}", name: json.dumps({"accuracy": 0.93}).encode()})
    assert evaluation_from_output(data) == {"accuracy": 0.93}


def test_evaluation_in_a_subfolder_does_not_count() -> None:
    with pytest.raises(ValueError, match=r"^the training job left no evaluation.json in output.tar.gz$"):
        evaluation_from_output(tar_gz({"data/evaluation.json": b"{}", "evaluation.json.bak": b"{}"}))


def test_an_output_that_is_not_a_gzip_tar_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^output.tar.gz cannot be read: "):
        evaluation_from_output(b"not a tar")
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:  # not gzip-compressed
        info = tarfile.TarInfo("evaluation.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(ValueError, match="cannot be read"):
        evaluation_from_output(plain.getvalue())


# -- the run name -----------------------------------------------------------------------------
CONFIG = {"b": 1, "a": [2, 3]}  # keys out of order: the hash is over sorted keys


def test_run_names_are_stable_across_releases() -> None:
    """Replayed S3 events after an upgrade must map to the run they started: these are golden."""
    assert execution_name("flowers", "v1", CONFIG) == "flowers-v1-d135d7296af0cfbb"
    assert execution_name("flowers", "v1", {"a": [2, 3], "b": 1}) == "flowers-v1-d135d7296af0cfbb"
    assert execution_name("my flowers!", "2024.01", CONFIG, "again") == "my-flowers-2024-01-79f8b16824835a02_again"


def test_run_names_without_a_readable_part_or_with_a_long_name() -> None:
    assert execution_name("--", "__", {}) == "dataset-c4539f432ad196b9"
    long = execution_name("x" * 100, "v" * 10, {})
    assert long == "x" * 63 + "-ec38ef7c32ccb995" and len(long) == 80


def test_the_name_and_the_version_both_count() -> None:
    names = {
        execution_name("a b", "v1", {}),
        execution_name("a-b", "v1", {}),
        execution_name("a b", "v1 ", {}),
        execution_name("a", "b v1", {}),
    }
    assert len(names) == 4 and all(n.startswith(("a-b-v1-", "a-b-v1-")) for n in names)


# -- the workflow input -----------------------------------------------------------------------
def test_workflow_input_is_the_exact_execution_request() -> None:
    upload = parse_upload("data", "datasets/flowers/v1/dataset.json")
    assert upload is not None and upload.prefix == "datasets/flowers/v1/"
    descriptor = {
        "format": "manifest",
        "label_attribute": "class",
        "hyperparameters": {"epochs": "3"},
        "rerun": "again",
    }
    got = workflow_input(upload, json.dumps(descriptor).encode(), "mxnet", {"epochs": "1", "num_layers": "18"}, "abc")
    assert got == {
        "name": "flowers-v1-91df9af130f5fe27_again",  # golden: the run of this version under this config
        "input": {
            "dataset": {
                "bucket": "data",
                "prefix": "datasets/flowers/v1/",
                "name": "flowers",
                "version": "v1",
                "descriptor": descriptor,
            },
            "hyperparameters": {"epochs": "3", "num_layers": "18"},
        },
    }


def test_the_rerun_tag_is_not_part_of_the_configuration_hash() -> None:
    upload = parse_upload("data", "datasets/flowers/v1/dataset.json")
    assert upload is not None
    plain = workflow_input(upload, b"{}", "mxnet", {}, "abc")["name"]
    tagged = workflow_input(upload, json.dumps({"rerun": "again"}).encode(), "mxnet", {}, "abc")["name"]
    assert plain == "flowers-v1-bacf002585ce910c" and tagged == plain + "_again"
    other_stage = workflow_input(upload, b"{}", "mxnet", {}, "abd")["name"]
    other_defaults = workflow_input(upload, b"{}", "mxnet", {"epochs": "2"}, "abc")["name"]
    assert len({plain, other_stage, other_defaults}) == 3


@pytest.mark.parametrize("key", ["datasets/./v1/dataset.json", "datasets/a/../dataset.json", "datasets/a//dataset.json",
                                 "datasets/a/b/c/dataset.json"])  # fmt: skip
def test_descriptor_keys_outside_name_and_version_are_rejected(key: str) -> None:
    with pytest.raises(Rejected) as err:
        parse_upload("data", key)
    assert str(err.value) == f"s3://data/{key}: a descriptor must sit at datasets/<name>/<version>/dataset.json"


def test_keys_that_are_no_descriptor_are_ignored() -> None:
    assert parse_upload("data", "datasets/a/v1/train/x.jpg") is None
    assert parse_upload("data", "other/a/v1/dataset.json") is None
    assert parse_upload("data", "datasets/a/v1/xdataset.json") is None


def test_run_names_keep_x_and_drop_a_dash_at_the_cut() -> None:
    assert execution_name("Xflowers X", "Xv1X", {}).startswith("Xflowers-X-Xv1X-")
    assert execution_name("x" * 62 + "-y", "v", {}) == "x" * 62 + "-f3ee1a8acfe45881"  # the cut left a "-"
