"""Every MXNet hyperparameter has its effect on what trains, not merely a parsed value: the
optimizer built and its state, the learning rate per epoch, the input tensors, the network."""

from __future__ import annotations

import json

import pytest

from tests.builders import noisy_jpeg, write_rec

pytestmark = pytest.mark.mxnet

PROBE = r"""
import json, sys
import numpy as np
import mxnet as mx
from mxnet import gluon
from image_training import mxnet_hyperparameters
from image_training.mxnet_train import optimizer_params, record_iter, augmentation
from image_training.mxnet_models import resnet

def hp(**kw):
    raw = {"num_classes": "3", "num_training_samples": "64"}
    raw.update({k: str(v) for k, v in kw.items()})
    return mxnet_hyperparameters.parse(raw)

out = {}
# optimizers and their arguments
for name, extra in (("sgd", {"momentum": 0.7}), ("nag", {"momentum": 0.6}),
                    ("adam", {"beta_1": 0.8, "beta_2": 0.95, "eps": 1e-6}), ("rmsprop", {"gamma": 0.8, "eps": 1e-5})):
    h = hp(optimizer=name, learning_rate=0.02, weight_decay=0.003, **extra)
    opt_name, params = optimizer_params(h, 10)
    net = gluon.nn.Dense(2, in_units=2); net.initialize()
    trainer = gluon.Trainer(net.collect_params(), opt_name, params)
    with mx.autograd.record():
        loss = net(mx.nd.ones((1, 2))).sum()
    loss.backward(); trainer.step(1)
    o = trainer._optimizer
    state = trainer._updaters[0].states[0]
    out[name] = {"class": type(o).__name__, "lr": o.learning_rate, "wd": o.wd,
                 "momentum": getattr(o, "momentum", None), "beta1": getattr(o, "beta1", None), "beta2": getattr(o, "beta2", None),
                 "epsilon": getattr(o, "epsilon", None), "gamma1": getattr(o, "gamma1", None),
                 "state": type(state).__name__ if not isinstance(state, (tuple, list)) else [type(s).__name__ for s in state]}
# learning-rate schedule: lr per epoch with 10 batches per epoch
h = hp(learning_rate=0.1, lr_scheduler_step="2,4", lr_scheduler_factor=0.5)
_, params = optimizer_params(h, 10)
sched = params["lr_scheduler"]
out["lr_per_epoch"] = [sched(epoch * 10 + 1) for epoch in range(6)]
out["fp16"] = optimizer_params(hp(precision_dtype="float16"), 10)[1].get("multi_precision", False)
# input: batch size, shape, resize, augmentation
rec, idx = sys.argv[1], sys.argv[2]
def first_batch(**kw):
    it = record_iter(rec, idx, hp(**kw), True, 1)
    return it.next().data[0].asnumpy()
b = first_batch(mini_batch_size=4, image_shape="3,24,24", resize=30)
out["batch_shape"] = list(b.shape)
it = record_iter(rec, idx, hp(mini_batch_size=4, image_shape="3,24,24", resize=30), False, 1)
v1 = it.next().data[0].asnumpy(); it.reset(); v2 = it.next().data[0].asnumpy()
out["validation_deterministic"] = bool(np.array_equal(v1, v2))
mx.random.seed(1)
a1 = first_batch(mini_batch_size=4, image_shape="3,24,24", resize=30, augmentation_type="crop_color_transform")
out["augmentation_options"] = {k: augmentation(k) for k in ("crop", "crop_color", "crop_color_transform")}
out["augmented_differs"] = bool(not np.allclose(np.sort(a1.ravel()), np.sort(first_batch(mini_batch_size=4, image_shape="3,24,24", resize=30).ravel())))
# networks: weighted layers (main-path convolutions + the dense output)
def depth(n):
    net = resnet(n, 3)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    return len([k for k, p in net.collect_params().items() if len(p.shape) == 4 and k.endswith("weight")])
out["convs"] = {n: depth(n) for n in (18, 20, 32, 50)}
# a training step moves every BatchNorm's running statistics, the input one (no scale, no shift) too
from image_training.mxnet_task import Task
from image_training.mxnet_train import train_step
h = hp(mini_batch_size=4, image_shape="3,24,24", num_layers=20)
net = resnet(20, 3)
net.initialize()
net.hybridize(static_alloc=True, static_shape=True)
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})
train_step(net, trainer, Task(h, {}, 64), record_iter(rec, idx, h, True, 1).next(), [mx.cpu()], "float32", None)
means = {k: p.data().asnumpy() for k, p in net.collect_params().items() if k.endswith("running_mean")}
out["bn_stuck"] = [k for k, m in means.items() if not m.any()]
out["bn_count"] = len(means)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory, in_mxnet) -> dict:
    folder = tmp_path_factory.mktemp("probe")
    rec = write_rec(str(folder / "p.rec"), [(i % 3, noisy_jpeg(40, 34, i)) for i in range(8)])
    return json.loads(in_mxnet(PROBE, rec, str(folder / "p.idx")).strip().splitlines()[-1])


def test_optimizers_and_their_arguments(probe) -> None:
    assert probe["sgd"]["class"] == "SGD" and probe["sgd"]["momentum"] == 0.7
    assert probe["nag"]["class"] == "NAG" and probe["nag"]["momentum"] == 0.6
    assert probe["adam"]["class"] == "Adam" and (
        probe["adam"]["beta1"],
        probe["adam"]["beta2"],
        probe["adam"]["epsilon"],
    ) == (0.8, 0.95, 1e-6)
    assert probe["adam"]["state"] == ["NDArray", "NDArray"]  # first and second moments
    assert probe["rmsprop"]["class"] == "RMSProp" and (probe["rmsprop"]["gamma1"], probe["rmsprop"]["epsilon"]) == (
        0.8,
        1e-5,
    )
    for name in ("sgd", "nag", "adam", "rmsprop"):
        assert probe[name]["lr"] == 0.02 and probe[name]["wd"] == 0.003
    assert probe["sgd"]["state"] == "NDArray"  # the momentum buffer


def test_learning_rate_schedule_per_epoch(probe) -> None:
    assert probe["lr_per_epoch"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_float16_uses_multi_precision(probe) -> None:
    assert probe["fp16"] is True


def test_input_shape_batch_resize_and_augmentation(probe) -> None:
    assert probe["batch_shape"] == [4, 3, 24, 24]
    assert probe["validation_deterministic"] is True
    assert probe["augmentation_options"]["crop"] == {"rand_crop": True, "rand_mirror": True}
    assert probe["augmentation_options"]["crop_color"]["random_h"] == 36
    assert probe["augmentation_options"]["crop_color_transform"]["max_rotate_angle"] == 10
    assert probe["augmented_differs"] is True


def test_num_layers_builds_that_depth(probe) -> None:
    # main-path convolutions + the dense output = depth; plus one 1x1 projection per downsampling stage
    assert probe["convs"] == {"18": 17 + 3, "20": 19 + 2, "32": 31 + 2, "50": 49 + 4}


def test_a_training_step_updates_every_batchnorm_running_statistic(probe) -> None:
    """The input BatchNorm has neither scale nor shift: MXNet skips its backward pass, where the
    running statistics are updated, unless the data asks for a gradient; left at 0 and 1 they
    made evaluation see unnormalised inputs (validation accuracy at chance on some CPUs)."""
    assert probe["bn_count"] == 20 and probe["bn_stuck"] == []
