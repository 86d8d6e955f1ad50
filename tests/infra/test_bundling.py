"""The Lambda bundle, built for real (pip for python3.14/arm64, no Docker): it holds the shared
format core and the schemas, and every handler imports from it alone."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from infra.lambda_code import build, source_hash

HANDLERS = ["trigger", "validate", "training", "gate", "deploy", "classify", "cleanup"]


@pytest.mark.slow
def test_bundle_is_complete_and_self_contained(tmp_path: Path) -> None:
    build(tmp_path)
    for package in ("lambdas", "image_dataset", "image_training", "aws_lambda_powertools", "numpy", "PIL"):
        assert (tmp_path / package).is_dir(), package
    assert not (tmp_path / "image_training" / "mxnet_train.py").exists(), "only what the functions import"
    assert list((tmp_path / "numpy" / "_core").glob("*cpython-314-aarch64-linux-gnu.so")), (
        "built for the Lambda platform"
    )
    # import every handler from the bundle's own code (the repository is not on the path)
    code = tmp_path / "code-only"
    code.mkdir()
    for package in ("lambdas", "image_dataset", "image_training", "imgclf_core"):
        (code / package).symlink_to(tmp_path / package)
    site = sysconfig.get_paths()["purelib"]
    script = (
        f"import sys; sys.path[:0] = [{str(code)!r}, {site!r}]\n"
        + "".join(f"import lambdas.{name}.handler\n" for name in HANDLERS)
        + f"import image_dataset; assert image_dataset.__file__.startswith({str(code)!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr


def test_source_hash_follows_the_bundled_code() -> None:
    assert source_hash() == source_hash() and len(source_hash()) == 64
