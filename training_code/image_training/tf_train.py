"""TensorFlow training with the contract of SageMaker's "Image Classification - TensorFlow":
a keras.applications network with a dropout + dense (L2) head, fine-tuned whole or top-only or
continued from an earlier model, its hyperparameters and log lines, one replica per GPU (or
per worker across hosts), mixed precision on GPUs, checkpoints with automatic resume, and a
SavedModel whose serving signature takes encoded image bytes (preprocessing inside the model).
The network, incremental training, the loop across workers and the artifact have modules of
their own (tf_model, tf_incremental, tf_fit, tf_export)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from image_dataset.validate import ValidationOptions
from imgclf_core.backends import TENSORFLOW

from . import baseline, tf_hyperparameters
from .data import PreparedData, clean, prepare
from .errors import ClientError
from .evaluation import label_names_for, single_label_report, write_evaluation
from .job import TrainingJob
from .tf_data import dataset
from .tf_export import export
from .tf_fit import EpochLog, fit_across_workers
from .tf_incremental import EarlierModel, continue_network, keep_top_layer, load_earlier, read_earlier_model
from .tf_model import (
    backbone_weights,
    build_model,
    eval_metric,
    loss_function,
    metrics_for,
    optimizer,
    recalibrate_batchnorm,
)

log = logging.getLogger("imgclf")
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


def evaluate(
    model: tf.keras.Model, hp: Dict[str, Any], data: PreparedData, num_classes: int, names: List[str]
) -> Tuple[Dict[str, Any], np.ndarray, np.ndarray]:
    """evaluation.json over the whole validation channel (on every worker, unsharded), with
    the eval_metric's value; and the scores (n, classes) and class ids it was computed from."""
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
    return report, scores, labels


def compiled_model(
    hp: Dict[str, Any],
    num_classes: int,
    names: List[str],
    weights: Optional[str],
    earlier: Optional[EarlierModel],
    short_run: bool,
) -> tf.keras.Model:
    """The network (see :func:`build_model`), continuing ``earlier`` when given, compiled with
    the hyperparameters' optimizer, loss and metrics. Runs in the strategy's scope."""
    model = build_model(hp, num_classes, weights, short_run)
    if earlier is not None:
        load_earlier(
            model, hp, earlier, keep_top_layer(hp["reinitialize_top_layer"], earlier, names, hp["binary_mode"])
        )
    model.compile(optimizer=optimizer(hp), loss=loss_function(hp, hp["label_smoothing"]), metrics=metrics_for(hp))
    return model


def fit_callbacks(hp: Dict[str, Any], steps: int, backup: str) -> List[tf.keras.callbacks.Callback]:
    """model.fit's callbacks: checkpoints in ``backup`` to resume from, the epoch log lines, and
    early stopping on val_loss (restoring the best weights)."""
    callbacks: List[tf.keras.callbacks.Callback] = [
        tf.keras.callbacks.BackupAndRestore(backup),
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
    return callbacks


def fit_on_one_worker(
    model: tf.keras.Model,
    hp: Dict[str, Any],
    train_data: tf.data.Dataset,
    val_data: tf.data.Dataset,
    callbacks: List[tf.keras.callbacks.Callback],
) -> int:
    """model.fit on this host's replicas; returns the epoch whose weights the model keeps."""
    model.fit(train_data, validation_data=val_data, epochs=hp["epochs"], callbacks=callbacks, verbose=0)
    stopper = next((c for c in callbacks if isinstance(c, tf.keras.callbacks.EarlyStopping)), None)
    return stopper.best_epoch if stopper is not None else hp["epochs"] - 1  # restored, else the last


def save_model(
    model: tf.keras.Model,
    job: TrainingJob,
    cluster: Cluster,
    hp: Dict[str, Any],
    names: List[str],
    report: Dict[str, Any],
    base: Optional[Dict[str, Any]] = None,
) -> None:
    """Export the model: every worker saves (the strategy may need all of them); the first
    one's is the model, with the baseline ``base``."""
    folder = job.model_dir if cluster.worker == 0 else tempfile.mkdtemp(prefix="imgclf-worker-model-")
    export(model, folder, hp, names, report, base if cluster.worker == 0 else None)
    if folder != job.model_dir:
        shutil.rmtree(folder, ignore_errors=True)


def train(
    job: TrainingJob, hp: Dict[str, Any], data: PreparedData, cluster: Cluster, earlier: Optional[EarlierModel]
) -> Dict[str, Any]:
    """Train, evaluate and export the model; returns the evaluation."""
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
        model = compiled_model(hp, num_classes, names, weights, earlier, short_run)
    backup = "backup" if not multi else f"backup-{job.current_host}"  # hosts share the checkpoint prefix
    backup_dir = os.path.join(job.checkpoint_dir, backup)
    callbacks = fit_callbacks(hp, steps, backup_dir)
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
        best_epoch = fit_across_workers(model, strategy, hp, (train_data, val_data), (steps, val_steps), backup_dir)
    else:
        best_epoch = fit_on_one_worker(model, hp, train_data, val_data, callbacks)
    if not hp["train_only_top_layer"] and steps * hp["epochs"] < SHORT_RUN_STEPS:
        plain = dict(hp, augmentation=False)
        batches = dataset(data.train.rec, plain, num_classes, False, hp["batch_size"], shard)
        log.info("BatchNorm statistics re-estimated on %d training batches", recalibrate_batchnorm(model, batches))
    report, scores, labels = evaluate(model, hp, data, num_classes, names)
    report["best_epoch"] = int(best_epoch)  # 0-based, as the MXNet backend's
    base = None
    if cluster.worker == 0:  # baseline.json: a sample of train's images and the validation predictions
        counts = data.report["channels"]["train"]["class_counts"]
        base = baseline.for_model(data.train.rec, data.train.idx, data.train.samples, counts, names, scores, labels)
    save_model(model, job, cluster, hp, names, report, base)
    if base is not None:  # worker 0's: also beside evaluation.json in output/data, for the registry
        baseline.write(base, job.output_data_dir)
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
