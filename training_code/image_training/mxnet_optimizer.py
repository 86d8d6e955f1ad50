"""The MXNet backend's optimizer: the built-in's optimizer hyperparameters and learning-rate
schedule as a Gluon trainer."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import mxnet as mx
from mxnet import gluon


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


def make_trainer(
    net: gluon.Block, hp: Dict[str, Any], kvstore: Any, workers: int, batches_per_epoch: int
) -> gluon.Trainer:
    """The trainer of ``net`` with the hyperparameters' optimizer, reducing over ``kvstore``."""
    name, params = optimizer_params(hp, batches_per_epoch)
    # on one machine gradients are reduced on the devices; across machines through the
    # parameter servers: dist_sync updates on the workers (so optimizer state can be
    # checkpointed), dist_async on the servers
    return gluon.Trainer(
        net.collect_params(),
        name,
        params,
        kvstore=kvstore,
        update_on_kvstore=(hp["kv_store"] == "dist_async") if workers > 1 else None,
    )
