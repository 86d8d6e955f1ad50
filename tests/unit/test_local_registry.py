"""The local pipeline's model registry (app/pipeline/registry.py) records a model's drift
baseline where it records its evaluation, read from the job's output.tar.gz as the cloud's gate
reads it, so that a local version and a cloud model package carry the same baseline."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, Optional

import pytest

from app.pipeline.registry import ModelRegistry, job_baseline
from lambdas.gate.logic import UnreadableBaseline, baseline_from_output
from tests.builders import tar_gz

BASELINE = json.dumps({"version": 1, "labels": ["cat", "dog"], "train": {"samples": 12}}, indent=1).encode()
EVALUATION = {"accuracy": 0.9, "top_k_accuracy": 1.0, "loss": 0.2}



def output_tar(tmp_path: Path, files: Dict[str, bytes], name: str = "output.tar.gz") -> Path:
    """A job's output.tar.gz (SageMaker's copy of output/data) holding ``files``."""
    path = tmp_path / name
    path.write_bytes(tar_gz(files))
    return path


def register(tmp_path: Path, baseline: Optional[bytes]) -> Dict[str, object]:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(tar_gz({"model-info.json": b"{}", **({"baseline.json": baseline} if baseline else {})}))
    registry = ModelRegistry(str(tmp_path / "registry"), "image-classification")
    return registry.register(model, EVALUATION, "Approved", "flowers-v1-abc", {"job": "j"}, "ok", baseline)


def test_a_version_records_its_baseline_beside_its_evaluation(tmp_path: Path) -> None:
    # Given a job whose output/data holds baseline.json beside evaluation.json
    output = output_tar(tmp_path, {"evaluation.json": json.dumps(EVALUATION).encode(), "baseline.json": BASELINE})
    # When the pipeline registers its model with the baseline it read there
    package = register(tmp_path, job_baseline(output))
    # Then the version's folder holds the job's baseline.json, byte for byte, and package.json points at it
    folder = tmp_path / "registry" / "image-classification" / "v1"
    assert package["baseline"] == str(folder / "baseline.json")
    assert (folder / "baseline.json").read_bytes() == BASELINE
    assert sorted(p.name for p in folder.iterdir()) == [
        "baseline.json",
        "evaluation.json",
        "model.tar.gz",
        "package.json",
    ]
    (stored,) = ModelRegistry(str(tmp_path / "registry"), "image-classification").versions()
    assert stored["baseline"] == package["baseline"] and stored["metrics"]["accuracy"] == 0.9


def test_a_version_without_a_baseline_says_so(tmp_path: Path) -> None:
    output = output_tar(tmp_path, {"evaluation.json": json.dumps(EVALUATION).encode()})
    assert job_baseline(output) is None and job_baseline(None) is None and job_baseline(tmp_path / "gone") is None
    package = register(tmp_path, job_baseline(output))
    folder = tmp_path / "registry" / "image-classification" / "v1"
    assert "baseline" in package and package["baseline"] is None
    assert not (folder / "baseline.json").exists()


def test_an_unreadable_baseline_is_left_out_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    output = output_tar(tmp_path, {"evaluation.json": b"{}", "baseline.json": b"[1, 2]"})
    with caplog.at_level(logging.WARNING, logger="app.pipeline.registry"):
        assert job_baseline(output) is None
    assert "baseline.json not recorded: not a JSON object" in caplog.text
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tarball")
    assert job_baseline(broken) is None


@pytest.mark.parametrize(
    "files",
    [
        {"evaluation.json": b"{}", "baseline.json": BASELINE},
        {"evaluation.json": b"{}", "./baseline.json": BASELINE},
        {"evaluation.json": b"{}", "nested/baseline.json": BASELINE},
        {"evaluation.json": b"{}"},
        {"evaluation.json": b"{}", "baseline.json": b"{truncated"},
        {"evaluation.json": b"{}", "baseline.json": b'"text"'},
    ],
    ids=["present", "dot-slash", "not-at-the-root", "absent", "not-json", "not-an-object"],
)
def test_local_and_cloud_record_the_same_baseline(tmp_path: Path, files: Dict[str, bytes]) -> None:
    """The local registry's baseline is the gate's: the same bytes, or none where the gate
    registers the model without DriftCheckBaselines (an unreadable one included)."""
    output = output_tar(tmp_path, files)
    try:
        cloud = baseline_from_output(output.read_bytes())
    except UnreadableBaseline:
        cloud = None  # the gate handler's choice: a warning, and the request without the baseline
    assert job_baseline(output) == cloud
