"""TensorFlow training with the contract of SageMaker's "Image Classification - TensorFlow":
a keras.applications network with a dropout + dense (L2) head, fine-tuned whole or top-only or
continued from an earlier model, its hyperparameters and log lines, one replica per GPU (or
per worker across hosts), mixed precision on GPUs, checkpoints with automatic resume, and a
SavedModel whose serving signature takes encoded image bytes (preprocessing inside the model)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from image_dataset.validate import ValidationOptions
from imgclf_core.backends import TENSORFLOW

from . import tf_hyperparameters
from .channels import earlier_model, single_file
from .data import PreparedData, clean, prepare
from .errors import ClientError
from .evaluation import label_names_for, single_label_report, write_evaluation
from .job import TrainingJob
from .serving import copy_inference_code
from .tf_data import dataset, make_preprocess

log = logging.getLogger("imgclf")
KERAS_WEIGHTS = os.path.join("keras", "model.weights.h5")  # what incremental training loads
SHORT_RUN_STEPS = 5000  # below this many optimisation steps, BatchNorm follows batches faster


class Cluster(NamedTuple):
    strategy: tf.distribute.Strategy
    worker: int  # this host's index among the workers; 0 writes the model
    workers: int


def distribution(job: TrainingJob) -> Cluster:
    """MultiWorkerMirroredStrategy across hosts (from TF_CONFIG, which the TF container sets for
    sagemaker_multi_worker_mirrored_strategy_enabled), MirroredStrategy across this host's GPUs
    (or across IMGCLF_LOGICAL_CPUS logical CPU devices, to run the multi-replica path without a
    GPU), else the default strategy. Runs before any other TensorFlow op."""
    if len(job.hosts) > 1:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        cluster = config.get("cluster") or {}
        if not cluster.get("worker"):
            raise ClientError(
                f"training on {len(job.hosts)} instances needs MultiWorkerMirroredStrategy: set the "
                f"hyperparameter {TENSORFLOW.distribution_flag} to true"
            )
        task = config.get("task") or {}
        chiefs = len(cluster.get("chief") or [])
        worker = int(task.get("index", 0)) + (chiefs if task.get("type") == "worker" else 0)
        return Cluster(tf.distribute.MultiWorkerMirroredStrategy(), worker, len(cluster["worker"]) + chiefs)
    logical = int(os.environ.get("IMGCLF_LOGICAL_CPUS") or 0)
    if logical > 1 and job.num_gpus == 0:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical)
        return Cluster(tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(logical)]), 0, 1)
    if job.num_gpus > 1:
        return Cluster(tf.distribute.MirroredStrategy(), 0, 1)
    return Cluster(tf.distribute.get_strategy(), 0, 1)


def precision_policy(job: TrainingJob) -> str:
    """mixed_float16 on GPUs (float16 compute; variables, the head and the loss in float32).
    IMGCLF_MIXED_PRECISION=1 forces it, to run that path on a machine without a GPU."""
    forced = os.environ.get("IMGCLF_MIXED_PRECISION") == "1"
    return "mixed_float16" if job.num_gpus > 0 or forced else "float32"


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


class EpochLog(tf.keras.callbacks.Callback):
    """The TF algorithm's metric lines, '- loss: 0.3 - accuracy: 0.9 - val_loss: ... -
    val_accuracy: ...', and a progress line every ``every`` seconds within long epochs."""

    def __init__(self, steps: int, every: float) -> None:
        super().__init__()
        self.steps, self.every = steps, every
        self.epoch, self.last = 0, 0.0

    @staticmethod
    def _metrics(logs: Optional[Dict[str, Any]]) -> str:
        return " ".join(f"- {k}: {float(v):.4f}" for k, v in (logs or {}).items() if not k.startswith("learning"))

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.epoch, self.last = epoch, time.monotonic()

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if time.monotonic() - self.last >= self.every and batch + 1 < self.steps:
            self.last = time.monotonic()
            total = self.params.get("epochs", 0)
            log.info("Epoch %d/%d step %d/%d %s", self.epoch + 1, total, batch + 1, self.steps, self._metrics(logs))

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        log.info("Epoch %d/%d %s", epoch + 1, self.params.get("epochs", 0), self._metrics(logs))


def fit_across_workers(
    model: tf.keras.Model,
    cluster: Cluster,
    hp: Dict[str, Any],
    data: Tuple[tf.data.Dataset, tf.data.Dataset],
    steps: Tuple[int, int],
    backup: str,
) -> int:
    """What model.fit does, for MultiWorkerMirroredStrategy, which Keras 3's fit cannot drive
    (keras-team/keras#20585): synchronous steps on every worker (the optimizer all-reduces the
    gradients), the same epoch lines, a checkpoint per epoch to resume from, early stopping on
    val_loss. ``data`` and ``steps``: (train, validation)."""
    strategy, global_batch = cluster.strategy, hp["batch_size"] * cluster.strategy.num_replicas_in_sync
    with strategy.scope():
        per_example = loss_function(hp, hp["label_smoothing"])
        per_example.reduction = "none"
        optimizer_ = model.optimizer
        optimizer_.build(model.trainable_variables)
        train_metrics = [tf.keras.metrics.Mean(name="loss"), *metrics_for(hp)]
        val_metrics = [tf.keras.metrics.Mean(name="loss"), *metrics_for(hp)]
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer_, epoch=epoch)
    manager = tf.train.CheckpointManager(checkpoint, backup, max_to_keep=1)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        log.info("Resuming after epoch %d from %s", int(epoch.numpy()), manager.latest_checkpoint)

    def update(metrics: List[Any], targets: tf.Tensor, scores: tf.Tensor) -> None:
        metrics[0].update_state(per_example(targets, scores))
        for metric in metrics[1:]:
            metric.update_state(targets, scores)

    @tf.function
    def train_step(iterator: Any) -> None:
        def step(images: tf.Tensor, targets: tf.Tensor) -> None:
            with tf.GradientTape() as tape:
                scores = model(images, training=True)
                loss = tf.nn.compute_average_loss(per_example(targets, scores), global_batch_size=global_batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
                scaled = optimizer_.scale_loss(loss) if hasattr(optimizer_, "scale_loss") else loss
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer_.apply_gradients(zip(grads, model.trainable_variables))
            update(train_metrics, targets, scores)

        strategy.run(step, args=next(iterator))

    @tf.function
    def val_step(iterator: Any) -> None:
        def step(images: tf.Tensor, targets: tf.Tensor) -> None:
            update(val_metrics, targets, model(images, training=False))

        strategy.run(step, args=next(iterator))

    train_batches = iter(strategy.experimental_distribute_dataset(data[0]))
    val_batches = iter(strategy.experimental_distribute_dataset(data[1]))
    best, waited, last = float("inf"), 0, hp["epochs"] - 1
    for number in range(int(epoch.numpy()), hp["epochs"]):
        last = number
        for metric in train_metrics + val_metrics:
            metric.reset_state()
        for _ in range(steps[0]):
            train_step(train_batches)
        for _ in range(steps[1]):
            val_step(val_batches)
        logs = {m.name: float(m.result()) for m in train_metrics}
        logs.update({"val_" + m.name: float(m.result()) for m in val_metrics})
        log.info("Epoch %d/%d %s", number + 1, hp["epochs"], EpochLog._metrics(logs))
        epoch.assign(number + 1)
        manager.save()
        if hp["early_stopping"]:
            if logs["val_loss"] < best - hp["early_stopping_min_delta"]:
                best, waited = logs["val_loss"], 0
            else:
                waited += 1
                if waited >= hp["early_stopping_patience"]:
                    log.info("Early stopping after epoch %d", number + 1)
                    break
    return last  # the epoch whose weights the model keeps


def export(model: tf.keras.Model, folder: str, hp: Dict[str, Any], names: List[str], report: Dict[str, Any]) -> None:
    """SavedModel in 1/ with a signature on encoded bytes, the Keras weights (for incremental
    training), labels, evaluation and code/."""
    preprocess = make_preprocess(hp["image_size"], hp["image_resize_interpolation"])
    binary = hp["binary_mode"]

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes: tf.Tensor) -> Dict[str, tf.Tensor]:
            images = tf.map_fn(preprocess, image_bytes, fn_output_signature=tf.float32)
            scores = tf.cast(self.model(images, training=False), tf.float32)
            if binary:  # the same response as any two-class model: [P(class 0), P(class 1)]
                scores = tf.concat([1.0 - scores, scores], axis=1)
            return {"probabilities": scores}

    module = Serving()
    tf.saved_model.save(module, os.path.join(folder, "1"), signatures={"serving_default": module.serve})
    os.makedirs(os.path.join(folder, os.path.dirname(KERAS_WEIGHTS)), exist_ok=True)
    model.save_weights(os.path.join(folder, KERAS_WEIGHTS))
    info = {
        "backend": "tensorflow",
        "saved_model": "1",
        "labels": names,
        "image_size": hp["image_size"],
        "top_k": min(5, len(names)),
        "multi_label": False,
    }
    for name, content in (("model-info.json", info), ("labels.json", names), ("hyperparameters.json", hp)):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(content, f, indent=2)
    copy_inference_code(os.path.join(folder, "code"), "tf_inference.py")
    with open(os.path.join(folder, "code", "inference.py"), "w") as f:
        f.write(
            '"""Inference handlers of this model (imgclf): TF Serving\'s and model_fn/... for imgclf serve."""\n'
            "from image_training.tf_inference import input_fn, input_handler, model_fn, output_fn, output_handler, predict_fn  # noqa: F401\n"
        )
    write_evaluation(report, folder)


def evaluate(
    model: tf.keras.Model, hp: Dict[str, Any], data: PreparedData, num_classes: int, names: List[str]
) -> Dict[str, Any]:
    """evaluation.json over the whole validation channel (on every worker, unsharded), with
    the eval_metric's value."""
    infer = tf.function(lambda x: model(x, training=False))
    outputs, targets = [], []
    for images, target in dataset(data.validation.rec, hp, num_classes, False, hp["batch_size"]):
        outputs.append(tf.cast(infer(images), tf.float32).numpy())
        targets.append(target.numpy())
    raw, truth = np.concatenate(outputs), np.concatenate(targets)
    metric = eval_metric(hp)
    metric.update_state(truth, raw)
    loss = float(loss_function(hp, 0.0)(truth, raw))
    if hp["binary_mode"]:
        scores, labels = np.concatenate([1.0 - raw, raw], axis=1), truth[:, 0].astype(np.int64)
    else:
        scores, labels = raw, truth.argmax(axis=1)
    report = single_label_report(scores, labels, names, loss, None, best_epoch=None)
    report["eval_metric"] = {"name": hp["eval_metric"], "value": float(metric.result())}
    return report


def train(
    job: TrainingJob, hp: Dict[str, Any], data: PreparedData, cluster: Cluster, earlier: Optional[EarlierModel]
) -> Dict[str, Any]:
    num_classes = max(data.num_classes, hp["num_classes"] or 0)
    names = label_names_for(num_classes, data.label_names)
    if hp["binary_mode"] and num_classes != 2:
        raise ClientError(f"hyperparameter binary_mode: needs a dataset of two classes, this one has {num_classes}")
    strategy, replicas = cluster.strategy, cluster.strategy.num_replicas_in_sync
    global_batch = hp["batch_size"] * replicas  # batch_size is per replica (per GPU)
    steps = max(1, -(-data.train.samples // global_batch))
    multi = cluster.workers > 1
    shard = (cluster.worker, cluster.workers)
    train_data = dataset(data.train.rec, hp, num_classes, True, global_batch, shard, repeat=multi)
    val_data = dataset(data.validation.rec, hp, num_classes, False, global_batch, shard, repeat=multi)
    with strategy.scope():
        weights = backbone_weights(job, hp)
        short_run = weights is None and earlier is None and steps * hp["epochs"] < SHORT_RUN_STEPS
        model = build_model(hp, num_classes, weights, short_run)
        if earlier is not None:
            load_earlier(
                model, hp, earlier, keep_top_layer(hp["reinitialize_top_layer"], earlier, names, hp["binary_mode"])
            )
        model.compile(optimizer=optimizer(hp), loss=loss_function(hp, hp["label_smoothing"]), metrics=metrics_for(hp))
    backup = "backup" if not multi else f"backup-{job.current_host}"  # hosts share the checkpoint prefix
    callbacks: List[tf.keras.callbacks.Callback] = [
        tf.keras.callbacks.BackupAndRestore(os.path.join(job.checkpoint_dir, backup)),
        EpochLog(steps, float(os.environ.get("IMGCLF_PROGRESS_SECONDS") or 30)),
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
        "Training %s (%s) at %dx%d on %d images, %d replica(s) on %d worker(s), %s",
        hp["model_name"],
        "continuing an earlier model" if earlier else "ImageNet weights" if weights else "from scratch",
        hp["image_size"],
        hp["image_size"],
        data.train.samples,
        replicas,
        cluster.workers,
        tf.keras.mixed_precision.global_policy().name,
    )
    if multi:
        val_steps = max(1, -(-data.validation.samples // global_batch))
        backup_dir = os.path.join(job.checkpoint_dir, backup)
        best_epoch = fit_across_workers(model, cluster, hp, (train_data, val_data), (steps, val_steps), backup_dir)
    else:
        model.fit(train_data, validation_data=val_data, epochs=hp["epochs"], callbacks=callbacks, verbose=0)
        stopper = next((c for c in callbacks if isinstance(c, tf.keras.callbacks.EarlyStopping)), None)
        best_epoch = stopper.best_epoch if stopper is not None else hp["epochs"] - 1  # restored, else the last
    if not hp["train_only_top_layer"] and steps * hp["epochs"] < SHORT_RUN_STEPS:
        plain = dict(hp, augmentation=False)
        batches = dataset(data.train.rec, plain, num_classes, False, hp["batch_size"], shard)
        log.info("BatchNorm statistics re-estimated on %d training batches", recalibrate_batchnorm(model, batches))
    report = evaluate(model, hp, data, num_classes, names)
    report["best_epoch"] = int(best_epoch)  # 0-based, as the MXNet backend's
    # every worker saves (the strategy may need all of them); the first one's is the model
    folder = job.model_dir if cluster.worker == 0 else tempfile.mkdtemp(prefix="imgclf-worker-model-")
    export(model, folder, hp, names, report)
    if folder != job.model_dir:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def main(argv: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    job = TrainingJob.from_environment(argv)
    hp = tf_hyperparameters.parse(job.hyperparameters)
    earlier = read_earlier_model(job)
    if earlier is not None:
        hp = continue_network(job.hyperparameters, hp, earlier)
    size = hp["image_size"]
    options = ValidationOptions(
        num_classes=hp["num_classes"], image_shape=(3, size, size), resize=size, mini_batch_size=1
    )
    work_dir = tempfile.mkdtemp(prefix="imgclf-data-")
    try:
        # packing forks worker processes: before the strategy starts TensorFlow's threads
        data = prepare(job, options, work_dir, validation_split=hp["validation_split_ratio"])
        cluster = distribution(job)  # before any other TensorFlow op
        tf.keras.mixed_precision.set_global_policy(precision_policy(job))
        if data.multi_label:
            raise ClientError(
                "the dataset is multi-label (several labels per image): the TensorFlow backend trains one "
                "class per image; use the MXNet backend with multi_label=1"
            )
        if hp["num_classes"] is not None and data.num_classes > hp["num_classes"]:
            raise ClientError(
                "hyperparameter num_classes: {} but the labels reach class {}".format(
                    hp["num_classes"], data.num_classes - 1
                )
            )
        report = train(job, hp, data, cluster, earlier)
        write_evaluation(report, job.output_data_dir)
        log.info("Validation accuracy %.4f", report["accuracy"])
    finally:
        clean(work_dir)
