"""Every trained model carries baseline.json (image_training.baseline) for ``imgclf monitor``,
and leaves the same file in output/data for the Model Registry (the gate's copy): one short real
training run per backend through the local SageMaker runner."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any, Dict

import pytest

from app import monitor
from app.local_sagemaker import LocalTrainingJob
from image_training import baseline
from lambdas.gate.logic import baseline_from_output
from tests.training.conftest import hps

pytestmark = [pytest.mark.slow]


def archived(archive: str, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        stream = tar.extractfile(name)
        assert stream is not None, name
        return stream.read()


def stored_baseline(model_tar: str) -> Dict[str, Any]:
    with tarfile.open(model_tar) as tar:
        assert {"baseline.json", "model-info.json"} <= set(tar.getnames())
    return json.loads(archived(model_tar, "baseline.json"))


def check(result: Any, digits: Path) -> None:
    log = result.log.read_text()
    assert result.exit_code == 0, log[-3000:]
    stored = stored_baseline(result.model_tar)
    train = sum(1 for _ in (digits / "train").rglob("*.png"))
    validation = sum(1 for _ in (digits / "validation").rglob("*.png"))
    assert stored["version"] == baseline.BASELINE_VERSION and stored["labels"] == ["0", "1", "2"]
    assert stored["train"]["samples"] == train and stored["train"]["images"] == min(train, baseline.MAX_IMAGES)
    assert stored["train"]["failed"] == 0
    assert stored["train"]["class_counts"] == {
        d: sum(1 for _ in (digits / "train" / d).glob("*.png")) for d in ("0", "1", "2")
    }
    assert stored["train"]["histograms"]["width"]["mean"] == 32
    assert stored["validation"]["samples"] == validation
    assert stored["validation"]["accuracy"] == pytest.approx(result.evaluation["accuracy"])
    assert sum(stored["validation"]["predicted_class_counts"].values()) == validation
    assert 0 < stored["validation"]["mean_confidence"] <= 1
    assert monitor.load_baseline(result.model_tar) == stored  # what the monitor reads
    # output/data (SageMaker's output.tar.gz) holds the same file beside evaluation.json: the
    # gate copies it from there for the Model Registry's DriftCheckBaselines
    with tarfile.open(result.output_tar) as tar:
        assert {"baseline.json", "evaluation.json"} <= set(tar.getnames())
    assert archived(result.output_tar, "baseline.json") == archived(result.model_tar, "baseline.json")
    assert baseline_from_output(Path(result.output_tar).read_bytes()) == archived(result.model_tar, "baseline.json")


@pytest.mark.mxnet
def test_an_mxnet_model_carries_its_baseline(tmp_path: Path, digits: Path) -> None:
    job = LocalTrainingJob(
        "mxnet",
        str(tmp_path / "job"),
        {"train": str(digits / "train"), "validation": str(digits / "validation")},
        hps(digits, epochs="1"),
    )
    check(job.run(echo=None), digits)


@pytest.mark.tensorflow
def test_a_tensorflow_model_carries_its_baseline(tmp_path: Path, digits: Path) -> None:
    values = {"model_name": "mobilenet_v2", "use_pretrained_model": "0", "image_size": "32", "epochs": "1"}
    job = LocalTrainingJob(
        "tensorflow",
        str(tmp_path / "job"),
        {"train": str(digits / "train"), "validation": str(digits / "validation")},
        values,
        max_runtime=600,
    )
    check(job.run(echo=None), digits)
