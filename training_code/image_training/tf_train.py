"""TensorFlow training with the contract of SageMaker's "Image Classification - TensorFlow":
a keras.applications network with a dropout + dense (L2) head, fine-tuned whole or top-only,
its hyperparameters and log lines, checkpoints with automatic resume, and a SavedModel whose
serving signature takes encoded image bytes (preprocessing inside the model: no skew)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from image_dataset.recordio import RecordIOReader, unpack
from image_dataset.validate import ValidationOptions

from . import tf_hyperparameters
from .data import PreparedData, clean, prepare
from .errors import ClientError
from .evaluation import label_names_for, single_label_report, write_evaluation
from .job import TrainingJob

log = logging.getLogger("imgclf")
INFERENCE_MODULES = ("__init__.py", "serving.py", "tf_inference.py")


def records(rec: str) -> Iterator[Tuple[bytes, int]]:
    """(encoded image, class id) of every record of a .rec file, streamed."""
    with open(rec, "rb") as f:
        for _, record in RecordIOReader(f, os.path.basename(rec)):
            header, image = unpack(record)
            label = header.label if not isinstance(header.label, tuple) else header.label[0]
            yield image, int(label)


def make_preprocess(size: int, interpolation: str) -> Any:
    """Encoded image bytes -> a float32 size x size x 3 tensor in [0, 255]. The same function
    feeds training, validation and the serving signature."""

    def preprocess(data: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(image, (size, size), method=interpolation)
        return tf.ensure_shape(tf.cast(image, tf.float32), (size, size, 3))

    return preprocess


def dataset(rec: str, hp: Dict[str, Any], num_classes: int, train: bool) -> tf.data.Dataset:
    preprocess = make_preprocess(hp["image_size"], hp["image_resize_interpolation"])
    data = tf.data.Dataset.from_generator(
        lambda: records(rec), output_signature=(tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int32))
    )
    if train:
        data = data.shuffle(2048, reshuffle_each_iteration=True)
    data = data.map(lambda x, y: (preprocess(x), tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)
    data = data.batch(hp["batch_size"])
    if train and hp["augmentation"]:
        augment = augmentation(hp)
        data = data.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def augmentation(hp: Dict[str, Any]) -> tf.keras.Sequential:
    """The TF algorithm's augmentation: random flip, rotation and zoom of training batches."""
    layers: List[tf.keras.layers.Layer] = []
    if hp["augmentation_random_flip"] != "None":
        layers.append(tf.keras.layers.RandomFlip(hp["augmentation_random_flip"]))
    if hp["augmentation_random_rotation"] > 0:
        layers.append(tf.keras.layers.RandomRotation(hp["augmentation_random_rotation"]))
    if hp["augmentation_random_zoom"] > 0:
        layers.append(tf.keras.layers.RandomZoom(hp["augmentation_random_zoom"]))
    return tf.keras.Sequential(layers)


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


def build_model(job: TrainingJob, hp: Dict[str, Any], num_classes: int, steps: int) -> tf.keras.Model:
    """Backbone (ImageNet weights or random) + dropout + dense with L2."""
    builder_name, _ = tf_hyperparameters.MODELS[hp["model_name"]]
    builder = getattr(tf.keras.applications, builder_name)
    size = hp["image_size"]
    weights: Optional[str] = None
    if hp["use_pretrained_model"]:
        if "pretrained" in job.channels:
            found = [
                os.path.join(r, n)
                for r, _, ns in os.walk(job.channels["pretrained"], followlinks=True)
                for n in ns
                if n.endswith((".h5", ".keras", ".weights.h5"))
            ]
            if len(found) != 1:
                raise ClientError(f"the pretrained channel must hold one .weights.h5 file, found {len(found)}")
            weights = found[0]
        else:
            weights = "imagenet"
    inputs = tf.keras.Input((size, size, 3), name="image")
    try:
        backbone = builder(
            include_top=False,
            weights=None if weights and weights != "imagenet" else weights,
            input_shape=(size, size, 3),
            pooling="avg",
        )
        if weights and weights != "imagenet":
            backbone.load_weights(weights)
    except Exception as err:  # noqa: BLE001 - no internet, or a file of another network
        raise ClientError(
            "cannot load ImageNet weights for {}: {}".format(hp["model_name"], str(err).splitlines()[0])
        ) from None
    if hp["train_only_top_layer"]:
        backbone.trainable = False
    if not hp["use_pretrained_model"] and steps * hp["epochs"] < 5000:
        # few optimisation steps: BatchNorm's moving statistics (momentum 0.99) would not
        # converge and validation would score near chance; follow the batches faster
        for layer in backbone.layers:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                layer.momentum = 0.9
    x = backbone(inputs, training=not hp["train_only_top_layer"])
    x = tf.keras.layers.Dropout(hp["dropout_rate"])(x)
    outputs = tf.keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=tf.keras.regularizers.l2(hp["regularizers_l2"]),
        name="top",
    )(x)
    return tf.keras.Model(inputs, outputs)


class EpochLog(tf.keras.callbacks.Callback):
    """The TF algorithm's metric lines: '- loss: 0.3 - accuracy: 0.9 - val_loss: ... - val_accuracy: ...'."""

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, float]] = None) -> None:
        parts = " ".join(f"- {k}: {v:.4f}" for k, v in (logs or {}).items() if not k.startswith("learning"))
        log.info("Epoch %d/%d %s", epoch + 1, self.params.get("epochs", 0), parts)


def export(
    model: tf.keras.Model, job: TrainingJob, hp: Dict[str, Any], names: List[str], report: Dict[str, Any]
) -> None:
    """SavedModel in 1/ with a signature on encoded bytes, plus labels, evaluation and code/."""
    preprocess = make_preprocess(hp["image_size"], hp["image_resize_interpolation"])

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes: tf.Tensor) -> Dict[str, tf.Tensor]:
            images = tf.map_fn(preprocess, image_bytes, fn_output_signature=tf.float32)
            return {"probabilities": self.model(images, training=False)}

    module = Serving()
    folder = os.path.join(job.model_dir, "1")
    tf.saved_model.save(module, folder, signatures={"serving_default": module.serve})
    info = {
        "backend": "tensorflow",
        "saved_model": "1",
        "labels": names,
        "image_size": hp["image_size"],
        "top_k": min(5, len(names)),
        "multi_label": False,
    }
    for name, content in (("model-info.json", info), ("labels.json", names), ("hyperparameters.json", hp)):
        with open(os.path.join(job.model_dir, name), "w") as f:
            json.dump(content, f, indent=2)
    code = os.path.join(job.model_dir, "code", "image_training")
    os.makedirs(code, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    for name in INFERENCE_MODULES:
        shutil.copyfile(os.path.join(here, name), os.path.join(code, name))
    with open(os.path.join(job.model_dir, "code", "inference.py"), "w") as f:
        f.write(
            '"""Inference handlers of this model (imgclf): TF Serving\'s and model_fn/... for imgclf serve."""\n'
            "from image_training.tf_inference import input_fn, input_handler, model_fn, output_fn, output_handler, predict_fn  # noqa: F401\n"
        )
    write_evaluation(report, job.model_dir)


def train(job: TrainingJob, hp: Dict[str, Any], data: PreparedData) -> Dict[str, Any]:
    num_classes = max(data.num_classes, hp["num_classes"] or 0)
    steps = max(1, -(-data.train.samples // hp["batch_size"]))
    train_data = dataset(data.train.rec, hp, num_classes, True)
    val_data = dataset(data.validation.rec, hp, num_classes, False)
    model = build_model(job, hp, num_classes, steps)
    model.compile(
        optimizer=optimizer(hp),
        loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=hp["label_smoothing"]),
        metrics=["accuracy"],
    )
    callbacks: List[tf.keras.callbacks.Callback] = [
        tf.keras.callbacks.BackupAndRestore(os.path.join(job.checkpoint_dir, "backup")),
        EpochLog(),
    ]
    if hp["early_stopping"]:
        callbacks.append(
            tf.keras.callbacks.EarlyStopping(
                monitor="val_loss",
                min_delta=hp["early_stopping_min_delta"],
                patience=hp["early_stopping_patience"],
                restore_best_weights=True,
            )
        )
    log.info(
        "Training %s (%s) at %dx%d on %d images",
        hp["model_name"],
        "ImageNet weights" if hp["use_pretrained_model"] else "from scratch",
        hp["image_size"],
        hp["image_size"],
        data.train.samples,
    )
    model.fit(train_data, validation_data=val_data, epochs=hp["epochs"], callbacks=callbacks, verbose=2)
    scores = model.predict(val_data, verbose=0)
    labels = np.array([label for _, label in records(data.validation.rec)])
    loss = float(tf.keras.losses.CategoricalCrossentropy()(tf.one_hot(labels, num_classes), scores))
    names = label_names_for(num_classes, data.label_names)
    report = single_label_report(scores, labels, names, loss, None, best_epoch=None)
    export(model, job, hp, names, report)
    return report


def main(argv: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    job = TrainingJob.from_environment(argv)
    hp = tf_hyperparameters.parse(job.hyperparameters)
    for name, unsupported, what in (
        ("binary_mode", hp["binary_mode"], "a single sigmoid output"),
        ("eval_metric", hp["eval_metric"] != "accuracy", "metrics other than accuracy"),
    ):
        if unsupported:
            raise ClientError(f"hyperparameter {name}: {what} is not available in this version yet")
    if "model" in job.channels:
        raise ClientError("the model channel: incremental training is not available in the TensorFlow backend yet")
    if len(job.hosts) > 1:
        raise ClientError(f"training on {len(job.hosts)} instances is not available in the TensorFlow backend yet")
    size = hp["image_size"]
    options = ValidationOptions(
        num_classes=hp["num_classes"], image_shape=(3, size, size), resize=size, mini_batch_size=1
    )
    work_dir = tempfile.mkdtemp(prefix="imgclf-data-")
    try:
        data = prepare(job, options, work_dir)
        if hp["num_classes"] is not None and data.num_classes > hp["num_classes"]:
            raise ClientError(
                "hyperparameter num_classes: {} but the labels reach class {}".format(
                    hp["num_classes"], data.num_classes - 1
                )
            )
        report = train(job, hp, data)
        write_evaluation(report, job.output_data_dir)
        log.info("Validation accuracy %.4f", report["accuracy"])
    finally:
        clean(work_dir)
