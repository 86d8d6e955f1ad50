"""Code under training_code runs in the AWS MXNet 1.9 container: Python 3.8, and only the
standard library, numpy, PIL, cv2 and mxnet; the TensorFlow backend's own modules (tf_*.py)
may import tensorflow as well."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING_CODE = ROOT / "training_code"
ALLOWED = {"numpy", "PIL", "cv2", "mxnet"}
OWN = {p.name for p in TRAINING_CODE.iterdir() if (p / "__init__.py").exists()}
REMOVED_FROM_NEWER_PYTHONS = {
    "imghdr",
    "cgi",
    "cgitb",
    "asynchat",
    "asyncore",
    "distutils",
    "imp",
    "smtpd",
    "sndhdr",
    "pipes",
    "crypt",
    "nntplib",
    "telnetlib",
    "uu",
    "xdrlib",
    "aifc",
    "audioop",
    "chunk",
    "mailcap",
    "msilib",
    "nis",
    "ossaudiodev",
    "spwd",
    "sunau",
}


def python_files() -> list:
    return sorted(TRAINING_CODE.rglob("*.py"))


def test_vermin_says_python_3_8_is_enough() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("vermin")),
            "--target=3.8-",
            "--violations",
            "--no-tips",
            "--eval-annotations",
            str(TRAINING_CODE),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    not shutil.which("python3.8") and not os.path.exists("/root/.pyenv/versions/3.8.18/bin/python"),
    reason="no Python 3.8 here",
)
def test_python_3_8_compiles_the_training_code(tmp_path) -> None:
    python38 = shutil.which("python3.8") or "/root/.pyenv/versions/3.8.18/bin/python"
    env = dict(os.environ, PYENV_VERSION="3.8.18", PYTHONPYCACHEPREFIX=str(tmp_path))
    result = subprocess.run(
        [python38, "-m", "compileall", "-q", str(TRAINING_CODE)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_container_packages_are_imported() -> None:
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                allowed = ALLOWED | ({"tensorflow"} if path.name.startswith(("tf_", "train_tensorflow")) else set())
                if top in REMOVED_FROM_NEWER_PYTHONS or (top not in stdlib and top not in allowed and top not in OWN):
                    bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad
