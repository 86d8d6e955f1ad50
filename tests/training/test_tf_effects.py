"""TensorFlow hyperparameters take effect: the optimizer built, augmentation layers, the head,
BatchNorm momentum for short runs, the input size."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.tensorflow]

PROBE = r"""
import json
import tensorflow as tf
from image_training import tf_hyperparameters
from image_training.job import TrainingJob
from image_training.tf_train import augmentation, build_model, optimizer

def hp(**kw):
    return tf_hyperparameters.parse({k: str(v) for k, v in kw.items()})

out = {}
for name in ("adam", "sgd", "nesterov", "rmsprop", "adagrad", "adadelta"):
    o = optimizer(hp(optimizer=name, learning_rate=0.02, beta_1=0.8, beta_2=0.95, epsilon=1e-5, momentum=0.7, rho=0.85,
                     initial_accumulator_value=0.3))
    cfg = o.get_config()
    out[name] = {"class": type(o).__name__, "lr": float(cfg["learning_rate"]), **{k: cfg.get(k) for k in
                 ("beta_1", "beta_2", "epsilon", "momentum", "nesterov", "rho", "initial_accumulator_value")}}
out["augmentation"] = [type(l).__name__ for l in augmentation(hp(augmentation=1, augmentation_random_flip="vertical",
                                                                    augmentation_random_rotation=0.1, augmentation_random_zoom=0)).layers]
job = TrainingJob("/tmp/m", "/tmp/o", "/tmp/o/d", "/tmp/c", {}, {}, {}, ["algo-1"], "algo-1", 0)
model = build_model(job, hp(use_pretrained_model=0, image_size=32, dropout_rate=0.3, regularizers_l2=0.01), 5, 10)
head = model.get_layer("top")
momenta = sorted({l.momentum for l in model.layers[1].layers if isinstance(l, tf.keras.layers.BatchNormalization)})
out["model"] = {"input": list(model.input_shape), "outputs": head.units, "l2": float(head.kernel_regularizer.l2),
                "dropout": [l.rate for l in model.layers if isinstance(l, tf.keras.layers.Dropout)], "bn_momenta": momenta}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def probe(in_tensorflow) -> dict:
    return json.loads(in_tensorflow(PROBE).strip().splitlines()[-1])


def test_optimizers_and_their_arguments(probe) -> None:
    assert probe["adam"]["class"] == "Adam" and (probe["adam"]["beta_1"], probe["adam"]["beta_2"]) == (0.8, 0.95)
    assert probe["sgd"]["class"] == "SGD" and probe["sgd"]["momentum"] == 0.7 and probe["sgd"]["nesterov"] is False
    assert probe["nesterov"]["class"] == "SGD" and probe["nesterov"]["nesterov"] is True
    assert probe["rmsprop"]["class"] == "RMSprop" and probe["rmsprop"]["rho"] == 0.85
    assert probe["adagrad"]["class"] == "Adagrad" and probe["adagrad"]["initial_accumulator_value"] == 0.3
    assert probe["adadelta"]["class"] == "Adadelta" and probe["adadelta"]["rho"] == 0.85
    assert all(probe[name]["lr"] == pytest.approx(0.02) for name in ("adam", "sgd", "rmsprop", "adagrad", "adadelta"))


def test_augmentation_layers(probe) -> None:
    assert probe["augmentation"] == ["RandomFlip", "RandomRotation"]  # zoom 0 adds nothing


def test_head_input_size_and_batchnorm_momentum(probe) -> None:
    model = probe["model"]
    assert model["input"] == [None, 32, 32, 3] and model["outputs"] == 5
    assert model["l2"] == pytest.approx(0.01) and model["dropout"] == [0.3]
    assert model["bn_momenta"] == [0.9]  # 10 steps x 3 epochs: the short-run momentum
