"""The domain core's own rules (imgclf_core): typed hyperparameters, the run identity, the
environment contract and the S3 layout, on their own (the equivalence of the local and cloud
plans is tests/lambdas/test_plan_equivalence.py)."""

from __future__ import annotations

import dataclasses

import pytest

from image_dataset.descriptor import Descriptor
from image_training.errors import HyperparameterError
from imgclf_core import s3_layout
from imgclf_core.backends import REGISTRY, backend
from imgclf_core.environment import ContractError, GateEnvironment, PlannerEnvironment, TriggerEnvironment
from imgclf_core.plan import HyperparameterValues, check_settable, plan_run, split_ratio, stage_identity


def test_hyperparameters_are_typed_by_the_schema_with_defaults() -> None:
    values = HyperparameterValues("mxnet", {"image_shape": "3,28,28", "epochs": "7.0", "multi_label": "true"})
    assert values["image_shape"] == [3, 28, 28] and values["epochs"] == 7 and values["multi_label"] is True
    assert values["mini_batch_size"] == backend("mxnet").schema().params["mini_batch_size"].default
    assert set(values) == set(backend("mxnet").schema().params) and values.text["epochs"] == "7.0"
    with pytest.raises(HyperparameterError, match="epochs"):
        HyperparameterValues("mxnet", {"epochs": "abc"})


def test_only_a_backend_that_splits_train_has_a_split_ratio() -> None:
    assert split_ratio("mxnet", {}) == 0.0
    assert split_ratio("tensorflow", {"validation_split_ratio": "0.25"}) == 0.25
    assert [b.name for b in REGISTRY.values() if b.split_ratio] == ["tensorflow"]


@pytest.mark.parametrize("name", ["num_classes", "num_training_samples", "sagemaker_program", "no_such"])
def test_what_the_data_or_sagemaker_decide_cannot_be_set(name: str) -> None:
    with pytest.raises(HyperparameterError, match=name):
        check_settable("mxnet", {name: "3"})


def test_the_run_identity_follows_the_gate_and_ignores_the_rerun_tag_only_as_a_suffix() -> None:
    base = stage_identity("mxnet", {"where": "local"}, 0.8, 0.0)
    assert stage_identity("mxnet", {"where": "local"}, 0.9, 0.0) != base
    assert stage_identity("mxnet", {"where": "local"}, 0.8, 0.05) != base
    plan = plan_run("flowers", "v1", Descriptor(), "mxnet", {"epochs": "3"}, base)
    again = plan_run("flowers", "v1", Descriptor(), "mxnet", {"epochs": "3"}, base)
    tagged = plan_run("flowers", "v1", Descriptor(rerun="try2"), "mxnet", {"epochs": "3"}, base)
    other = plan_run("flowers", "v1", Descriptor(hyperparameters={"epochs": "4"}), "mxnet", {"epochs": "3"}, base)
    assert plan.execution == again.execution and tagged.execution == plan.execution + "_try2"
    assert other.execution != plan.execution and other.effective == {"epochs": "4"}
    assert plan.values["epochs"] == 3 and other.values["epochs"] == 4


def test_the_plan_takes_the_data_only_from_a_valid_report() -> None:
    plan = plan_run("f", "v", Descriptor(), "mxnet", {}, "s")
    report = {"valid": True, "num_classes": 4, "channels": {"train": {"samples": 40}}}
    assert plan.with_report(report).from_data == {"num_classes": "4", "num_training_samples": "40"}
    assert plan.with_report({**report, "valid": False}).from_data == {}


def test_an_environment_contract_round_trips_and_names_what_is_missing() -> None:
    env = TriggerEnvironment("arn:sm", "mxnet", {"epochs": "3"}, "abc", "arn:topic")
    assert TriggerEnvironment.from_environment(env.as_environment()) == env
    assert env.as_environment()["DEFAULT_HYPERPARAMETERS"] == '{"epochs": "3"}'
    planner = PlannerEnvironment("p", "mxnet", 2, "s3://c/x.tar.gz", "b").as_environment()
    assert PlannerEnvironment.from_environment(planner).instance_count == 2
    with pytest.raises(ContractError, match="APPROVAL_MODE of GateEnvironment"):
        GateEnvironment.from_environment(
            {"MODEL_PACKAGE_GROUP": "g", "ACCURACY_THRESHOLD": "0.8", "MAX_REGRESSION": "0"}
        )
    with pytest.raises(ContractError, match="ACCURACY_THRESHOLD='high'"):
        GateEnvironment.from_environment(
            {"MODEL_PACKAGE_GROUP": "g", "ACCURACY_THRESHOLD": "high", "MAX_REGRESSION": "0", "APPROVAL_MODE": "auto"}
        )
    assert set(GateEnvironment.names().values()) == {f.name.upper() for f in dataclasses.fields(GateEnvironment)}


@pytest.mark.parametrize(
    ("key", "found"),
    [
        ("datasets/flowers/v1/dataset.json", ("flowers", "v1", "datasets/flowers/v1/")),
        ("datasets/flowers/v1/train/a.jpg", None),
        ("elsewhere/flowers/v1/dataset.json", None),
    ],
)
def test_a_descriptor_key_names_its_dataset_version(key: str, found: object) -> None:
    upload = s3_layout.descriptor_key(key)
    assert (None if upload is None else (upload.name, upload.version, upload.prefix)) == found


@pytest.mark.parametrize(
    "key", ["datasets/flowers/dataset.json", "datasets/a/b/c/dataset.json", "datasets/../v/dataset.json"]
)
def test_a_descriptor_at_the_wrong_depth_is_refused(key: str) -> None:
    with pytest.raises(s3_layout.LayoutError):
        s3_layout.descriptor_key(key)


@pytest.mark.parametrize(("raw", "text"), [(True, "true"), (False, "false"), (3, "3"), (0.5, "0.5"), ("7", "7")])
def test_settable_values_become_the_text_sagemaker_stores(raw: object, text: str) -> None:
    name = "multi_label" if isinstance(raw, bool) else "learning_rate" if raw == 0.5 else "epochs"
    assert check_settable("mxnet", {name: raw}) == {name: text}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"sagemaker_program": "x"}, "sagemaker_program: is reserved for SageMaker and cannot be set"),
        ({"num_classes": "3"}, "num_classes: is set by the workflow from the validation report"),
        ({"epoch": "3"}, "epoch: is not a hyperparameter of the mxnet backend"),
        ({"epochs": [3]}, "epochs: [3] is not a single value"),
        ({"epochs": None}, "epochs: None is not a single value"),
        ({"epochs": {"n": 3}}, "epochs: {'n': 3} is not a single value"),
    ],
)
def test_what_may_not_be_set_is_named_with_the_reason(raw: dict, message: str) -> None:
    with pytest.raises(HyperparameterError) as caught:
        check_settable("mxnet", raw)
    assert str(caught.value) == "hyperparameter " + message


def test_validation_reads_the_typed_values_and_the_descriptor() -> None:
    from imgclf_core.plan import validation_options

    options = validation_options("mxnet", {"image_shape": "3,40,48", "resize": "44", "mini_batch_size": "8"}, {})
    assert (options.image_shape, options.resize, options.mini_batch_size, options.multi_label) == (
        (3, 40, 48),
        44,
        8,
        False,
    )
    assert options.workers == 4 and options.format is None and options.label_attribute is None
    tf = validation_options("tensorflow", {"image_size": "64"}, {"format": "manifest", "label_attribute": "tag"})
    assert (tf.image_shape, tf.resize, tf.mini_batch_size, tf.multi_label) == ((3, 64, 64), 64, 1, None)
    assert (tf.format, tf.label_attribute) == ("manifest", "tag")
    assert HyperparameterValues("tensorflow", {}).backend == "tensorflow"


def test_the_data_decide_only_what_the_backend_has_and_the_report_holds() -> None:
    from imgclf_core.plan import data_hyperparameters

    report = {"valid": True, "num_classes": 3, "channels": {"train": {"samples": 30}}}
    assert data_hyperparameters("tensorflow", report) == {"num_classes": "3"}
    assert data_hyperparameters(
        "mxnet", {"valid": True, "num_classes": None, "channels": {"train": {"samples": 5}}}
    ) == {"num_training_samples": "5"}
    assert data_hyperparameters("mxnet", {"valid": True, "num_classes": 2}) == {"num_classes": "2"}
    assert data_hyperparameters("mxnet", {"valid": True, "num_classes": 2, "channels": {}}) == {"num_classes": "2"}


def test_the_code_channel_holds_the_archive_by_its_last_name() -> None:
    from imgclf_core.plan import code_channel_path

    assert code_channel_path("s3://assets/a/b/c0de.tar.gz") == "/opt/ml/input/data/code/c0de.tar.gz"


def test_run_identities_are_stable_across_releases() -> None:
    """A changed formula would give every dataset version a new name and retrain it: pinned."""
    import hashlib
    import json

    from imgclf_core.plan import execution_name

    relevant = {
        "backend": "mxnet",
        "training": {"where": "local"},
        "gate": {"accuracy_threshold": 0.8, "max_regression": 0.0},
    }
    expected = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
    assert stage_identity("mxnet", {"where": "local"}, 0.8, 0.0) == expected
    config = {"stage": expected, "hyperparameters": {}, "descriptor": {}}
    digest = hashlib.sha256(
        json.dumps({"name": "flowers", "version": "v1", "config": config}, sort_keys=True).encode()
    ).hexdigest()[:16]
    assert execution_name("flowers", "v1", config) == f"flowers-v1-{digest}"


def test_an_unknown_backend_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError) as caught:
        backend("pytorch")
    assert str(caught.value) == "unknown backend 'pytorch' (known: mxnet, tensorflow)"


def test_an_image_shape_without_channels_leaves_the_size_to_the_data() -> None:
    from imgclf_core.plan import validation_options

    assert validation_options("mxnet", {"image_shape": "32,32"}, {}).image_shape is None


def test_the_readable_part_of_a_run_name_drops_punctuation_at_both_ends() -> None:
    from imgclf_core.plan import execution_name

    assert execution_name("-flowers-", "-v1-", {}).startswith("flowers-v1-")


def test_the_plan_keeps_its_overrides_and_reads_a_report_given_at_once() -> None:
    descriptor = Descriptor(hyperparameters={"epochs": "4"})
    report = {"valid": True, "num_classes": 2, "channels": {"train": {"samples": 8}}}
    plan = plan_run("f", "v", descriptor, "mxnet", {"epochs": "3", "resize": "32"}, "s", report)
    assert ("epochs", "4", "override") in plan.settings() and ("resize", "32", "default") in plan.settings()
    assert plan.from_data == {"num_classes": "2", "num_training_samples": "8"}
    assert ("num_classes", "2", "from the data") in plan.settings()


def test_a_contract_writes_mappings_in_a_stable_order() -> None:
    env = TriggerEnvironment("arn:sm", "mxnet", {"b": "1", "a": "2"}, "abc", "arn:topic")
    assert env.as_environment()["DEFAULT_HYPERPARAMETERS"] == '{"a": "2", "b": "1"}'
