"""Rules of the hyperparameter wiring checked on their own (image_training.hyperparameters,
tf_hyperparameters): booleans, the toolkit's command line, the published schema and the
TensorFlow backend's cross-parameter rules. Main environment only: no framework is imported."""

from __future__ import annotations

import pytest

from image_training import mxnet_hyperparameters, tf_hyperparameters
from image_training.errors import HyperparameterError
from image_training.hyperparameters import Param, parse_cli_args

REQUIRED = {"num_classes": "10", "num_training_samples": "100"}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("true", True), (" TRUE ", True), ("1.0", True), ("0", False), ("false", False),
     ("False", False), ("0.0", False)],
)  # fmt: skip
def test_boolean_spellings(text: str, value: bool) -> None:
    assert mxnet_hyperparameters.parse(dict(REQUIRED, early_stopping=text))["early_stopping"] is value


@pytest.mark.parametrize("text", ["yes", "2", "0.5", "truee"])
def test_other_boolean_spellings_are_refused(text: str) -> None:
    with pytest.raises(HyperparameterError) as err:
        mxnet_hyperparameters.parse(dict(REQUIRED, early_stopping=text))
    assert err.value.name == "early_stopping"


def test_cli_args_are_name_value_pairs() -> None:
    assert parse_cli_args(["--epochs", "3", "--top_k", "2"]) == {"epochs": "3", "top_k": "2"}
    assert parse_cli_args([]) == {}


def test_cli_args_errors_name_the_argument() -> None:
    with pytest.raises(HyperparameterError) as err:
        parse_cli_args(["epochs", "3"])
    assert (err.value.name, str(err.value)) == ("epochs", "hyperparameter epochs: expected --name value arguments")
    with pytest.raises(HyperparameterError) as err:
        parse_cli_args(["--epochs", "3", "--top_k"])
    assert (err.value.name, str(err.value)) == ("top_k", "hyperparameter top_k: has no value")


def test_param_as_dict_is_the_published_schema_entry() -> None:
    choice = Param("optimizer", "str", "sgd", "The optimizer.", choices=("sgd", "adam"))
    assert choice.as_dict() == {
        "name": "optimizer",
        "type": "str",
        "default": "sgd",
        "description": "The optimizer.",
        "required": False,
        "choices": ["sgd", "adam"],
    }
    required = Param("num_classes", "int", None, "Classes.", required=True, minimum=2)
    assert required.as_dict() == {
        "name": "num_classes",
        "type": "int",
        "description": "Classes.",
        "required": True,
        "minimum": 2,
    }


def test_schema_as_json_lists_every_parameter_of_the_backend() -> None:
    for schema in (mxnet_hyperparameters.SCHEMA, tf_hyperparameters.SCHEMA):
        published = schema.as_json()
        assert published["backend"] == schema.backend and schema.backend in ("mxnet", "tensorflow")
        assert [p["name"] for p in published["hyperparameters"]] == list(schema.params)
        assert published["hyperparameters"] == [p.as_dict() for p in schema.params.values()]


def test_tf_train_only_top_layer_needs_a_pretrained_model() -> None:
    with pytest.raises(HyperparameterError) as err:
        tf_hyperparameters.parse({"train_only_top_layer": "1", "use_pretrained_model": "0"})
    assert str(err.value) == (
        "hyperparameter train_only_top_layer: needs use_pretrained_model=1: a random network has nothing to keep"
    )
    assert tf_hyperparameters.parse({"train_only_top_layer": "1", "use_pretrained_model": "1"})["train_only_top_layer"]
    assert not tf_hyperparameters.parse({"train_only_top_layer": "0", "use_pretrained_model": "0"})[
        "train_only_top_layer"
    ]


def test_tf_image_size_has_the_model_s_minimum() -> None:
    assert tf_hyperparameters.parse({"model_name": "inception_v3", "image_size": "75"})["image_size"] == 75
    with pytest.raises(HyperparameterError) as err:
        tf_hyperparameters.parse({"model_name": "inception_v3", "image_size": "74"})
    assert str(err.value) == "hyperparameter image_size: inception_v3 needs at least 75 pixels"
    assert tf_hyperparameters.parse({"model_name": "mobilenet_v2", "image_size": "32"})["image_size"] == 32


@pytest.mark.parametrize(
    ("extra", "name", "message"),
    [
        ({"image_shape": "2,32,32"}, "image_shape", "2,32,32 is not num_channels,height,width with 1 or 3 channels"),
        ({"image_shape": "3,0,32"}, "image_shape", "3,0,32 is not num_channels,height,width with 1 or 3 channels"),
        ({"image_shape": "3,32"}, "image_shape", "3,32 is not num_channels,height,width with 1 or 3 channels"),
        ({"image_shape": "3,40,48", "resize": "47"}, "resize",
         "47 is smaller than image_shape 40x48: the crop would not fit"),
        ({"image_shape": "3,48,40", "resize": "47"}, "resize",
         "47 is smaller than image_shape 48x40: the crop would not fit"),
        ({"use_pretrained_model": "1", "num_layers": "20"}, "use_pretrained_model",
         "ImageNet weights exist for num_layers 18, 34, 50, 101, 152 only, not 20"),
        ({"use_pretrained_model": "1", "num_layers": "18", "image_shape": "3,112,112"}, "image_shape",
         "pretrained networks take 3,224,224, not 3,112,112"),
        ({"epochs": "4", "checkpoint_frequency": "5"}, "checkpoint_frequency", "5 is more than epochs 4"),
        ({"lr_scheduler_step": "4,2"}, "lr_scheduler_step", "epochs 4,2 must increase"),
        ({"lr_scheduler_step": "2,2"}, "lr_scheduler_step", "epochs 2,2 must increase"),
        ({"top_k": "11"}, "top_k", "11 is more than num_classes 10"),
        ({"use_weighted_loss": "1"}, "use_weighted_loss", "applies to multi-label training only (multi_label=1)"),
    ],
)  # fmt: skip
def test_mxnet_cross_parameter_rules_say_what_is_wrong(extra: dict, name: str, message: str) -> None:
    with pytest.raises(HyperparameterError) as err:
        mxnet_hyperparameters.parse(dict(REQUIRED, **extra))
    assert (err.value.name, str(err.value)) == (name, f"hyperparameter {name}: {message}")


@pytest.mark.parametrize(
    "extra",
    [{"image_shape": "1,28,28"}, {"image_shape": "3,40,48", "resize": "48"}, {"epochs": "4", "checkpoint_frequency": "4"},
     {"lr_scheduler_step": "2,4"}, {"top_k": "10"}, {"use_weighted_loss": "1", "multi_label": "1"},
     {"use_pretrained_model": "1", "num_layers": "50", "image_shape": "3,224,224"}],
)  # fmt: skip
def test_mxnet_values_at_the_edges_of_the_rules_are_accepted(extra: dict) -> None:
    mxnet_hyperparameters.parse(dict(REQUIRED, **extra))


@pytest.mark.parametrize(
    ("value", "parsed"),
    [('"sgd"', "sgd"), ("sgd", "sgd"), ('"', None), ('"nag', None), ('"[1]"', None)],
)
def test_json_encoded_strings_are_decoded_as_the_sdk_writes_them(value: str, parsed) -> None:
    if parsed is None:
        with pytest.raises(HyperparameterError):
            mxnet_hyperparameters.parse(dict(REQUIRED, optimizer=value))
    else:
        assert mxnet_hyperparameters.parse(dict(REQUIRED, optimizer=value))["optimizer"] == parsed


def test_values_the_toolkit_already_decoded() -> None:
    hp = mxnet_hyperparameters.parse(
        {"num_classes": 10, "num_training_samples": 100, "early_stopping": True, "multi_label": False,
         "image_shape": [3, 32, 32], "lr_scheduler_step": (2, 4), "learning_rate": 0.5}
    )  # fmt: skip
    assert (hp["num_classes"], hp["early_stopping"], hp["multi_label"]) == (10, True, False)
    assert (hp["image_shape"], hp["lr_scheduler_step"], hp["learning_rate"]) == ([3, 32, 32], [2, 4], 0.5)


def test_schema_errors_name_the_choices_the_minimum_and_the_known_names() -> None:
    with pytest.raises(HyperparameterError) as err:
        mxnet_hyperparameters.parse(dict(REQUIRED, optimizer="adamw"))
    assert str(err.value) == "hyperparameter optimizer: 'adamw' is not one of sgd, adam, rmsprop, nag"
    with pytest.raises(HyperparameterError) as err:
        mxnet_hyperparameters.parse(dict(REQUIRED, lr_scheduler_step="2,0"))
    assert str(err.value) == "hyperparameter lr_scheduler_step: 0 is below the minimum 1"
    with pytest.raises(HyperparameterError) as err:
        tf_hyperparameters.parse({"epochz": "3"})
    assert err.value.name == "epochz"
    assert str(err.value).startswith(
        "hyperparameter epochz: is not a hyperparameter of the tensorflow backend (known: "
    )
    assert ", ".join(sorted(tf_hyperparameters.SCHEMA.params)) in str(err.value)
