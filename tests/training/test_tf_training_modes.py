"""The TensorFlow backend's other ways to train: a binary head with another eval_metric and a
validation split of train, incremental training from its own artifact, a pretrained weights
file with the top layer only, several replicas on one host and two workers on localhost."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from app.local_sagemaker import LocalTrainingJob
from app.local_serving import ModelServer, invoke
from app.sample_data import write_digits
from tests.training.test_tf_backend import tf_model  # noqa: F401 - the shared trained model

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow]
SMALL = {"model_name": "mobilenet_v2", "use_pretrained_model": "0", "image_size": "32"}


def run(work: Path, channels: dict, values: dict, **options):
    return LocalTrainingJob("tensorflow", str(work), channels, values, max_runtime=600, **options).run(echo=None)


@pytest.fixture(scope="module")
def two_digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two-digits")
    write_digits(str(root), classes=(0, 1))
    return root


def test_binary_mode_auc_and_a_validation_split(tmp_path, two_digits) -> None:
    values = {**SMALL, "epochs": "4", "binary_mode": "1", "eval_metric": "auc", "validation_split_ratio": "0.25"}
    result = run(tmp_path / "job", {"train": str(two_digits / "train")}, values)  # no validation channel
    log = result.log.read_text()
    assert result.exit_code == 0, log[-3000:]
    assert re.search(r"val_auc: [0-9.]+", log) and re.search(r"val_accuracy: [0-9.]+", log)
    evaluation = result.evaluation
    train_images = sum(1 for _ in (two_digits / "train").rglob("*.png"))
    assert evaluation["samples"] == round(train_images * 0.25)  # held out of train
    assert evaluation["eval_metric"]["name"] == "auc" and evaluation["eval_metric"]["value"] > 0.8
    assert evaluation["label_names"] == ["0", "1"]
    body = next((two_digits / "validation" / "1").glob("*.png")).read_bytes()
    with ModelServer(str(result.model_tar)) as server:
        status, _, raw = invoke(server.url, body, "image/png")
    answer = json.loads(raw)
    assert status == 200 and len(answer["probabilities"]) == 2 and abs(sum(answer["probabilities"]) - 1) < 1e-5


def test_binary_mode_needs_two_classes_and_a_split_needs_records(tmp_path, digits) -> None:
    three = run(tmp_path / "three", {"train": str(digits / "train")}, {**SMALL, "binary_mode": "1"})
    assert three.exit_code == 1 and "binary_mode: needs a dataset of two classes, this one has 3" in three.failure
    no_split = run(tmp_path / "none", {"train": str(digits / "train")}, {**SMALL, "validation_split_ratio": "0"})
    assert no_split.exit_code == 1 and "the validation channel is missing" in no_split.failure


def test_incremental_training_continues_or_restarts_the_top_layer(tmp_path, digits, two_digits, tf_model) -> None:  # noqa: F811
    model_channel = tmp_path / "model"
    model_channel.mkdir()
    shutil.copy(tf_model.model_tar, model_channel / "model.tar.gz")
    channels = {"train": str(digits / "train"), "validation": str(digits / "validation"), "model": str(model_channel)}
    # one epoch at a tiny learning rate: only a continued model can score well
    kept = run(
        tmp_path / "kept", channels, {"epochs": "1", "learning_rate": "0.00001", "reinitialize_top_layer": "False"}
    )
    log = kept.log.read_text()
    assert kept.exit_code == 0, log[-3000:]
    assert "keeping the earlier top layer" in log and "at 32x32" in log  # the earlier network's size
    assert kept.evaluation["accuracy"] > 0.6

    other = {
        "train": str(two_digits / "train"),
        "validation": str(two_digits / "validation"),
        "model": str(model_channel),
    }
    refused = run(tmp_path / "refused", other, {"epochs": "1", "reinitialize_top_layer": "False"})
    assert refused.exit_code == 1 and "reinitialize_top_layer: False" in refused.failure
    fresh = run(tmp_path / "fresh", other, {"epochs": "1"})  # Auto: new classes, new top layer
    assert fresh.exit_code == 0 and "reinitializing the earlier top layer" in fresh.log.read_text()
    assert fresh.evaluation["label_names"] == ["0", "1"]
    wrong = run(tmp_path / "wrong", channels, {"epochs": "1", "model_name": "resnet50"})
    assert wrong.exit_code == 1 and wrong.failure.startswith("ClientError: hyperparameter model_name: resnet50")


def test_top_layer_only_from_a_weights_file_on_two_replicas(tmp_path, digits, in_tensorflow) -> None:
    weights = tmp_path / "pretrained" / "mobilenet_v2.weights.h5"
    weights.parent.mkdir()
    in_tensorflow(
        "import tensorflow as tf\n"
        "tf.keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3),"
        f" pooling='avg').save_weights({str(weights)!r})\n"
    )
    channels = {
        "train": str(digits / "train"),
        "validation": str(digits / "validation"),
        "pretrained": str(weights.parent),
    }
    values = {"model_name": "mobilenet_v2", "image_size": "32", "train_only_top_layer": "1", "epochs": "2"}
    env = {"IMGCLF_LOGICAL_CPUS": "2", "IMGCLF_PROGRESS_SECONDS": "0"}
    result = run(tmp_path / "job", channels, values, extra_env=env)
    log = result.log.read_text()
    assert result.exit_code == 0, log[-3000:]
    assert "(ImageNet weights)" in log and "2 replica(s) on 1 worker(s)" in log
    assert re.search(r"^Epoch 1/2 step \d+/\d+ - accuracy: [0-9.]+ - loss: ", log, re.M)  # progress within an epoch
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "other.weights.h5").write_bytes(b"not an h5 file")
    refused = run(tmp_path / "refused", {**channels, "pretrained": str(bad)}, values)
    assert (
        refused.exit_code == 1
        and "cannot load ImageNet weights for mobilenet_v2 from other.weights.h5" in refused.failure
    )


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two adjacent free ports")


def test_two_workers_on_localhost_with_multi_worker_mirrored_strategy(tmp_path, digits) -> None:
    channels = {"train": str(digits / "train"), "validation": str(digits / "validation")}
    values = {**SMALL, "epochs": "2", "_mwms_port": str(free_port_pair())}
    result = run(tmp_path / "job", channels, values, instance_count=2)
    log = result.log.read_text()
    assert result.exit_code == 0, log[-3000:] + (tmp_path / "job" / "algo-2" / "job.log").read_text()[-3000:]
    assert "2 replica(s) on 2 worker(s)" in log
    assert re.search(r"^Epoch 2/2 - loss: [0-9.]+ - accuracy", log, re.M)
    assert result.evaluation is not None and result.evaluation["samples"] > 0
    second = (tmp_path / "job" / "algo-2" / "job.log").read_text()
    assert "2 replica(s) on 2 worker(s)" in second and not any((tmp_path / "job" / "algo-2" / "model").iterdir())


def write_rec(folder: Path, images: Path, label) -> None:
    """One .rec/.idx per channel from the digit PNGs, with ``label(class_id)`` as each label."""
    from image_dataset.recordio import RecordIOWriter, pack

    for channel in ("train", "validation"):
        (folder / channel).mkdir(parents=True)
        files = sorted((images / channel).rglob("*.png"))
        with RecordIOWriter(str(folder / channel / "data.rec"), str(folder / channel / "data.idx")) as writer:
            for i, path in enumerate(files):
                writer.write(pack(label(int(path.parent.name)), path.read_bytes(), id=i), key=i)


def test_recordio_with_vector_labels_trains_and_multi_hot_is_refused(tmp_path, digits) -> None:
    vector = tmp_path / "vector"
    write_rec(vector, digits, lambda c: (float(c),))  # im2rec --pack-label: one class id in a vector
    channels = {name: str(vector / name) for name in ("train", "validation")}
    result = run(tmp_path / "job", channels, {**SMALL, "epochs": "3"})
    assert result.exit_code == 0, result.log.read_text()[-3000:]
    assert result.evaluation["label_names"] == ["0", "1", "2"] and result.evaluation["accuracy"] > 0.5

    multi_hot = tmp_path / "multi-hot"
    write_rec(multi_hot, digits, lambda c: [1.0 if i == c else 0.0 for i in range(3)])
    refused = run(tmp_path / "refused", {name: str(multi_hot / name) for name in ("train", "validation")}, SMALL)
    assert refused.exit_code == 1 and "the dataset is multi-label" in refused.failure


def test_early_stopping_batch_size_and_num_classes_checked(tmp_path, digits) -> None:
    values = {
        **SMALL,
        "epochs": "20",
        "early_stopping": "1",
        "early_stopping_patience": "1",
        "early_stopping_min_delta": "100",  # no epoch improves that much: stop after patience
        "batch_size": "16",
    }
    channels = {"train": str(digits / "train"), "validation": str(digits / "validation")}
    result = run(tmp_path / "job", channels, values, extra_env={"IMGCLF_PROGRESS_SECONDS": "0"})
    log = result.log.read_text()
    assert result.exit_code == 0, log[-3000:]
    assert re.findall(r"^Epoch (\d+)/20 - ", log, re.M) == ["1", "2"]
    assert result.evaluation["best_epoch"] == 0  # the first epoch's weights, restored
    train_images = sum(1 for _ in (digits / "train").rglob("*.png"))
    assert set(re.findall(r"^Epoch 1/20 step \d+/(\d+) ", log, re.M)) == {str(-(-train_images // 16))}
    wrong = run(tmp_path / "wrong", channels, {**SMALL, "num_classes": "5"})  # the folders name three
    assert wrong.exit_code == 1 and "num_classes is 5 but the dataset names 3 classes" in wrong.failure


def test_mixed_precision_path_trains_and_serves(tmp_path, digits) -> None:
    channels = {"train": str(digits / "train"), "validation": str(digits / "validation")}
    result = run(tmp_path / "job", channels, {**SMALL, "epochs": "2"}, extra_env={"IMGCLF_MIXED_PRECISION": "1"})
    log = result.log.read_text()
    assert result.exit_code == 0, log[-3000:]
    assert "mixed_float16" in log and result.evaluation["accuracy"] > 0.4
    body = next((digits / "validation" / "1").glob("*.png")).read_bytes()
    with ModelServer(str(result.model_tar)) as server:
        status, _, raw = invoke(server.url, body, "image/png")
    assert status == 200 and abs(sum(json.loads(raw)["probabilities"]) - 1) < 1e-3  # float32 out of a float16 net
