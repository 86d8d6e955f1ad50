"""The demo and the local pipeline end to end: report, registry, HTTP classification, reuse on
an unchanged dataset, blue/green on a new version, rollback on a broken model, gate rejection."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from app.local_serving import invoke
from app.pipeline.endpoint import LocalEndpoint
from app.pipeline.registry import ModelRegistry
from app.sample_data import write_digits

pytestmark = [pytest.mark.slow, pytest.mark.mxnet]
FAST = ["--fast", "--no-serve", "--threshold", "0.2", "--max-regression", "1"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One fast demo run on the embedded digits (3 epochs)."""
    from app.cli.main import main

    work = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--work", str(work), *FAST])
    return work, code


def test_demo_deploys_and_reports(demo) -> None:
    work, code = demo
    assert code == 0
    registry = ModelRegistry(str(work / "registry"), "image-classification")
    versions = registry.versions()
    assert [v["status"] for v in versions] == ["Approved"] and registry.deployed()["version"] == 1
    assert versions[0]["lineage"]["dataset_version"] and versions[0]["metrics"]["accuracy"] > 0.2
    runs = list((work / "runs").iterdir())
    assert len(runs) == 1
    page = (runs[0] / "report.html").read_text()
    for section in (
        "Steps",
        "Training",
        "Per class",
        "Held-out images classified through the endpoint",
        "Validation report",
        "Hyperparameters",
        "data:image/png;base64,",
    ):
        assert section in page
    assert (runs[0] / "accuracy.png").exists() and (runs[0] / "confusion.png").exists()
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert [s["step"] for s in summary["steps"]] == [
        "validate",
        "pack",
        "train",
        "gate",
        "register",
        "deploy",
        "classify",
        "monitor",
    ]
    assert "8 held-out images" in summary["steps"][-2]["detail"]
    # production, watched: held-out images as they are show no drift, inverted ones do
    assert summary["monitor"]["drift"] == {"held-out": False, "inverted": True}, summary["monitor"]
    assert any(check.startswith("image.") for check in summary["monitor"]["significant"]["inverted"])
    for page in summary["monitor"]["reports"].values():
        assert "<img" in open(page).read()


def test_second_run_reuses_then_new_version_goes_blue_green(demo, cli) -> None:
    work, _ = demo
    code, out, _ = cli("demo", "--work", str(work), *FAST)
    assert code == 0 and "reused" in out and "model version 1" in out
    # a new dataset version: one more training image
    extra = work / "digits" / "train" / "0" / "extra.png"
    shutil.copy(next((work / "digits" / "train" / "0").glob("*.png")), extra)
    code, out, _ = cli("demo", "--work", str(work), *FAST)
    assert code == 0 and "blue/green from version 1" in out
    assert ModelRegistry(str(work / "registry"), "image-classification").deployed()["version"] == 2


def test_gate_rejects_and_exit_code_3(demo, cli) -> None:
    work, _ = demo
    code, out, _ = cli(
        "demo", "--work", str(work), "--fast", "--no-serve", "--threshold", "0.9999", "--max-regression", "1"
    )
    assert code == 3 and "rejected" in out
    registry = ModelRegistry(str(work / "registry"), "image-classification")
    assert registry.versions()[-1]["status"] == "Rejected" and registry.deployed()["version"] == 2


def test_broken_model_rolls_back_to_the_live_one(demo, tmp_path) -> None:
    work, _ = demo
    good = ModelRegistry(str(work / "registry"), "image-classification").versions()[0]["model"]
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(good) as src, tarfile.open(broken, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name.endswith(".params"):
                continue  # the weights are gone: the server cannot load the model
            dst.addfile(member, data)
    image = next((work / "digits" / "validation" / "1").glob("*.png")).read_bytes()
    endpoint = LocalEndpoint()
    try:
        assert endpoint.deploy(good, 1, image, "image/png").switched
        outcome = endpoint.deploy(str(broken), 9, image, "image/png")
        assert not outcome.switched and "did not start" in outcome.reason
        assert endpoint.live_version == 1
        status, _, body = invoke(endpoint.url, image, "image/png", "application/json;verbose")
        assert status == 200 and json.loads(body)["labels"][0] == "0"
    finally:
        endpoint.stop()


def test_invalid_dataset_fails_with_exit_1(tmp_path, cli) -> None:
    root = tmp_path / "bad"
    write_digits(str(root), classes=(0, 1))
    (root / "train" / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, out, _ = cli("pipeline", "run", str(root), "--work", str(tmp_path / "work"), "--no-serve")
    assert code == 1 and "IMG_" in out


@pytest.mark.tensorflow
def test_demo_with_the_tensorflow_backend(tmp_path, cli) -> None:
    work = tmp_path / "tf"
    code, out, err = cli("demo", "--backend", "tensorflow", "--work", str(work), *FAST)
    assert code == 0, out + err
    registry = ModelRegistry(str(work / "registry"), "image-classification")
    assert registry.deployed()["version"] == 1
    report = next((work / "runs").iterdir()) / "report.html"
    assert "backend <b>tensorflow</b>" in report.read_text()


def test_class_names_survive_packing_into_the_model(tmp_path, cli) -> None:
    root = tmp_path / "named"
    write_digits(str(root), classes=(0, 1))
    for channel in ("train", "validation"):
        for digit, name in (("0", "zero"), ("1", "one")):
            (root / channel / digit).rename(root / channel / name)
    work = tmp_path / "work"
    code, out, err = cli(
        "pipeline", "run", str(root), "--work", str(work), "--no-serve", "--threshold", "0", "--hp", "epochs=2"
    )
    assert code == 0, out + err
    package = ModelRegistry(str(work / "registry"), "image-classification").versions()[0]
    with tarfile.open(package["model"]) as tar:
        labels = json.load(tar.extractfile("labels.json"))  # type: ignore[arg-type]
    assert labels == ["one", "zero"]  # the folders' names, through the packed RecordIO
    summary = json.loads(next((work / "runs").iterdir()).joinpath("summary.json").read_text())
    right = int(summary["steps"][-1]["detail"].rsplit(": ", 1)[1].split()[0])
    assert right >= 1  # the answers carry the names, so they can match the held-out truth
