"""``imgclf pipeline run`` trains, deploys and classifies on the dataset shapes beyond a root
with train/ and validation/ (tests/unit/test_pipeline_shapes.py checks the channels each shape
becomes, without training): one epoch on a few small digits each."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Dict

import pytest

from app.pipeline.registry import ModelRegistry
from app.sample_data import write_digits

pytestmark = [pytest.mark.slow]
RUN = ["--no-serve", "--threshold", "0", "--hp", "epochs=1"]


def digits(root: Path) -> Path:
    """Two digit classes named zero and one, train/ and validation/ (a few dozen images)."""
    write_digits(str(root), size=16, classes=(0, 1), validation_fraction=0.5)
    for channel in ("train", "validation"):
        for digit, name in (("0", "zero"), ("1", "one")):
            (root / channel / digit).rename(root / channel / name)
    return root


def summary(work: Path) -> Dict[str, Any]:
    [run] = list((work / "runs").iterdir())
    return json.loads((run / "summary.json").read_text())


def model_labels(work: Path) -> Any:
    package = ModelRegistry(str(work / "registry"), "image-classification").versions()[0]
    with tarfile.open(package["model"]) as tar:
        return json.load(tar.extractfile("labels.json"))  # type: ignore[arg-type]


def classified(result: Dict[str, Any]) -> int:
    """How many held-out images went through the endpoint (with a known truth)."""
    detail = result["steps"][-1]["detail"]
    assert result["steps"][-1]["step"] == "classify", result["steps"]
    return int(detail.split(" held-out images")[0])


@pytest.mark.tensorflow
def test_one_channel_folder_is_split_as_the_tensorflow_job_splits_it(tmp_path: Path, cli: Any) -> None:
    """Class folders at the root, no validation: the job holds out validation_split_ratio of
    train, evaluates on exactly those, and the pipeline classifies them through the endpoint."""
    root = digits(tmp_path / "d") / "train"
    work = tmp_path / "work"
    code, out, err = cli("pipeline", "run", str(root), "--backend", "tensorflow", "--work", str(work), *RUN)
    assert code == 0, out + err
    result = summary(work)
    assert [s["step"] for s in result["steps"]][:3] == ["validate", "split", "pack"]
    train_samples = result["steps"][0]["detail"].split()[1]
    assert f"holds out {result['held_out']} of {train_samples} train records" in out
    assert result["evaluation"]["samples"] == result["held_out"]  # the job validated on what we held out
    assert classified(result) == min(8, result["held_out"])
    assert model_labels(work) == ["one", "zero"]


@pytest.mark.tensorflow
def test_a_recordio_root_trains_with_its_class_names(tmp_path: Path, cli: Any) -> None:
    source = digits(tmp_path / "d") / "train"
    root = tmp_path / "rec"
    root.mkdir()
    code, out, err = cli("pack", str(source), str(root / "digits"))
    assert code == 0 and (root / "labels.json").exists(), out + err
    work = tmp_path / "work"
    code, out, err = cli(
        "pipeline", "run", str(root / "digits.rec"), "--backend", "tensorflow", "--work", str(work), *RUN
    )
    assert code == 0, out + err
    result = summary(work)
    assert result["steps"][0]["detail"].endswith(" recordio")
    assert result["evaluation"]["samples"] == result["held_out"]
    assert model_labels(work) == ["one", "zero"]  # labels.json came with the .rec file


@pytest.mark.mxnet
def test_recordio_train_and_image_validation_with_mxnet(tmp_path: Path, cli: Any) -> None:
    root = digits(tmp_path / "d")
    code, out, err = cli("pack", str(root / "train"), str(tmp_path / "digits"))
    assert code == 0, out + err
    shutil.rmtree(root / "train")
    (root / "train").mkdir()
    for name in ("digits.rec", "digits.idx", "labels.json"):
        shutil.move(str(tmp_path / name), str(root / "train" / name))
    work = tmp_path / "work"
    code, out, err = cli("pipeline", "run", str(root), "--work", str(work), "--hp", "mini_batch_size=8", *RUN)
    assert code == 0, out + err
    result = summary(work)
    assert [s["step"] for s in result["steps"]][:2] == ["validate", "pack"]
    assert classified(result) == 8
    assert result["hyperparameters"]["num_training_samples"] == result["steps"][0]["detail"].split()[1]
