"""Shared fixtures: run the CLI in-process and parse its JSON report; run code on the container
stack (.venv-container)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from app.cli.main import main


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Tuple[int, str, str]]:
    """Run ``imgclf ARGS``; returns (exit code, stdout, stderr). Usage errors exit via SystemExit."""

    def run(*args: str) -> Tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def validate_json(cli: Callable[..., Tuple[int, str, str]]) -> Callable[..., Tuple[int, Dict[str, Any]]]:
    """Run ``imgclf validate --json PATH ARGS``; returns (exit code, report)."""

    def run(path: str, *args: str) -> Tuple[int, Dict[str, Any]]:
        code, out, err = cli("validate", str(path), "--json", "--workers", "1", *args)
        assert "Traceback" not in err, err
        return code, json.loads(out)

    return run


def codes(report: Dict[str, Any], kind: str = "errors") -> List[str]:
    return [issue["code"] for issue in report[kind]]


def find(report: Dict[str, Any], code: str) -> Dict[str, str]:
    for issue in report["errors"] + report["warnings"]:
        if issue["code"] == code:
            return issue
    raise AssertionError("no {} in {}".format(code, report["errors"] + report["warnings"]))


ROOT = Path(__file__).resolve().parents[1]


def python38() -> Optional[str]:
    """The Python 3.8 that the Makefile builds .venv-container from (its PYTHON38): $PYTHON38,
    else the first of python3.8 on PATH and /root/.pyenv/versions/3.8*/bin/python3.8 that runs
    (a pyenv shim may be on PATH without 3.8 being selected)."""
    candidates = [os.environ.get("PYTHON38"), shutil.which("python3.8")]
    candidates += sorted(glob.glob("/root/.pyenv/versions/3.8*/bin/python3.8"))
    for python in candidates:
        if python:
            check = [python, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"]
            if subprocess.run(check, capture_output=True).returncode == 0:
                return python
    return None


@pytest.fixture(scope="session")
def in_container() -> Callable[..., str]:
    """Run Python code on the container stack: .venv-container (Python 3.8, numpy 1.19.5,
    Pillow 9.5.0, mxnet 1.9.1, no OpenCV, as the AWS MXNet 1.9 containers). Skipped where no
    Python 3.8 exists (the Makefile then does not build it)."""
    from tests.interop.conftest import missing_environment, runner

    if not (ROOT / ".venv-container" / "bin" / "python").exists():
        if python38() is None:
            pytest.skip(
                "no Python 3.8 interpreter (python3.8 on PATH or /root/.pyenv/versions/3.8*/bin/python3.8), "
                "so no .venv-container"
            )
        missing_environment(".venv-container")
    return runner(".venv-container")
