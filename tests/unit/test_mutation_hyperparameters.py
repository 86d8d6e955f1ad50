"""hyperparameters: an empty value (``""``, blanks, or the SDK's JSON-encoded empty string
``'""'``) means "not set": the default, or "is required" for a required parameter; the
messages for a value of the wrong type and one above its maximum, which name the parameter and
the bound; a maximum is inclusive; a schema built from a table knows its backend's name and its
parameters (the tables of the backends are built when their modules are imported, so a schema
is built here too).

Survivors judged EQUIVALENT (no test can tell them apart):

- ``_text``: ``decoded if isinstance(decoded, str) or True``: the value starts and ends with
  ``"``, so a JSON document that decodes from it is always a string.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import pytest

from image_training import mxnet_hyperparameters
from image_training.errors import HyperparameterError
from image_training.hyperparameters import Param, Schema

REQUIRED = {"num_classes": "10", "num_training_samples": "100"}


def refused(call: Callable[[], Any]) -> HyperparameterError:
    with pytest.raises(HyperparameterError) as err:
        call()
    return err.value


@pytest.mark.parametrize("empty", ["", "   ", '""', '" "'])
def test_an_empty_value_means_the_default(empty: str) -> None:
    hp = mxnet_hyperparameters.parse(dict(REQUIRED, epochs=empty, optimizer=empty, learning_rate=empty))
    assert (hp["epochs"], hp["optimizer"], hp["learning_rate"]) == (30, "sgd", 0.1)


@pytest.mark.parametrize("empty", [None, "", '""'])
def test_a_required_parameter_left_out_or_empty_is_required(empty: Optional[str]) -> None:
    raw = {"num_training_samples": "100"} if empty is None else dict(REQUIRED, num_classes=empty)
    err = refused(lambda: mxnet_hyperparameters.parse(raw))
    assert (err.name, str(err)) == ("num_classes", "hyperparameter num_classes: is required")


def test_a_value_of_the_wrong_type_names_the_parameter_and_the_type() -> None:
    err = refused(lambda: mxnet_hyperparameters.parse(dict(REQUIRED, epochs="three")))
    assert (err.name, str(err)) == ("epochs", "hyperparameter epochs: 'three' is not an integer")
    err = refused(lambda: mxnet_hyperparameters.parse(dict(REQUIRED, learning_rate='"fast"')))
    assert str(err) == "hyperparameter learning_rate: 'fast' is not a number"


def test_the_maximum_is_allowed_and_a_value_above_it_names_it() -> None:
    assert mxnet_hyperparameters.parse(dict(REQUIRED, beta_1="1", learning_rate="1.0"))["beta_1"] == 1.0
    err = refused(lambda: mxnet_hyperparameters.parse(dict(REQUIRED, beta_1="1.5")))
    assert (err.name, str(err)) == ("beta_1", "hyperparameter beta_1: 1.5 is above the maximum 1.0")


def test_a_schema_built_from_a_table_parses_with_it() -> None:
    schema = Schema(
        "demo",
        [Param("epochs", "int", 3, "Epochs.", minimum=1, maximum=10), Param("model", "str", None, "", required=True)],
    )
    assert schema.backend == "demo"
    assert schema.parse({"model": '"resnet"'}) == {"epochs": 3, "model": "resnet"}
    assert schema.parse({"model": "m", "epochs": "10"}) == {"epochs": 10, "model": "m"}
    err = refused(lambda: schema.parse({"model": "m", "epoch": "2"}))
    assert str(err) == "hyperparameter epoch: is not a hyperparameter of the demo backend (known: epochs, model)"
