"""Incremental training of the TensorFlow backend: the model channel's earlier model (its
network, classes and Keras weights) continued by a new job."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, NamedTuple, Optional

import tensorflow as tf

from .channels import earlier_model
from .errors import ClientError
from .job import TrainingJob
from .tf_model import backbone_of, build_model

log = logging.getLogger("imgclf")
KERAS_WEIGHTS = os.path.join("keras", "model.weights.h5")  # what incremental training loads


class EarlierModel(NamedTuple):
    folder: str
    hyperparameters: Dict[str, Any]
    labels: List[str]


def read_earlier_model(job: TrainingJob) -> Optional[EarlierModel]:
    """The model channel's model, for incremental training (None without a model channel)."""
    if "model" not in job.channels:
        return None
    folder = earlier_model(job.channels["model"])
    with open(os.path.join(folder, "model-info.json")) as f:
        info = json.load(f)
    if info.get("backend") != "tensorflow" or not os.path.exists(os.path.join(folder, KERAS_WEIGHTS)):
        raise ClientError(
            f"the model channel's model was not trained by this TensorFlow backend (no {KERAS_WEIGHTS}): "
            "incremental training continues a model of the same backend"
        )
    with open(os.path.join(folder, "hyperparameters.json")) as f:
        hyperparameters = json.load(f)
    return EarlierModel(folder, hyperparameters, list(info["labels"]))


def continue_network(raw: Dict[str, Any], hp: Dict[str, Any], earlier: EarlierModel) -> Dict[str, Any]:
    """Incremental training keeps the earlier network: its model_name and image_size apply
    unless set, and must be the same when set."""
    hp = dict(hp)
    for name in ("model_name", "image_size"):
        before = earlier.hyperparameters.get(name)
        if name in raw and hp[name] != before:
            raise ClientError(
                f"hyperparameter {name}: {hp[name]}, but the model channel's model was trained with {before}: "
                "incremental training continues the same network"
            )
        hp[name] = before
    return hp


def keep_top_layer(setting: str, earlier: EarlierModel, names: List[str], binary: bool) -> bool:
    """reinitialize_top_layer: True starts a new top layer, False keeps the earlier one (the
    classes must be the same), Auto keeps it when the classes are the same."""
    same = earlier.labels == names and bool(earlier.hyperparameters.get("binary_mode")) == binary
    if setting == "False" and not same:
        raise ClientError(
            f"hyperparameter reinitialize_top_layer: False, but the model channel's model has the classes "
            f"{earlier.labels} and this data {names}: set True or Auto to train a new top layer"
        )
    return setting != "True" and same


def load_earlier(model: tf.keras.Model, hp: Dict[str, Any], earlier: EarlierModel, keep_top: bool) -> None:
    """Copy the earlier model's backbone (and top layer, ``keep_top``) into ``model``."""
    previous_hp = dict(hp, binary_mode=bool(earlier.hyperparameters.get("binary_mode")))
    previous = build_model(previous_hp, len(earlier.labels), None, short_run=False)
    try:
        previous.load_weights(os.path.join(earlier.folder, KERAS_WEIGHTS))
    except Exception as err:  # noqa: BLE001 - a file of another network
        raise ClientError(
            f"the model channel's {KERAS_WEIGHTS} does not fit {hp['model_name']}: {str(err).splitlines()[0]}"
        ) from None
    backbone_of(model).set_weights(backbone_of(previous).get_weights())
    if keep_top:
        model.get_layer("top").set_weights(previous.get_layer("top").get_weights())
    log.info("Incremental training: %s the earlier top layer", "keeping" if keep_top else "reinitializing")
