"""TensorFlow hyperparameters take effect: the optimizer built, augmentation layers, the head,
BatchNorm momentum for short runs, the input size."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.tensorflow]

PROBE = r"""
import json, os
os.environ["IMGCLF_LOGICAL_CPUS"] = "2"
from image_training import tf_hyperparameters
from image_training.job import TrainingJob
from image_training.tf_train import distribution
job = TrainingJob("/tmp/m", "/tmp/o", "/tmp/o/d", "/tmp/c", {}, {}, {}, ["algo-1"], "algo-1", 0)
cluster = distribution(job)  # first: logical devices are set before TensorFlow starts
import tensorflow as tf
from image_training.tf_data import augmentation
from image_training.tf_data import make_preprocess
from image_training.tf_train import build_model, eval_metric, loss_function, optimizer, precision_policy

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
def momenta(model):
    return sorted({l.momentum for l in model.layers[1].layers if isinstance(l, tf.keras.layers.BatchNormalization)})
model = build_model(hp(use_pretrained_model=0, image_size=32, dropout_rate=0.3, regularizers_l2=0.01), 5, None, True)
head = model.get_layer("top")
out["model"] = {"input": list(model.input_shape), "outputs": head.units, "l2": float(head.kernel_regularizer.l2),
                "activation": head.activation.__name__,
                "dropout": [l.rate for l in model.layers if isinstance(l, tf.keras.layers.Dropout)],
                "bn_momenta": momenta(model),
                "long_run_momenta": momenta(build_model(hp(use_pretrained_model=0, image_size=32), 5, None, False))}
binary = build_model(hp(use_pretrained_model=0, image_size=32, binary_mode=1), 2, None, False).get_layer("top")
out["binary"] = {"outputs": binary.units, "activation": binary.activation.__name__}
out["metrics"] = {name: type(eval_metric(hp(eval_metric=name, binary_mode=b))).__name__
                  for name in ("accuracy", "precision", "recall", "auc") for b in (0,)}
out["binary_accuracy"] = type(eval_metric(hp(binary_mode=1))).__name__
truth = tf.one_hot([0, 1], 3)
out["smoothed_loss"] = {str(v): float(loss_function(hp(label_smoothing=v), v)(truth, truth * 0.998 + 0.001))
                        for v in (0.0, 0.3)}
checker = tf.io.encode_png(tf.cast(tf.reshape(tf.tile([[0, 255], [255, 0]], [4, 4]), (8, 8, 1)) * tf.ones((1, 1, 3), tf.int32), tf.uint8))
out["resized_values"] = {m: sorted({float(v) for v in make_preprocess(5, m)(checker).numpy().ravel()})
                         for m in ("nearest", "bilinear")}
out["families"] = {}
for name, size in (("mobilenet_v3_small", 32), ("inception_v3", 75), ("resnet50", 32), ("resnet50_v2", 32),
                   ("efficientnet_b0", 32), ("efficientnet_v2_b0", 32)):
    net = build_model(hp(model_name=name, use_pretrained_model=0, image_size=size), 4, None, True)
    scores = net(tf.zeros((2, size, size, 3)), training=False).numpy()
    out["families"][name] = [list(scores.shape), round(float(scores.sum()), 3)]
out["replicas"] = cluster.strategy.num_replicas_in_sync
out["policies"] = [precision_policy(job), precision_policy(job._replace(num_gpus=1))]
tf.keras.mixed_precision.set_global_policy("mixed_float16")
mixed = build_model(hp(use_pretrained_model=0, image_size=32), 3, None, False)
out["mixed"] = {"backbone": mixed.layers[1].layers[2].compute_dtype, "top": mixed.get_layer("top").compute_dtype,
                "variables": sorted({v.dtype for v in mixed.trainable_variables})}
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
    assert model["input"] == [None, 32, 32, 3] and model["outputs"] == 5 and model["activation"] == "softmax"
    assert model["l2"] == pytest.approx(0.01) and model["dropout"] == [0.3]
    assert model["bn_momenta"] == [0.9] and model["long_run_momenta"] == [0.999]  # MobileNetV2 keeps its own


def test_label_smoothing_and_resize_interpolation(probe) -> None:
    assert probe["smoothed_loss"]["0.0"] < 0.01 < 0.3 < probe["smoothed_loss"]["0.3"]
    assert probe["resized_values"]["nearest"] == [0.0, 255.0]  # only the source's values
    assert len(probe["resized_values"]["bilinear"]) > 2  # blends neighbours


def test_every_model_family_builds_and_answers_probabilities(probe) -> None:
    for name, (shape, total) in probe["families"].items():
        assert shape == [2, 4] and total == pytest.approx(2.0, abs=1e-3), name


def test_binary_mode_is_one_sigmoid(probe) -> None:
    assert probe["binary"] == {"outputs": 1, "activation": "sigmoid"}
    assert probe["binary_accuracy"] == "BinaryAccuracy"


def test_eval_metric_builds_its_keras_metric(probe) -> None:
    assert probe["metrics"] == {
        "accuracy": "CategoricalAccuracy",
        "precision": "Precision",
        "recall": "Recall",
        "auc": "AUC",
    }


def test_mixed_precision_on_gpus_keeps_the_head_in_float32(probe) -> None:
    assert probe["policies"] == ["float32", "mixed_float16"]
    assert probe["mixed"] == {"backbone": "float16", "top": "float32", "variables": ["float32"]}


def test_logical_cpu_devices_give_a_mirrored_strategy_two_replicas(probe) -> None:
    assert probe["replicas"] == 2
