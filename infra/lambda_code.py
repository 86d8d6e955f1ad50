"""The code of every Lambda function: the ``lambdas`` package, the dataset-format core and the
hyperparameter schemas (so the Lambdas and the training job run the same rules), plus the
pinned requirements for the Lambda platform. Bundled with pip on this machine, no Docker: wheels
come from ``.wheelhouse/`` (built by ``make env`` and ``make synth``) when it is there, else from
the index."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
PLATFORM = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
PYTHON_VERSION = "3.14"
REQUIREMENTS = ROOT / "lambdas" / "requirements.txt"
WHEELHOUSE = ROOT / ".wheelhouse"
# what goes into the bundle besides the requirements: (source, path in the bundle)
SOURCES = [
    (ROOT / "lambdas", "lambdas"),
    (ROOT / "training_code" / "image_dataset", "image_dataset"),
    (ROOT / "training_code" / "imgclf_core", "imgclf_core"),
    *(
        (ROOT / "training_code" / "image_training" / name, f"image_training/{name}")
        for name in (
            "__init__.py",
            "errors.py",
            "hyperparameters.py",
            "mxnet_hyperparameters.py",
            "tf_hyperparameters.py",
            "serving.py",
            "baseline.py",  # the scheduled monitor's image statistics (numpy, image_dataset)
            "monitor_page.py",  # the scheduled monitor's monitor.html (Pillow, imgclf_core)
        )
    ),
]


def _files(source: Path) -> List[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def source_hash() -> str:
    """Changes whenever a bundled file or the requirements change."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    for source, target in SOURCES:
        for path in _files(source):
            digest.update(f"{target}/{path.relative_to(source) if source.is_dir() else ''}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def pip_command(target: Path) -> List[str]:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    command += ["--target", str(target), "--implementation", "cp", "--python-version", PYTHON_VERSION]
    command += ["--only-binary=:all:", "-r", str(REQUIREMENTS)]
    for platform in PLATFORM:
        command += ["--platform", platform]
    if WHEELHOUSE.is_dir():
        command += ["--no-index", "--find-links", str(WHEELHOUSE)]
    return command


def build(target: Path) -> None:
    """Write the bundle into ``target``."""
    subprocess.run(pip_command(target), check=True)
    for source, name in SOURCES:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination)


@jsii.implements(ILocalBundling)
class _PipBundling:
    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        build(Path(output_dir))
        return True


def lambda_code() -> lambda_.Code:
    """The asset for a function (CDK stages and bundles it once per synth: the hash is ours)."""
    return lambda_.Code.from_asset(
        str(ROOT / "lambdas"),
        asset_hash=source_hash(),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            # used only where local bundling is impossible; pip on this machine never needs it
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
            local=_PipBundling(),
        ),
    )
