"""The MXNet backend's hyperparameters: the built-in algorithm's names, defaults and rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from image_training import mxnet_hyperparameters
from image_training.errors import HyperparameterError
from image_training.hyperparameters import parse_cli_args

REQUIRED = {"num_classes": "10", "num_training_samples": "100"}
# the hyperparameter dictionary of AWS's Caltech-256 example notebook, values as strings
CALTECH_256 = {
    "num_layers": "18",
    "image_shape": "3,224,224",
    "num_classes": "257",
    "num_training_samples": "15420",
    "mini_batch_size": "128",
    "epochs": "2",
    "learning_rate": "0.01",
    "top_k": "2",
    "precision_dtype": "float32",
    "use_pretrained_model": "1",
}


def test_defaults_are_the_built_in_algorithms() -> None:
    hp = mxnet_hyperparameters.parse(REQUIRED)
    assert hp["epochs"] == 30 and hp["learning_rate"] == 0.1 and hp["mini_batch_size"] == 32
    assert hp["image_shape"] == [3, 224, 224] and hp["num_layers"] == 152 and hp["optimizer"] == "sgd"
    assert hp["beta_1"] == 0.9 and hp["beta_2"] == 0.999 and hp["eps"] == 1e-8 and hp["gamma"] == 0.9
    assert hp["momentum"] == 0.9 and hp["weight_decay"] == 1e-4 and hp["lr_scheduler_factor"] == 0.1
    assert hp["early_stopping"] is False and hp["early_stopping_min_epochs"] == 10
    assert hp["early_stopping_patience"] == 5 and hp["early_stopping_tolerance"] == 0.0
    assert hp["precision_dtype"] == "float32" and hp["multi_label"] is False and hp["use_pretrained_model"] is False
    for unset in ("augmentation_type", "checkpoint_frequency", "kv_store", "lr_scheduler_step", "resize", "top_k"):
        assert hp[unset] is None


def test_caltech_256_example_is_accepted_verbatim() -> None:
    hp = mxnet_hyperparameters.parse(CALTECH_256)
    assert hp["num_classes"] == 257 and hp["use_pretrained_model"] is True and hp["top_k"] == 2


def test_values_in_every_form_sagemaker_passes_them() -> None:
    hp = mxnet_hyperparameters.parse(
        {
            **REQUIRED,
            "optimizer": '"adam"',
            "epochs": 3,
            "early_stopping": "True",
            "lr_scheduler_step": "[2, 4]",
            "multi_label": "0",
        }
    )
    assert hp["optimizer"] == "adam" and hp["epochs"] == 3 and hp["early_stopping"] is True
    assert hp["lr_scheduler_step"] == [2, 4]
    assert mxnet_hyperparameters.parse({**REQUIRED, "sagemaker_program": '"train.py"', "_tuning_objective_metric": "x"})


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"num_classes": None}, "num_classes"),
        ({"num_classes": "1"}, "num_classes"),
        ({"num_training_samples": "zero"}, "num_training_samples"),
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"num_layers": "19"}, "num_layers"),
        ({"image_shape": "3,224"}, "image_shape"),
        ({"image_shape": "4,32,32"}, "image_shape"),
        ({"resize": "100", "image_shape": "3,224,224"}, "resize"),
        ({"use_pretrained_model": "1", "num_layers": "20", "image_shape": "3,224,224"}, "use_pretrained_model"),
        ({"use_pretrained_model": "1", "num_layers": "200", "image_shape": "3,224,224"}, "use_pretrained_model"),
        ({"use_pretrained_model": "1", "num_layers": "18", "image_shape": "3,32,32"}, "image_shape"),
        ({"learning_rate": "0"}, "learning_rate"),
        ({"learning_rate": "nan"}, "learning_rate"),
        ({"epochs": "2.5"}, "epochs"),
        ({"epochs": "3", "checkpoint_frequency": "5"}, "checkpoint_frequency"),
        ({"lr_scheduler_step": "20,10"}, "lr_scheduler_step"),
        ({"lr_scheduler_step": "a,b"}, "lr_scheduler_step"),
        ({"kv_store": "local"}, "kv_store"),
        ({"precision_dtype": "bfloat16"}, "precision_dtype"),
        ({"augmentation_type": "flip"}, "augmentation_type"),
        ({"multi_label": "2"}, "multi_label"),
        ({"use_weighted_loss": "1"}, "use_weighted_loss"),
        ({"top_k": "11"}, "top_k"),
        ({"beta_1": "1.5"}, "beta_1"),
        ({"weight_decay": "-1"}, "weight_decay"),
        ({"early_stopping": "maybe"}, "early_stopping"),
        ({"batch_size": "32"}, "batch_size"),
    ],
)
def test_every_invalid_value_names_the_hyperparameter(overrides, name) -> None:
    raw = {**REQUIRED, **{k: v for k, v in overrides.items() if v is not None}}
    for key, value in overrides.items():
        if value is None:
            raw.pop(key)
    with pytest.raises(HyperparameterError) as err:
        mxnet_hyperparameters.parse(raw)
    assert err.value.name == name
    assert str(err.value).startswith("hyperparameter " + name)


def test_schema_is_published_as_json() -> None:
    schema = mxnet_hyperparameters.SCHEMA.as_json()
    json.dumps(schema)
    names = [p["name"] for p in schema["hyperparameters"]]
    assert len(names) == 29 and "num_classes" in names
    filled = {p["name"]: p["from_report"] for p in schema["hyperparameters"] if "from_report" in p}
    assert filled == {"num_classes": "num_classes", "num_training_samples": "num_training_samples"}


def test_cli_args_keep_keys_exactly() -> None:
    assert parse_cli_args(["--num_classes", "3", "--image_shape", "3,32,32"]) == {
        "num_classes": "3",
        "image_shape": "3,32,32",
    }
    with pytest.raises(HyperparameterError):
        parse_cli_args(["--epochs"])


def test_docs_list_every_hyperparameter_with_its_default() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "hyperparameters.md").read_text()
    for param in mxnet_hyperparameters.SCHEMA.params.values():
        row = next((line for line in docs.splitlines() if line.startswith(f"| `{param.name}` |")), None)
        assert row is not None, param.name
        if param.default is not None and not isinstance(param.default, list):
            assert f"`{param.default}`" in row, row
