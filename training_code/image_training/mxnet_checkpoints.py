"""Checkpoints of the MXNet backend in /opt/ml/checkpoints (synced to S3 by SageMaker): the
epoch loop's state and the last and best weights, so that a job killed at any moment (a spot
interruption) resumes from the last complete epoch."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import mxnet as mx
from mxnet import gluon

log = logging.getLogger("imgclf")
STATE_FILE = "checkpoint-state.json"


class TrainState(NamedTuple):
    epoch: int  # epochs completed
    best_accuracy: float
    best_epoch: int
    stale_epochs: int  # epochs since the last improvement

    def after_epoch(self, epoch: int, accuracy: float, tolerance: float) -> Tuple[TrainState, bool]:
        """The state once ``epoch`` scored ``accuracy``, and whether that improved on the best
        (by more than the relative ``tolerance``; the first epoch always does)."""
        improved = accuracy > self.best_accuracy * (1 + tolerance) or self.best_epoch < 0
        state = TrainState(
            epoch + 1,
            accuracy if improved else self.best_accuracy,
            epoch if improved else self.best_epoch,
            0 if improved else self.stale_epochs + 1,
        )
        return state, improved


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

    def resume(self, net: gluon.Block, trainer: gluon.Trainer, contexts: Sequence[mx.Context]) -> TrainState:
        """The state to start from: the last checkpoint's (loaded into ``net`` and ``trainer``),
        else a new run's."""
        state = self.load(net, trainer, contexts)
        if state is not None:
            log.info("Resuming from checkpoint after epoch %d", state.epoch - 1)
        return state or TrainState(0, -1.0, -1, 0)

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
