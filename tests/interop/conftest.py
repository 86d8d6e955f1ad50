"""Interop tests run code in the backend environments (.venv-mxnet, .venv-tf) as subprocesses,
the way the local runner starts a training container."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]


def missing_environment(venv: str) -> None:
    """A test needs an environment that is not built: a failure under `make test`, which builds
    every one, and a skip under `make test-fast` (IMGCLF_TEST_FAST), which builds only .venv."""
    if os.environ.get("IMGCLF_TEST_FAST"):
        pytest.skip(f"{venv} is not built (make test-fast builds only .venv; make test builds it)")
    pytest.fail(f"{venv} is missing: `make test` creates it (or run `make env`)")


def backend_python(venv: str) -> str:
    python = ROOT / venv / "bin" / "python"
    if not python.exists():
        missing_environment(venv)
    return str(python)


def runner(venv: str) -> Callable[..., str]:
    def run(code: str, *args: str, cwd: str = ".") -> str:
        result = subprocess.run(
            [backend_python(venv), "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=dict(os.environ, PYTHONWARNINGS="ignore", MXNET_CUDNN_AUTOTUNE_DEFAULT="0"),
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    return run


@pytest.fixture(scope="session")
def in_mxnet() -> Callable[..., str]:
    return runner(".venv-mxnet")


@pytest.fixture(scope="session")
def in_tensorflow() -> Callable[..., str]:
    return runner(".venv-tf")
