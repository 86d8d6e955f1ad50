"""A local SageMaker training job, with no AWS account and no Docker: the /opt/ml tree under a
work folder, the backend's interpreter as the container, the real sagemaker-training toolkit as
its start-up, and model.tar.gz / output.tar.gz packed the way SageMaker packs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import IO, Any, Dict, List, NamedTuple, Optional

ROOT = Path(__file__).resolve().parents[1]
TRAINING_CODE = ROOT / "training_code"
CONTAINER_ENTRY = Path(__file__).resolve().with_name("container_entry.py")
HOST = "algo-1"
SELF_CONTAINED = (".rec", ".tar.gz", ".params")  # files that make a channel alone


class Backend(NamedTuple):
    name: str
    venv: str
    program: str  # the script-mode entry point in training_code/

    @property
    def python(self) -> Path:
        return ROOT / self.venv / "bin" / "python"


BACKENDS = {
    "mxnet": Backend("mxnet", ".venv-mxnet", "train_mxnet.py"),
    "tensorflow": Backend("tensorflow", ".venv-tf", "train_tensorflow.py"),
}


class JobResult(NamedTuple):
    exit_code: int
    failure: Optional[str]  # output/failure: 'ClientError: ...' or 'AlgorithmError: ...'
    model_tar: Optional[Path]
    output_tar: Optional[Path]
    evaluation: Optional[Dict[str, Any]]
    log: Path


def place_channel(source: str, destination: Path) -> None:
    """Put a dataset path where SageMaker would download the channel: a folder becomes the
    channel; a .rec file comes with its .idx; a model.tar.gz or .params file comes alone; another
    file (.lst, manifest, annotations.json) brings the folder its image paths are relative to."""
    path = Path(source).resolve()
    if path.is_dir():
        destination.symlink_to(path, target_is_directory=True)
    elif path.name.lower().endswith(SELF_CONTAINED):
        destination.mkdir()
        (destination / path.name).symlink_to(path)
        idx = path.with_suffix(".idx")
        if path.suffix.lower() == ".rec" and idx.exists():
            (destination / idx.name).symlink_to(idx)
    else:
        destination.symlink_to(path.parent, target_is_directory=True)


class LocalTrainingJob:
    """One training job in ``work_dir``, laid out as /opt/ml is in the container."""

    def __init__(
        self,
        backend: str,
        work_dir: str,
        channels: Dict[str, str],
        hyperparameters: Dict[str, Any],
        checkpoint_dir: Optional[str] = None,
        extra_env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.backend = BACKENDS[backend]
        self.base = Path(work_dir).resolve()
        self.channels = channels
        self.hyperparameters = {k: v if isinstance(v, str) else json.dumps(v) for k, v in hyperparameters.items()}
        self.checkpoint_dir = Path(checkpoint_dir).resolve() if checkpoint_dir else self.base / "checkpoints"
        self.extra_env = extra_env or {}

    def layout(self) -> None:
        """Write the tree. Hyperparameters are strings, as SageMaker stores them."""
        for folder in ("input/config", "input/data", "model", "output/data", "code"):
            path = self.base / folder
            if path.exists() and folder in ("model", "output/data", "code", "input/data"):
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
        failure = self.base / "output" / "failure"
        if failure.exists():
            failure.unlink()
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for name, source in self.channels.items():
            place_channel(source, self.base / "input" / "data" / name)
        hps = dict(self.hyperparameters)
        hps["sagemaker_program"] = json.dumps(self.backend.program)
        hps["sagemaker_submit_directory"] = json.dumps(str(TRAINING_CODE))
        config = self.base / "input" / "config"
        (config / "hyperparameters.json").write_text(json.dumps(hps, indent=2))
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    name: {
                        "TrainingInputMode": "File",
                        "S3DistributionType": "FullyReplicated",
                        "RecordWrapperType": "None",
                    }
                    for name in self.channels
                },
                indent=2,
            )
        )
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": HOST, "hosts": [HOST], "network_interface_name": "lo"}, indent=2)
        )

    def run(self, echo: Optional[IO[str]] = sys.stdout) -> JobResult:
        """Start the backend's interpreter, stream its log, then pack the results."""
        if not self.backend.python.exists():
            raise FileNotFoundError(f"{self.backend.python.parent.parent} is missing: run `make env`")
        self.layout()
        env = dict(os.environ)
        env.update(
            SAGEMAKER_BASE_DIR=str(self.base),
            IMGCLF_CHECKPOINT_DIR=str(self.checkpoint_dir),
            PYTHONUNBUFFERED="1",
            SM_STUDIO_LOCAL_MODE="true",
        )
        env.update(self.extra_env)
        env.pop("PYTHONPATH", None)
        log_path = self.base / "job.log"
        with open(log_path, "w") as log, subprocess.Popen(
            [str(self.backend.python), str(CONTAINER_ENTRY)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=str(self.base),
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if echo is not None:
                    echo.write(line)
                    echo.flush()
            code = proc.wait()
        return self._result(code, log_path)

    def _result(self, code: int, log_path: Path) -> JobResult:
        failure_file = self.base / "output" / "failure"
        failure = failure_file.read_text().strip() if failure_file.exists() else None
        if code != 0 and failure is None:
            failure = f"AlgorithmError: the training process exited with code {code} (see {log_path})"
        model_tar = output_tar = None
        evaluation = None
        if code == 0:
            model_tar = self._tar(self.base / "model", self.base / "output" / "model.tar.gz")
            output_tar = self._tar(self.base / "output" / "data", self.base / "output" / "output.tar.gz")
            evaluation_file = self.base / "model" / "evaluation.json"
            if evaluation_file.exists():
                evaluation = json.loads(evaluation_file.read_text())
        return JobResult(0 if code == 0 else 1, failure, model_tar, output_tar, evaluation, log_path)

    @staticmethod
    def _tar(folder: Path, target: Path) -> Path:
        """Pack a folder's contents at the archive root, as SageMaker does."""
        with tarfile.open(target, "w:gz") as tar:
            for entry in sorted(folder.iterdir()):
                tar.add(str(entry), arcname=entry.name)
        return target


def collect(result: JobResult, output_dir: str) -> List[Path]:
    """Copy what a user keeps into ``output_dir``: model.tar.gz, output.tar.gz,
    evaluation.json, the job log, and the failure reason if any."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in (result.model_tar, result.output_tar, result.log):
        if path is not None and path.exists():
            copied.append(Path(shutil.copy2(path, out / path.name)))
    if result.evaluation is not None:
        target = out / "evaluation.json"
        target.write_text(json.dumps(result.evaluation, indent=2))
        copied.append(target)
    if result.failure:
        target = out / "failure"
        target.write_text(result.failure + "\n")
        copied.append(target)
    return copied
