"""The TensorFlow backend's epoch log lines (the metric lines of SageMaker's TF algorithm) and
the training loop across workers, which Keras' fit cannot drive."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import tensorflow as tf

from .tf_model import loss_function, metrics_for

log = logging.getLogger("imgclf")


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
    strategy: tf.distribute.Strategy,
    hp: Dict[str, Any],
    data: Tuple[tf.data.Dataset, tf.data.Dataset],
    steps: Tuple[int, int],
    backup: str,
) -> int:
    """What model.fit does, for MultiWorkerMirroredStrategy, which Keras 3's fit cannot drive
    (keras-team/keras#20585): synchronous steps on every worker (the optimizer all-reduces the
    gradients), the same epoch lines, a checkpoint per epoch to resume from, early stopping on
    val_loss. ``data`` and ``steps``: (train, validation)."""
    global_batch = hp["batch_size"] * strategy.num_replicas_in_sync
    with strategy.scope():
        per_example = loss_function(hp, hp["label_smoothing"])
        per_example.reduction = "none"
        optimizer_ = model.optimizer
        optimizer_.build(model.trainable_variables)
        train_metrics = [tf.keras.metrics.Mean(name="loss"), *metrics_for(hp)]
        val_metrics = [tf.keras.metrics.Mean(name="loss"), *metrics_for(hp)]
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    manager = _restored(tf.train.Checkpoint(model=model, optimizer=optimizer_, epoch=epoch), epoch, backup)
    train_step, val_step = _steps(model, strategy, per_example, global_batch, (train_metrics, val_metrics))
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


def _restored(checkpoint: tf.train.Checkpoint, epoch: tf.Variable, backup: str) -> tf.train.CheckpointManager:
    """The manager of the per-epoch checkpoints in ``backup``, after resuming from the newest."""
    manager = tf.train.CheckpointManager(checkpoint, backup, max_to_keep=1)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        log.info("Resuming after epoch %d from %s", int(epoch.numpy()), manager.latest_checkpoint)
    return manager


def _steps(
    model: tf.keras.Model,
    strategy: tf.distribute.Strategy,
    per_example: tf.keras.losses.Loss,
    global_batch: int,
    tracked: Tuple[List[Any], List[Any]],
) -> Tuple[Callable[[Any], None], Callable[[Any], None]]:
    """The synchronous training and validation steps, each on the next batch of a distributed
    iterator, updating the ``tracked`` metrics (train, validation: the mean loss first)."""
    train_metrics, val_metrics = tracked
    optimizer_ = model.optimizer

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

    return train_step, val_step
