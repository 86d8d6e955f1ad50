"""Shared data for training tests: three classes of the embedded handwritten digits."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.sample_data import write_digits


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    """Three classes of the embedded handwritten digits as 32x32 PNG folders."""
    root = tmp_path_factory.mktemp("digits")
    write_digits(str(root), classes=(0, 1, 2))
    return root


def hps(digits: Path, **extra: str) -> dict:
    """Hyperparameters of a small, fast CIFAR-style ResNet-20 run on ``digits``."""
    train = sum(1 for _ in (digits / "train").rglob("*.png"))
    base = {
        "num_classes": "3",
        "num_training_samples": str(train),
        "num_layers": "20",
        "image_shape": "3,32,32",
        "resize": "32",
        "mini_batch_size": "32",
        "learning_rate": "0.05",
    }
    base.update(extra)
    return base


@pytest.fixture(scope="session")
def in_mxnet():
    from tests.interop.conftest import runner

    return runner(".venv-mxnet")


@pytest.fixture(scope="session")
def in_tensorflow():
    from tests.interop.conftest import runner

    return runner(".venv-tf")


def train_command(backend: str, digits: Path, out: Path, checkpoints: Path, hyperparameters: dict) -> list:
    """``imgclf train`` as a separate process, so that a test can kill it like a spot interruption."""
    import sys

    args = [
        sys.executable,
        "-m",
        "app.cli.main",
        "train",
        "--backend",
        backend,
        "--train",
        str(digits / "train"),
        "--validation",
        str(digits / "validation"),
        "--output",
        str(out),
        "--checkpoint-dir",
        str(checkpoints),
    ]
    for key, value in hyperparameters.items():
        args += ["--hp", f"{key}={value}"]
    return args


def kill_job(proc, out: Path) -> None:
    """SIGKILL the whole job, as a spot interruption would: the CLI and the container it started
    (which may already have died on its broken log pipe)."""
    import contextlib
    import os
    import signal

    container = int((out / "job" / "container.pid").read_text())
    os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(container, signal.SIGKILL)
    proc.wait()
