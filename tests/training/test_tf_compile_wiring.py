"""What tf_train.train() hands to ``model.compile()``: the loss carries the configured label
smoothing (categorical and binary), the optimizer the learning rate. The model, the input
pipeline and the backbone weights are replaced by fakes whose compile() records its arguments
and stops the run, so this checks the wiring itself, not a training run."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.tensorflow]

PROBE = r"""
import json, sys, tempfile
import tensorflow as tf
from image_training import tf_hyperparameters, tf_train
from image_training.data import ChannelData, PreparedData
from image_training.job import TrainingJob

class Compiled(Exception):
    pass

seen = []

class FakeModel:
    def compile(self, optimizer=None, loss=None, metrics=None, **kwargs):
        seen.append({"loss": type(loss).__name__, "smoothing": float(loss.get_config()["label_smoothing"]),
                     "lr": float(tf.keras.backend.get_value(optimizer.learning_rate)),
                     "metrics": [type(m).__name__ for m in metrics or []]})
        raise Compiled()

tf_train.build_model = lambda *args, **kwargs: FakeModel()
tf_train.dataset = lambda *args, **kwargs: None
tf_train.backbone_weights = lambda *args, **kwargs: None
work = tempfile.mkdtemp()
job = TrainingJob(work + "/m", work + "/o", work + "/o/d", work + "/c", {}, {}, {}, ["algo-1"], "algo-1", 0)
cluster = tf_train.Cluster(tf.distribute.get_strategy(), 0, 1)
for classes, extra in ((3, {"label_smoothing": "0.25"}), (2, {"label_smoothing": "0.4", "binary_mode": "1"}),
                       (3, {"label_smoothing": "0"}), (3, {})):
    hp = tf_hyperparameters.parse(dict(extra, learning_rate="0.0125"))
    data = PreparedData(ChannelData("t.rec", "t.idx", 40), ChannelData("v.rec", "v.idx", 10), classes, None, False, {})
    try:
        tf_train.train(job, hp, data, cluster, None)
    except Compiled:
        pass
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def compiled(in_tensorflow) -> list:
    return json.loads(in_tensorflow(PROBE).strip().splitlines()[-1])


def test_compile_gets_the_configured_label_smoothing(compiled) -> None:
    assert [(c["loss"], c["smoothing"]) for c in compiled[:3]] == [
        ("CategoricalCrossentropy", pytest.approx(0.25)),
        ("BinaryCrossentropy", pytest.approx(0.4)),
        ("CategoricalCrossentropy", 0.0),
    ]


def test_compile_gets_the_default_label_smoothing_and_the_learning_rate(compiled) -> None:
    assert compiled[3]["smoothing"] == pytest.approx(0.1)  # the documented default
    assert all(c["lr"] == pytest.approx(0.0125) for c in compiled)
    assert compiled[0]["metrics"] == ["CategoricalAccuracy"] and compiled[1]["metrics"] == ["BinaryAccuracy"]
