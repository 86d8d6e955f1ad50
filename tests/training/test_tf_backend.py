"""The TensorFlow backend: its hyperparameters, a real CPU training run, and its model behind
the same endpoint contract as the MXNet backend's."""

from __future__ import annotations

import json
import re
import tarfile

import pytest

from app.local_sagemaker import LocalTrainingJob
from app.local_serving import ModelServer, invoke
from image_training import tf_hyperparameters
from image_training.errors import HyperparameterError
from tests.builders import png
from tests.training.conftest import kill_job, train_command


def test_defaults_are_the_tf_algorithms() -> None:
    hp = tf_hyperparameters.parse({})
    assert (hp["epochs"], hp["batch_size"], hp["learning_rate"], hp["optimizer"]) == (3, 32, 0.001, "adam")
    assert (hp["dropout_rate"], hp["label_smoothing"], hp["regularizers_l2"], hp["epsilon"]) == (0.2, 0.1, 0.0001, 1e-7)
    assert (hp["beta_1"], hp["beta_2"], hp["momentum"], hp["rho"]) == (0.9, 0.999, 0.9, 0.95)
    assert hp["reinitialize_top_layer"] == "Auto" and hp["train_only_top_layer"] is False
    assert hp["model_name"] == "mobilenet_v2" and hp["image_size"] == 224  # the network's native size
    assert tf_hyperparameters.parse({"model_name": "inception_v3"})["image_size"] == 299


@pytest.mark.parametrize(
    "raw, name",
    [
        ({"model_name": "vgg16"}, "model_name"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"augmentation_random_flip": "diagonal"}, "augmentation_random_flip"),
        ({"train_only_top_layer": "True", "use_pretrained_model": "0"}, "train_only_top_layer"),
        ({"image_size": "8"}, "image_size"),
        ({"model_name": "inception_v3", "image_size": "64"}, "image_size"),
        ({"epochs": "0"}, "epochs"),
    ],
)
def test_invalid_values_name_the_hyperparameter(raw, name) -> None:
    with pytest.raises(HyperparameterError) as err:
        tf_hyperparameters.parse(raw)
    assert err.value.name == name


@pytest.fixture(scope="module")
def tf_model(tmp_path_factory, digits):
    work = tmp_path_factory.mktemp("tfjob")
    values = {"model_name": "mobilenet_v2", "use_pretrained_model": "0", "image_size": "32", "epochs": "8"}
    result = LocalTrainingJob(
        "tensorflow",
        str(work),
        {"train": str(digits / "train"), "validation": str(digits / "validation")},
        values,
        max_runtime=600,
    ).run(echo=None)
    return result


@pytest.mark.slow
@pytest.mark.tensorflow
def test_tf_training_learns_and_writes_the_artifact(tf_model) -> None:
    log = tf_model.log.read_text()
    assert tf_model.exit_code == 0, log[-3000:]
    for pattern in (r"val_accuracy: [0-9.]+", r"- accuracy: [0-9.]+", r"val_loss: [0-9.]+", r"- loss: [0-9.]+"):
        assert re.search(pattern, log), pattern  # the TF algorithm's metric regexes
    assert tf_model.evaluation is not None and tf_model.evaluation["accuracy"] > 0.6
    with tarfile.open(tf_model.model_tar) as tar:
        names = set(tar.getnames())
    assert {"1/saved_model.pb", "model-info.json", "labels.json", "evaluation.json", "code/inference.py"} <= names


@pytest.mark.slow
@pytest.mark.tensorflow
def test_tf_model_serves_with_the_same_contract(tf_model, digits) -> None:
    body = next((digits / "validation" / "2").glob("*.png")).read_bytes()
    with ModelServer(str(tf_model.model_tar)) as server:
        status, _, raw = invoke(server.url, body, "image/png", "application/json;verbose")
        answer = json.loads(raw)
        assert status == 200 and set(answer) == {"probabilities", "labels", "predicted_label", "top_k"}
        assert answer["labels"] == ["0", "1", "2"] and abs(sum(answer["probabilities"]) - 1) < 1e-4
        assert invoke(server.url, body, "image/png", "application/jsonlines")[0] == 200
        assert invoke(server.url, png(), "text/plain")[0] == 415
        assert invoke(server.url, b"\xff\xd8\xff garbage", "image/jpeg")[0] == 400


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.parametrize("raw, expected", [({"binary_mode": "1"}, "binary_mode"), ({"optimizer": "lion"}, "optimizer")])
def test_tf_invalid_combinations_fail_with_a_client_error(tmp_path, digits, raw, expected) -> None:
    values = {"use_pretrained_model": "0", "image_size": "32", "epochs": "1", **raw}
    result = LocalTrainingJob(
        "tensorflow",
        str(tmp_path / "job"),
        {"train": str(digits / "train"), "validation": str(digits / "validation")},
        values,
    ).run(echo=None)
    assert result.exit_code == 1 and result.failure is not None
    assert result.failure.startswith("ClientError: hyperparameter " + expected)


@pytest.mark.slow
@pytest.mark.tensorflow
def test_tf_sigkill_mid_training_then_resume(tmp_path, digits) -> None:
    import subprocess
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    args = train_command(
        "tensorflow", digits, out, checkpoints, {"use_pretrained_model": "0", "image_size": "32", "epochs": "5"}
    )
    first_log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(args, cwd=str(root), stdout=first_log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = re.findall(
            r"^Epoch (\d+)/5 - ",
            (out / "job" / "job.log").read_text() if (out / "job" / "job.log").exists() else "",
            re.M,
        )
        if len(done) >= 2:
            break
        time.sleep(0.2)
    kill_job(proc, out)
    first_log.close()
    time.sleep(1)
    finished = len(re.findall(r"^Epoch (\d+)/5 - ", (out / "job" / "job.log").read_text(), re.M))
    assert 2 <= finished < 5

    rerun = subprocess.run(args, cwd=str(root), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    epochs = [int(e) for e in re.findall(r"^Epoch (\d+)/5 - ", (out / "job.log").read_text(), re.M)]
    assert epochs == list(range(finished + 1, 6))  # continued after the last completed epoch
