"""The TensorFlow backend's network and what model.compile() takes: a keras.applications
backbone with a dropout + dense (L2) head, the optimizer, the loss and the metrics of the
hyperparameters; and the BatchNorm statistics re-estimated after a short run."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import tensorflow as tf

from . import tf_hyperparameters
from .channels import single_file
from .errors import ClientError
from .job import TrainingJob


def optimizer(hp: Dict[str, Any]) -> tf.keras.optimizers.Optimizer:
    lr, name = hp["learning_rate"], hp["optimizer"]
    if name == "adam":
        return tf.keras.optimizers.Adam(lr, beta_1=hp["beta_1"], beta_2=hp["beta_2"], epsilon=hp["epsilon"])
    if name in ("sgd", "nesterov"):
        return tf.keras.optimizers.SGD(lr, momentum=hp["momentum"], nesterov=name == "nesterov")
    if name == "rmsprop":
        return tf.keras.optimizers.RMSprop(lr, rho=hp["rho"], momentum=hp["momentum"], epsilon=hp["epsilon"])
    if name == "adagrad":
        return tf.keras.optimizers.Adagrad(
            lr, initial_accumulator_value=hp["initial_accumulator_value"], epsilon=hp["epsilon"]
        )
    return tf.keras.optimizers.Adadelta(lr, rho=hp["rho"], epsilon=hp["epsilon"])


def eval_metric(hp: Dict[str, Any]) -> tf.keras.metrics.Metric:
    """The eval_metric hyperparameter as a Keras metric (logged as val_<name>)."""
    name = hp["eval_metric"]
    if name == "accuracy":
        return (
            tf.keras.metrics.BinaryAccuracy(name=name)
            if hp["binary_mode"]
            else tf.keras.metrics.CategoricalAccuracy(name=name)
        )
    metric = {"precision": tf.keras.metrics.Precision, "recall": tf.keras.metrics.Recall, "auc": tf.keras.metrics.AUC}
    return metric[name](name=name)


def metrics_for(hp: Dict[str, Any]) -> List[tf.keras.metrics.Metric]:
    """What training reports each epoch: accuracy, and the eval_metric when it is another."""
    metrics = [eval_metric(dict(hp, eval_metric="accuracy"))]
    if hp["eval_metric"] != "accuracy":
        metrics.append(eval_metric(hp))
    return metrics


def loss_function(hp: Dict[str, Any], smoothing: float) -> tf.keras.losses.Loss:
    if hp["binary_mode"]:
        return tf.keras.losses.BinaryCrossentropy(label_smoothing=smoothing)
    return tf.keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)


def backbone_weights(job: TrainingJob, hp: Dict[str, Any]) -> Optional[str]:
    """Where the network's first weights come from: None (random, or an earlier model loaded
    afterwards), the pretrained channel's file, or "imagenet" (Keras' download)."""
    if not hp["use_pretrained_model"] or "model" in job.channels:
        return None
    if "pretrained" in job.channels:
        return single_file(job.channels["pretrained"], (".h5", ".keras"), "pretrained")
    return "imagenet"


def build_model(hp: Dict[str, Any], num_classes: int, weights: Optional[str], short_run: bool) -> tf.keras.Model:
    """Backbone + dropout + dense with L2: softmax over the classes, or one sigmoid (binary_mode)."""
    builder = getattr(tf.keras.applications, tf_hyperparameters.MODELS[hp["model_name"]][0])
    size = hp["image_size"]
    inputs = tf.keras.Input((size, size, 3), name="image")
    try:
        backbone = builder(
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=(size, size, 3),
            pooling="avg",
        )
        if weights and weights != "imagenet":
            backbone.load_weights(weights)
    except Exception as err:  # noqa: BLE001 - no internet, or a file of another network
        raise ClientError(
            "cannot load ImageNet weights for {} from {}: {}".format(
                hp["model_name"], os.path.basename(weights or ""), str(err).splitlines()[0]
            )
        ) from None
    if hp["train_only_top_layer"]:
        backbone.trainable = False
    if short_run:
        # few optimisation steps: BatchNorm's moving statistics (momentum 0.99) would not
        # converge and validation would score near chance; follow the batches faster
        for layer in backbone.layers:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                layer.momentum = 0.9
    x = backbone(inputs, training=not hp["train_only_top_layer"])
    x = tf.keras.layers.Dropout(hp["dropout_rate"])(x)
    binary = hp["binary_mode"]
    outputs = tf.keras.layers.Dense(
        1 if binary else num_classes,
        activation="sigmoid" if binary else "softmax",
        kernel_regularizer=tf.keras.regularizers.l2(hp["regularizers_l2"]),
        dtype="float32",  # probabilities in float32 under mixed precision too
        name="top",
    )(x)
    return tf.keras.Model(inputs, outputs)


def backbone_of(model: tf.keras.Model) -> tf.keras.Model:
    return next(layer for layer in model.layers if isinstance(layer, tf.keras.Model))


def recalibrate_batchnorm(model: tf.keras.Model, batches: tf.data.Dataset, limit: int = 100) -> int:
    """Re-estimate every BatchNorm's moving statistics as the plain mean of the statistics of up
    to ``limit`` training batches ("precise BN"). After a short run the moving averages still
    lag the weights, and validation would score near chance while training accuracy is high.
    Returns the number of batches used."""
    backbone = backbone_of(model)
    layers = [layer for layer in backbone.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    used = 0
    try:
        for used, (images, _) in enumerate(batches.take(limit), start=1):
            for layer in layers:
                layer.momentum = (used - 1) / used  # the running mean of the batch statistics
            backbone(images, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return used
