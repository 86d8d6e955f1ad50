"""MXNet training with the contract of SageMaker's built-in image-classification algorithm:
its hyperparameters, log lines, artifact names, and checkpoints that survive a spot
interruption (the job resumes from the newest checkpoint in /opt/ml/checkpoints)."""

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

from . import mxnet_hyperparameters
from .channels import earlier_model, single_file
from .data import PreparedData, clean, prepare
from .errors import ClientError
from .evaluation import (
    label_names_for,
    multi_label_accuracy,
    multi_label_report,
    single_label_report,
    top_k_hits,
    write_evaluation,
)
from .job import TrainingJob
from .mxnet_models import load_exported, resnet, with_new_output
from .serving import copy_inference_code

log = logging.getLogger("imgclf")
ARTIFACT = "image-classification"
MEAN_RGB = (123.68, 116.779, 103.939)  # ImageNet statistics, 0-255 scale; serving uses the same
STD_RGB = (58.393, 57.12, 57.375)
# ImageRecordIter's normalisation arguments for these statistics
NORMALIZATION = dict(zip(("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b"), MEAN_RGB + STD_RGB))
STATE_FILE = "checkpoint-state.json"


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


def optimizer_params(hp: Dict[str, Any], batches_per_epoch: int) -> Tuple[str, Dict[str, Any]]:
    """The optimizer and its arguments from the hyperparameters (one home for this mapping)."""
    params: Dict[str, Any] = {"learning_rate": hp["learning_rate"], "wd": hp["weight_decay"]}
    if hp["lr_scheduler_step"]:
        params["lr_scheduler"] = mx.lr_scheduler.MultiFactorScheduler(
            step=[max(1, e * batches_per_epoch) for e in hp["lr_scheduler_step"]],
            factor=hp["lr_scheduler_factor"],
            base_lr=hp["learning_rate"],
        )
    name = hp["optimizer"]
    if name in ("sgd", "nag"):
        params["momentum"] = hp["momentum"]
    elif name == "adam":
        params.update(beta1=hp["beta_1"], beta2=hp["beta_2"], epsilon=hp["eps"])
    elif name == "rmsprop":
        params.update(gamma1=hp["gamma"], epsilon=hp["eps"])
    if hp["precision_dtype"] == "float16":
        params["multi_precision"] = True
    return name, params


class TrainState(NamedTuple):
    epoch: int  # epochs completed
    best_accuracy: float
    best_epoch: int
    stale_epochs: int  # epochs since the last improvement


class Checkpoints:
    """Checkpoints in /opt/ml/checkpoints (synced to S3 by SageMaker): written atomically, so
    a job killed at any moment resumes from the last complete one."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def load(self, net: gluon.Block, trainer: gluon.Trainer, contexts: Sequence[mx.Context]) -> Optional[TrainState]:
        if not os.path.exists(self.path(STATE_FILE)):
            return None
        with open(self.path(STATE_FILE)) as f:
            state = TrainState(**json.load(f))
        net.load_parameters(self.path("last.params"), ctx=list(contexts))
        if os.path.exists(self.path("last.states")) and not trainer._update_on_kvstore:
            trainer.load_states(self.path("last.states"))
        else:
            log.info("Resuming without optimizer state: it lives on the parameter servers (dist_async)")
        return state

    def save(self, state: TrainState, net: gluon.Block, trainer: gluon.Trainer, improved: bool) -> None:
        def write(name: str, save: Any) -> None:
            save(self.path(name + ".partial"))
            os.replace(self.path(name + ".partial"), self.path(name))

        write("last.params", net.save_parameters)
        if not trainer._update_on_kvstore:  # dist_async keeps the optimizer on the servers
            write("last.states", trainer.save_states)
        if improved:
            write("best.params", net.save_parameters)
        with open(self.path(STATE_FILE + ".partial"), "w") as f:
            json.dump(state._asdict(), f)
        os.replace(self.path(STATE_FILE + ".partial"), self.path(STATE_FILE))


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


class Task:
    """What differs between single-label (softmax) and multi-label (sigmoid, multi-hot) training."""

    def __init__(self, hp: Dict[str, Any], class_counts: Dict[str, int], train_samples: int) -> None:
        self.multi_label = bool(hp["multi_label"])
        self.num_classes = hp["num_classes"]
        self.label_width = self.num_classes if self.multi_label else 1
        if not self.multi_label:
            self.loss: gluon.loss.Loss = gluon.loss.SoftmaxCrossEntropyLoss()
            self.pos_weight = None
            return
        self.loss = gluon.loss.SigmoidBinaryCrossEntropyLoss()
        self.pos_weight = None
        if hp["use_weighted_loss"]:
            # each class's positives weigh as much as its negatives: (negatives / positives)
            counts = np.array([max(1, class_counts.get(str(c), 0)) for c in range(self.num_classes)], np.float32)
            self.pos_weight = ((train_samples - counts).clip(min=1) / counts).reshape(1, -1)

    def batch_loss(self, out: mx.nd.NDArray, y: mx.nd.NDArray) -> mx.nd.NDArray:
        if self.pos_weight is None:
            return self.loss(out, y)
        return self.loss(out, y, None, mx.nd.array(self.pos_weight, ctx=out.context))

    def probabilities(self, out: mx.nd.NDArray) -> np.ndarray:
        return (mx.nd.sigmoid(out) if self.multi_label else mx.nd.softmax(out)).asnumpy()

    def accuracy(self, scores: np.ndarray, labels: np.ndarray) -> float:
        if self.multi_label:
            return multi_label_accuracy(scores, labels)
        return float((scores.argmax(axis=1) == labels).mean()) if len(labels) else 0.0

    def top_k_accuracy(self, scores: np.ndarray, labels: np.ndarray, k: int) -> float:
        return float(top_k_hits(scores, labels, k, self.multi_label).mean()) if len(labels) else 0.0

    def report(
        self, scores: np.ndarray, labels: np.ndarray, names: List[str], loss: float, top_k: Optional[int], best: int
    ) -> Dict[str, Any]:
        if self.multi_label:
            return multi_label_report(scores, labels, names, loss, top_k, best_epoch=best)
        return single_label_report(scores, labels, names, loss, top_k, best_epoch=best)


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


def train(job: TrainingJob, hp: Dict[str, Any], data: PreparedData) -> Dict[str, Any]:
    """The epoch loop; returns the evaluation of the best epoch."""
    contexts = devices(job)
    dtype = "float16" if hp["precision_dtype"] == "float16" else "float32"
    if dtype == "float16" and contexts[0].device_type != "gpu":
        raise ClientError(
            "hyperparameter precision_dtype: float16 needs a GPU instance (ml.p3, ml.g5); this one has none"
        )
    num_classes = hp["num_classes"]
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
    net = build_network(job, hp, contexts)
    if dtype == "float16":
        net.cast("float16")
    net.hybridize(static_alloc=True, static_shape=True)
    name, params = optimizer_params(hp, batches_per_epoch)
    # on one machine gradients are reduced on the devices; across machines through the
    # parameter servers: dist_sync updates on the workers (so optimizer state can be
    # checkpointed), dist_async on the servers
    trainer = gluon.Trainer(
        net.collect_params(),
        name,
        params,
        kvstore=kvstore,
        update_on_kvstore=(hp["kv_store"] == "dist_async") if workers > 1 else None,
    )
    checkpoints = Checkpoints(job.checkpoint_dir)
    state = checkpoints.load(net, trainer, contexts)
    if state is not None:
        log.info("Resuming from checkpoint after epoch %d", state.epoch - 1)
    state = state or TrainState(0, -1.0, -1, 0)
    top_k = hp["top_k"]

    for epoch in range(state.epoch, hp["epochs"]):
        start = time.time()
        train_iter.reset()
        seen, correct, top_correct = 0, 0.0, 0.0
        for i, batch in enumerate(train_iter):
            hits, top_hits, n = train_step(net, trainer, task, batch, contexts, dtype, top_k, workers)
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
        log.info("Epoch[%d] Learning-rate=%g Updates=%d", epoch, trainer.learning_rate, trainer._optimizer.num_update)
        if chief:
            scores, labels, val_loss = evaluate(net, val_iter, data.validation.samples, contexts, dtype, task)
            accuracy = task.accuracy(scores, labels)
            log.info("Epoch[%d] Validation-accuracy=%f", epoch, accuracy)
            if top_k and top_k > 1:
                log.info(
                    "Epoch[%d] Validation-top_k_accuracy_%d=%f",
                    epoch,
                    top_k,
                    task.top_k_accuracy(scores, labels, top_k),
                )
            improved = accuracy > state.best_accuracy * (1 + hp["early_stopping_tolerance"]) or state.best_epoch < 0
            state = TrainState(
                epoch + 1,
                accuracy if improved else state.best_accuracy,
                epoch if improved else state.best_epoch,
                0 if improved else state.stale_epochs + 1,
            )
            checkpoints.save(state, net, trainer, improved)
            if hp["checkpoint_frequency"] and (epoch + 1) % hp["checkpoint_frequency"] == 0:
                net.export(os.path.join(job.model_dir, ARTIFACT), epoch=epoch + 1)
        stop = (
            hp["early_stopping"]
            and epoch + 1 >= hp["early_stopping_min_epochs"]
            and state.stale_epochs >= hp["early_stopping_patience"]
        )
        if workers > 1:
            stop = agree(trainer, chief and stop, workers)
        if stop:
            log.info("Early stopping after epoch %d: no improvement for %d epochs", epoch, state.stale_epochs)
            break

    if not chief:
        return {}
    # the best epoch, in a network detached from the trainer (a distributed kvstore cannot be reset)
    net = resnet(hp["num_layers"], num_classes)
    net.load_parameters(checkpoints.path("best.params"), ctx=contexts, cast_dtype=True)
    net.hybridize(static_alloc=True, static_shape=True)
    scores, labels, val_loss = evaluate(net, val_iter, data.validation.samples, contexts, dtype, task)
    names = label_names_for(num_classes, data.label_names)
    report = task.report(scores, labels, names, val_loss, top_k, state.best_epoch)
    export(net, job.model_dir, state.best_epoch, hp, names, report)
    return report


def export(
    net: gluon.HybridBlock,
    model_dir: str,
    best_epoch: int,
    hp: Dict[str, Any],
    names: List[str],
    report: Dict[str, Any],
) -> None:
    """The artifact, named as the built-in names it (symbol, params numbered by epochs trained,
    shapes), plus what serving needs: model-info.json and code/inference.py with its modules."""
    os.makedirs(model_dir, exist_ok=True)
    epoch = best_epoch + 1  # Epoch[k] in the log is the (k+1)-th epoch
    net.export(os.path.join(model_dir, ARTIFACT), epoch=epoch)
    shape = [hp["mini_batch_size"]] + list(hp["image_shape"])
    with open(os.path.join(model_dir, "model-shapes.json"), "w") as f:
        json.dump([{"shape": shape, "name": "data"}], f)
    with open(os.path.join(model_dir, "labels.json"), "w") as f:
        json.dump(names, f)
    with open(os.path.join(model_dir, "hyperparameters.json"), "w") as f:
        json.dump(hp, f, indent=2)
    info = {
        "backend": "mxnet",
        "symbol": f"{ARTIFACT}-symbol.json",
        "params": f"{ARTIFACT}-{epoch:04d}.params",
        "image_shape": hp["image_shape"],
        "resize": hp["resize"],
        "mean_rgb": MEAN_RGB,
        "std_rgb": STD_RGB,
        "labels": names,
        "top_k": hp["top_k"] or min(5, len(names)),
        "dtype": "float16" if hp["precision_dtype"] == "float16" else "float32",
        "multi_label": bool(hp["multi_label"]),
    }
    with open(os.path.join(model_dir, "model-info.json"), "w") as f:
        json.dump(info, f, indent=2)
    code = os.path.join(model_dir, "code")
    copy_inference_code(code, "mxnet_inference.py")
    with open(os.path.join(code, "inference.py"), "w") as f:
        f.write(
            '"""SageMaker MXNet inference handlers of this model (imgclf)."""\n'
            "from image_training.mxnet_inference import input_fn, model_fn, output_fn, predict_fn  # noqa: F401\n"
        )
    write_evaluation(report, model_dir)


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
