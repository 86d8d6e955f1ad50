"""MXNet training with the contract of SageMaker's built-in image-classification algorithm:
its hyperparameters, log lines, artifact names, and checkpoints that survive a spot
interruption (the job resumes from the newest checkpoint in /opt/ml/checkpoints). The
optimizer, the checkpoints, the single/multi-label task and the artifact have modules of
their own (mxnet_optimizer, mxnet_checkpoints, mxnet_task, mxnet_export)."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon.model_zoo.vision import get_resnet

from image_dataset.validate import ValidationOptions

from . import baseline, mxnet_hyperparameters
from .channels import earlier_model, single_file
from .data import PreparedData, clean, prepare
from .errors import ClientError
from .evaluation import label_names_for, write_evaluation
from .job import TrainingJob
from .mxnet_checkpoints import Checkpoints, TrainState
from .mxnet_export import ARTIFACT, MEAN_RGB, STD_RGB, export
from .mxnet_models import load_exported, resnet, with_new_output
from .mxnet_optimizer import make_trainer
from .mxnet_optimizer import optimizer_params as optimizer_params  # its home before; tests and bench import it here
from .mxnet_task import Task

log = logging.getLogger("imgclf")
# ImageRecordIter's normalisation arguments for these statistics
NORMALIZATION = dict(zip(("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b"), MEAN_RGB + STD_RGB))


def devices(job: TrainingJob) -> List[mx.Context]:
    """Every visible GPU, else the CPU. IMGCLF_CPU_DEVICES=N splits batches over N CPU contexts
    (the multi-device code path, exercised in tests)."""
    gpus = mx.context.num_gpus() if job.num_gpus else 0
    if gpus:
        return [mx.gpu(i) for i in range(gpus)]
    return [mx.cpu(i) for i in range(int(os.environ.get("IMGCLF_CPU_DEVICES", "1")))]


def augmentation(kind: Optional[str]) -> Dict[str, Any]:
    """ImageRecordIter options of the built-in's augmentation types and ranges."""
    if kind is None:
        return {}
    options: Dict[str, Any] = {"rand_crop": True, "rand_mirror": True}
    if kind in ("crop_color", "crop_color_transform"):
        options.update(random_h=36, random_s=50, random_l=50)
    if kind == "crop_color_transform":
        options.update(max_rotate_angle=10, max_shear_ratio=0.1, max_aspect_ratio=0.25)
    return options


def record_iter(
    rec: str, idx: str, hp: Dict[str, Any], train: bool, label_width: int, part: Tuple[int, int] = (0, 1)
) -> mx.io.DataIter:
    """ImageRecordIter with the backend's options; ``part`` = (this worker, workers) shards it."""
    shape = tuple(hp["image_shape"])
    options: Dict[str, Any] = dict(
        path_imgrec=rec,
        path_imgidx=idx,
        data_shape=shape,
        batch_size=hp["mini_batch_size"],
        label_width=label_width,
        shuffle=train,
        round_batch=train,
        preprocess_threads=max(1, (os.cpu_count() or 1)),
        part_index=part[0],
        num_parts=part[1],
        **NORMALIZATION,
    )
    if shape[0] == 1:
        options.update(mean_r=MEAN_RGB[0], std_r=STD_RGB[0])
    if hp["resize"]:
        options["resize"] = hp["resize"]
    if train:
        options.update(augmentation(hp["augmentation_type"]))
    return mx.io.ImageRecordIter(**options)


def forward_batches(
    net: gluon.Block, batch: mx.io.DataBatch, contexts: Sequence[mx.Context], dtype: str
) -> Tuple[List[mx.nd.NDArray], List[mx.nd.NDArray]]:
    data = gluon.utils.split_and_load(batch.data[0].astype(dtype, copy=False), contexts, even_split=False)
    labels = gluon.utils.split_and_load(batch.label[0], contexts, even_split=False)
    return data, labels


def evaluate(
    net: gluon.Block, data: mx.io.DataIter, samples: int, contexts: Sequence[mx.Context], dtype: str, task: Task
) -> Tuple[np.ndarray, np.ndarray, float]:
    """Probabilities, labels and mean loss over the first ``samples`` images of an iterator
    (ImageRecordIter fills its last batch up without always saying so in ``pad``)."""
    data.reset()
    scores: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    losses: List[np.ndarray] = []
    for batch in data:
        xs, ys = forward_batches(net, batch, contexts, dtype)
        for x, y in zip(xs, ys):
            out = net(x).astype("float32")
            losses.append(task.batch_loss(out, y).asnumpy())
            scores.append(task.probabilities(out))
            labels.append(y.asnumpy())
    return (
        np.concatenate(scores)[:samples],
        np.concatenate(labels)[:samples],
        float(np.concatenate(losses)[:samples].mean()),
    )


INITIALIZER = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)


def build_network(job: TrainingJob, hp: Dict[str, Any], contexts: Sequence[mx.Context]) -> gluon.HybridBlock:
    """A new network, an earlier model to continue (model channel), or ImageNet weights with a
    new output layer (use_pretrained_model: pretrained channel, else the Gluon model zoo)."""
    depth, classes = hp["num_layers"], hp["num_classes"]
    if "model" in job.channels:
        folder = earlier_model(job.channels["model"])
        with open(os.path.join(folder, "hyperparameters.json")) as f:
            before = json.load(f)
        for name in ("num_layers", "image_shape", "num_classes"):
            if before.get(name) != hp[name]:
                raise ClientError(
                    f"hyperparameter {name}: {hp[name]} but the model in the model channel was trained with {before.get(name)}"
                )
        with open(os.path.join(folder, "model-info.json")) as f:
            info = json.load(f)
        net = resnet(depth, classes)
        load_exported(net, os.path.join(folder, info["params"]), contexts)
        log.info("Incremental training from %s", info["params"])
        return net
    if hp["use_pretrained_model"]:
        if "pretrained" in job.channels:
            weights = single_file(job.channels["pretrained"], (".params",), "pretrained")
            net = resnet(depth, 1000)
            try:
                net.load_parameters(weights, ctx=list(contexts))
            except (mx.base.MXNetError, AssertionError, ValueError) as err:
                raise ClientError(
                    f"the pretrained channel's {os.path.basename(weights)} is not ImageNet ResNet-{depth} V2 weights: {str(err).splitlines()[0]}"
                ) from None
            log.info("Transfer learning from %s", os.path.basename(weights))
        else:
            try:
                net = get_resnet(
                    2, depth, pretrained=True, ctx=list(contexts), root=tempfile.mkdtemp(prefix="imgclf-zoo-")
                )
            except Exception as err:  # noqa: BLE001 - no internet under network isolation
                raise ClientError(
                    f"cannot download ImageNet weights for ResNet-{depth} ({err}); put them in the pretrained channel"
                ) from None
            log.info("Transfer learning from the Gluon model zoo's resnet%d_v2", depth)
        with_new_output(net, classes)
        net.output.initialize(INITIALIZER, ctx=list(contexts))
        return net
    net = resnet(depth, classes)
    net.initialize(INITIALIZER, ctx=list(contexts))
    return net


CONTROL_KEY = 1 << 30  # a kvstore key no parameter uses


def distribution(job: TrainingJob, hp: Dict[str, Any]) -> Tuple[Any, int, int]:
    """(kvstore, this worker's rank, workers). One machine: reduce on the devices. Several
    machines: the kv_store (dist_sync unless set) through the parameter servers that the
    container started (sagemaker_parameter_server_enabled)."""
    if len(job.hosts) == 1:
        return "device", 0, 1
    if os.environ.get("DMLC_ROLE") != "worker":
        raise ClientError(
            f"training on {len(job.hosts)} instances needs the parameter servers: set the hyperparameter "
            "sagemaker_parameter_server_enabled to true"
        )
    if hp["kv_store"] == "dist_async" and hp["early_stopping"]:
        raise ClientError(
            "hyperparameter early_stopping: not available with kv_store dist_async (workers do not wait for each other)"
        )
    kvstore = mx.kv.create(hp["kv_store"] or "dist_sync")
    return kvstore, kvstore.rank, kvstore.num_workers


def agree(trainer: gluon.Trainer, decision: bool, workers: int) -> bool:
    """The chief's decision, for every worker (through the synchronous kvstore)."""
    kvstore = trainer._kvstore
    value = mx.nd.array([1.0 if decision else 0.0])
    if not getattr(trainer, "_imgclf_control", False):
        kvstore.init(CONTROL_KEY, mx.nd.zeros(1))
        trainer._imgclf_control = True  # type: ignore[attr-defined]
    kvstore.push(CONTROL_KEY, value)
    out = mx.nd.zeros(1)
    kvstore.pull(CONTROL_KEY, out=out)
    return bool(out.asscalar() > 0)


def train_step(
    net: gluon.Block,
    trainer: gluon.Trainer,
    task: Task,
    batch: mx.io.DataBatch,
    contexts: Sequence[mx.Context],
    dtype: str,
    top_k: Optional[int],
    workers: int = 1,
) -> Tuple[float, float, int]:
    """One optimisation step on a batch split over ``contexts``; returns the batch's correct
    predictions, top-k hits and size, for the epoch's training accuracy. Gradients summed over
    ``workers`` are averaged over all their samples."""
    xs, ys = forward_batches(net, batch, contexts, dtype)
    for x in xs:  # MXNet's BatchNorm updates its running statistics in the backward pass, which
        x.attach_grad()  # skips the input BatchNorm (no scale, no shift) unless the data needs a gradient
    with autograd.record():
        outs = [net(x).astype("float32") for x in xs]
        losses = [task.batch_loss(o, y) for o, y in zip(outs, ys)]
    for loss in losses:
        loss.backward()
    trainer.step(batch.data[0].shape[0] * workers)
    correct, top_correct, seen = 0.0, 0.0, 0
    for out, y in zip(outs, ys):
        scores, labels = task.probabilities(out), y.asnumpy()
        correct += task.accuracy(scores, labels) * len(labels)
        if top_k and top_k > 1:
            top_correct += task.top_k_accuracy(scores, labels, top_k) * len(labels)
        seen += len(labels)
    return correct, top_correct, seen


class Run(NamedTuple):
    """What every step of a run uses besides the data."""

    net: gluon.HybridBlock
    trainer: gluon.Trainer
    task: Task
    contexts: List[mx.Context]
    dtype: str
    top_k: Optional[int]
    workers: int


def precision(hp: Dict[str, Any], contexts: Sequence[mx.Context]) -> str:
    """The dtype of precision_dtype; float16 needs a GPU."""
    dtype = "float16" if hp["precision_dtype"] == "float16" else "float32"
    if dtype == "float16" and contexts[0].device_type != "gpu":
        raise ClientError(
            "hyperparameter precision_dtype: float16 needs a GPU instance (ml.p3, ml.g5); this one has none"
        )
    return dtype


def ready_network(
    job: TrainingJob, hp: Dict[str, Any], contexts: Sequence[mx.Context], dtype: str
) -> gluon.HybridBlock:
    """The network to train (see :func:`build_network`), in ``dtype``, hybridized."""
    net = build_network(job, hp, contexts)
    if dtype == "float16":
        net.cast("float16")
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def train_epoch(run: Run, train_iter: mx.io.DataIter, epoch: int) -> None:
    """One pass over the training data, with the built-in's progress and epoch log lines."""
    start = time.time()
    train_iter.reset()
    seen, correct, top_correct = 0, 0.0, 0.0
    top_k = run.top_k
    for i, batch in enumerate(train_iter):
        hits, top_hits, n = train_step(
            run.net, run.trainer, run.task, batch, run.contexts, run.dtype, top_k, run.workers
        )
        correct, top_correct, seen = correct + hits, top_correct + top_hits, seen + n
        if (i + 1) % 50 == 0:
            log.info(
                "Epoch[%d] Batch [%d]\tSpeed: %.2f samples/sec\taccuracy=%f",
                epoch,
                i + 1,
                seen / max(1e-9, time.time() - start),
                correct / max(1, seen),
            )
    log.info("Epoch[%d] Train-accuracy=%f", epoch, correct / max(1, seen))
    if top_k and top_k > 1:
        log.info("Epoch[%d] Train-top_k_accuracy_%d=%f", epoch, top_k, top_correct / max(1, seen))
    log.info("Epoch[%d] Time cost=%.3f", epoch, time.time() - start)
    learning_rate, updates = run.trainer.learning_rate, run.trainer._optimizer.num_update
    log.info("Epoch[%d] Learning-rate=%g Updates=%d", epoch, learning_rate, updates)


def validate_epoch(run: Run, val_iter: mx.io.DataIter, samples: int, epoch: int) -> float:
    """The validation accuracy after ``epoch`` (logged, with the top-k accuracy)."""
    scores, labels, _ = evaluate(run.net, val_iter, samples, run.contexts, run.dtype, run.task)
    accuracy = run.task.accuracy(scores, labels)
    log.info("Epoch[%d] Validation-accuracy=%f", epoch, accuracy)
    top_k = run.top_k
    if top_k and top_k > 1:
        log.info(
            "Epoch[%d] Validation-top_k_accuracy_%d=%f",
            epoch,
            top_k,
            run.task.top_k_accuracy(scores, labels, top_k),
        )
    return accuracy


def stop_early(run: Run, hp: Dict[str, Any], epoch: int, state: TrainState, chief: bool) -> bool:
    """Whether early stopping ends training after ``epoch``: the chief decides for every worker."""
    stop = (
        hp["early_stopping"]
        and epoch + 1 >= hp["early_stopping_min_epochs"]
        and state.stale_epochs >= hp["early_stopping_patience"]
    )
    if run.workers > 1:
        stop = agree(run.trainer, chief and stop, run.workers)
    return bool(stop)


def train_baseline(
    data: PreparedData, names: List[str], scores: np.ndarray, labels: np.ndarray
) -> Optional[Dict[str, Any]]:
    """baseline.json's content (None where it cannot be made): a sample of train's images and the validation predictions."""
    counts = data.report["channels"]["train"]["class_counts"]
    return baseline.for_model(data.train.rec, data.train.idx, data.train.samples, counts, names, scores, labels)


def best_epoch_report(
    job: TrainingJob,
    hp: Dict[str, Any],
    data: PreparedData,
    run: Run,
    val_iter: mx.io.DataIter,
    best_params: str,
    best_epoch: int,
) -> Dict[str, Any]:
    """Evaluate the best epoch's weights and export them as the model; returns the evaluation."""
    # the best epoch, in a network detached from the trainer (a distributed kvstore cannot be reset)
    net = resnet(hp["num_layers"], hp["num_classes"])
    net.load_parameters(best_params, ctx=run.contexts, cast_dtype=True)
    net.hybridize(static_alloc=True, static_shape=True)
    scores, labels, val_loss = evaluate(net, val_iter, data.validation.samples, run.contexts, run.dtype, run.task)
    names = label_names_for(hp["num_classes"], data.label_names)
    report = run.task.report(scores, labels, names, val_loss, run.top_k, best_epoch)
    base = train_baseline(data, names, scores, labels)
    export(net, job.model_dir, best_epoch, hp, names, report, base)
    if base is not None:  # the chief's: also beside evaluation.json in output/data, for the registry
        baseline.write(base, job.output_data_dir)
    return report


def train(job: TrainingJob, hp: Dict[str, Any], data: PreparedData) -> Dict[str, Any]:
    """The epoch loop; returns the evaluation of the best epoch."""
    contexts = devices(job)
    dtype = precision(hp, contexts)
    kvstore, rank, workers = distribution(job, hp)
    batches_per_epoch = max(1, math.ceil(hp["num_training_samples"] / (hp["mini_batch_size"] * workers)))
    task = Task(hp, data.report["channels"]["train"]["class_counts"], data.train.samples)
    train_iter = record_iter(data.train.rec, data.train.idx, hp, True, task.label_width, (rank, workers))
    val_iter = record_iter(data.validation.rec, data.validation.idx, hp, False, task.label_width)
    chief = job.current_host == job.hosts[0]  # SageMaker keeps the model of the first host

    log.info(
        "Training ResNet-%d on %s%s",
        hp["num_layers"],
        ", ".join(str(c) for c in contexts),
        " as worker {} of {} ({})".format(rank, workers, hp["kv_store"] or "dist_sync") if workers > 1 else "",
    )
    net = ready_network(job, hp, contexts, dtype)
    trainer = make_trainer(net, hp, kvstore, workers, batches_per_epoch)
    run = Run(net, trainer, task, contexts, dtype, hp["top_k"], workers)
    checkpoints = Checkpoints(job.checkpoint_dir)
    state = checkpoints.resume(net, trainer, contexts)

    for epoch in range(state.epoch, hp["epochs"]):
        train_epoch(run, train_iter, epoch)
        if chief:
            accuracy = validate_epoch(run, val_iter, data.validation.samples, epoch)
            state, improved = state.after_epoch(epoch, accuracy, hp["early_stopping_tolerance"])
            checkpoints.save(state, net, trainer, improved)
            if hp["checkpoint_frequency"] and (epoch + 1) % hp["checkpoint_frequency"] == 0:
                net.export(os.path.join(job.model_dir, ARTIFACT), epoch=epoch + 1)
        if stop_early(run, hp, epoch, state, chief):
            log.info("Early stopping after epoch %d: no improvement for %d epochs", epoch, state.stale_epochs)
            break

    if not chief:
        return {}
    return best_epoch_report(job, hp, data, run, val_iter, checkpoints.path("best.params"), state.best_epoch)


def check_against_data(hp: Dict[str, Any], data: PreparedData) -> None:
    """num_classes and num_training_samples must describe the data, not silently differ."""
    if data.num_classes > hp["num_classes"]:
        raise ClientError(
            "hyperparameter num_classes: {} but the labels reach class {}".format(
                hp["num_classes"], data.num_classes - 1
            )
        )
    if hp["num_training_samples"] != data.train.samples:
        raise ClientError(
            "hyperparameter num_training_samples: {} but the train channel holds {} samples".format(
                hp["num_training_samples"], data.train.samples
            )
        )
    if data.multi_label and not hp["multi_label"]:
        raise ClientError("hyperparameter multi_label: 0 but the dataset's labels are multi-label")


def main(argv: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    job = TrainingJob.from_environment(argv)
    hp = mxnet_hyperparameters.parse(job.hyperparameters)
    options = ValidationOptions(
        num_classes=hp["num_classes"],
        multi_label=bool(hp["multi_label"]),
        image_shape=tuple(hp["image_shape"]),  # type: ignore[arg-type]
        resize=hp["resize"],
        mini_batch_size=hp["mini_batch_size"],
    )
    work_dir = tempfile.mkdtemp(prefix="imgclf-data-")
    try:
        data = prepare(job, options, work_dir)
        if data.report["channels"]["train"]["format"] != "recordio" and not hp["resize"]:
            raise ClientError(
                "hyperparameter resize: required when the training data are images, as in the built-in algorithm"
            )
        check_against_data(hp, data)
        report = train(job, hp, data)
        if report:  # the chief's; other workers leave no model, as SageMaker keeps algo-1's
            write_evaluation(report, job.output_data_dir)
            log.info("Best epoch %d: validation accuracy %.4f", report["best_epoch"], report["accuracy"])
    finally:
        clean(work_dir)
