"""A local SageMaker training job, with no AWS account and no Docker: the /opt/ml tree under a
work folder, the backend's interpreter as the container, the real sagemaker-training toolkit as
its start-up, and model.tar.gz / output.tar.gz packed the way SageMaker packs them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Dict, List, NamedTuple, Optional

from image_dataset.layout import LABELS_FILE
from imgclf_core.backends import REGISTRY
from imgclf_core.plan import script_mode

ROOT = Path(__file__).resolve().parents[1]
TRAINING_CODE = ROOT / "training_code"
CONTAINER_ENTRY = Path(__file__).resolve().with_name("container_entry.py")
SELF_CONTAINED = (".rec", ".tar.gz", ".params")  # files that make a channel alone


class LocalBackend(NamedTuple):
    """A backend's container on this machine: its virtual environment's interpreter."""

    name: str
    venv: str

    @property
    def python(self) -> Path:
        return ROOT / self.venv / "bin" / "python"


BACKENDS = {name: LocalBackend(name, record.local_environment) for name, record in REGISTRY.items()}


class JobResult(NamedTuple):
    exit_code: int
    failure: Optional[str]  # output/failure: 'ClientError: ...' or 'AlgorithmError: ...'
    model_tar: Optional[Path]
    output_tar: Optional[Path]
    evaluation: Optional[Dict[str, Any]]
    log: Path


def place_channel(source: str, destination: Path) -> None:
    """Put a dataset path where SageMaker would download the channel: a folder becomes the
    channel; a .rec file comes with its .idx and the class names beside it (labels.json); a
    model.tar.gz or .params file comes alone; another file (.lst, manifest, annotations.json)
    brings the folder its image paths are relative to."""
    path = Path(source).resolve()
    if path.is_dir():
        destination.symlink_to(path, target_is_directory=True)
    elif path.name.lower().endswith(SELF_CONTAINED):
        destination.mkdir()
        (destination / path.name).symlink_to(path)
        if path.suffix.lower() == ".rec":
            for companion in (path.with_suffix(".idx"), path.with_name(LABELS_FILE)):
                if companion.exists():
                    (destination / companion.name).symlink_to(companion)
    else:
        destination.symlink_to(path.parent, target_is_directory=True)


def stream_channel(source: str, fifo: Path) -> None:
    """Pipe mode: write a channel's RecordIO files into its FIFO, as SageMaker streams them
    from S3 (the first epoch's stream; the training code keeps a copy for later epochs)."""
    path = Path(source)
    files = sorted(path.rglob("*.rec")) if path.is_dir() else [path]
    with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as out:
        for file in files:
            with open(file, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)


class LocalTrainingJob:
    """One training job in ``work_dir``, laid out as /opt/ml is in the container. With
    ``instance_count`` > 1, each host gets its own tree (``work_dir/algo-N``) and container, all
    on this machine; MXNet jobs then train through parameter servers, as in SageMaker."""

    def __init__(
        self,
        backend: str,
        work_dir: str,
        channels: Dict[str, str],
        hyperparameters: Dict[str, Any],
        checkpoint_dir: Optional[str] = None,
        extra_env: Optional[Dict[str, str]] = None,
        instance_count: int = 1,
        max_runtime: Optional[float] = None,
        input_mode: str = "File",
    ) -> None:
        self.backend = BACKENDS[backend]
        self.root = Path(work_dir).resolve()
        self.hosts = [f"algo-{i + 1}" for i in range(instance_count)]
        self.channels = channels
        self.hyperparameters = {k: v if isinstance(v, str) else json.dumps(v) for k, v in hyperparameters.items()}
        self.checkpoint_dir = Path(checkpoint_dir).resolve() if checkpoint_dir else self.root / "checkpoints"
        self.extra_env = extra_env or {}
        self.max_runtime = max_runtime  # seconds, as the job's StoppingCondition
        self.input_mode = input_mode  # of the train and validation channels: File, FastFile or Pipe

    def host_dir(self, host: str) -> Path:
        return self.root if len(self.hosts) == 1 else self.root / host

    def layout(self, host: str) -> None:
        """Write one host's tree. Hyperparameters are strings, as SageMaker stores them."""
        base = self.host_dir(host)
        for folder in ("input/config", "input/data", "model", "output/data", "code"):
            path = base / folder
            if path.exists() and folder in ("model", "output/data", "code", "input/data"):
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
        failure = base / "output" / "failure"
        if failure.exists():
            failure.unlink()
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for name, source in self.channels.items():
            if self.mode(name) == "Pipe":
                fifo = base / "input" / "data" / (name + "_0")
                os.mkfifo(str(fifo))
                threading.Thread(target=stream_channel, args=(source, fifo), daemon=True).start()
            else:
                place_channel(source, base / "input" / "data" / name)
        # script mode's keys, as the workflow's training plan sets them (the code is the tree
        # itself); a job's own value of the distribution flag stands
        hps = {**self.hyperparameters, **script_mode(self.backend.name, str(TRAINING_CODE), len(self.hosts))}
        flag = REGISTRY[self.backend.name].distribution_flag
        if flag in self.hyperparameters:
            hps[flag] = self.hyperparameters[flag]
        config = base / "input" / "config"
        (config / "hyperparameters.json").write_text(json.dumps(hps, indent=2))
        channel_config = {
            name: {
                "TrainingInputMode": self.mode(name),
                "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": "None",
            }
            for name in self.channels
        }
        (config / "inputdataconfig.json").write_text(json.dumps(channel_config, indent=2))
        resources = {"current_host": host, "hosts": self.hosts, "network_interface_name": "lo"}
        (config / "resourceconfig.json").write_text(json.dumps(resources, indent=2))

    def mode(self, channel: str) -> str:
        return self.input_mode if channel in ("train", "validation") else "File"

    def _start(self, host: str) -> subprocess.Popen:
        env = dict(os.environ)
        env.update(
            SAGEMAKER_BASE_DIR=str(self.host_dir(host)),
            IMGCLF_CHECKPOINT_DIR=str(self.checkpoint_dir),  # shared, as the S3 checkpoint prefix is
            IMGCLF_FRAMEWORK=self.backend.name,
            PYTHONUNBUFFERED="1",
            SM_STUDIO_LOCAL_MODE="true",
        )
        env.update(self.extra_env)
        env.pop("PYTHONPATH", None)
        return subprocess.Popen(
            [str(self.backend.python), str(CONTAINER_ENTRY)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=str(self.host_dir(host)),
            start_new_session=True,  # the container and its parameter servers end together
        )

    def container_pids(self) -> List[int]:
        """Process groups of the running containers (written when each starts)."""
        pids = []
        for host in self.hosts:
            pid_file = self.host_dir(host) / "container.pid"
            if pid_file.exists():
                pids.append(int(pid_file.read_text()))
        return pids

    def _pump(self, host: str, proc: subprocess.Popen, echo: Optional[IO[str]]) -> None:
        assert proc.stdout is not None
        with open(self.host_dir(host) / "job.log", "w") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()  # the log can be followed while the job runs
                if echo is not None:
                    echo.write(line)
                    echo.flush()

    def run(self, echo: Optional[IO[str]] = sys.stdout) -> JobResult:
        """Start one container per host, stream their logs (the first host's to ``echo``), and
        pack the first host's results, as SageMaker keeps the model of algo-1."""
        if not self.backend.python.exists():
            raise FileNotFoundError(f"{self.backend.python.parent.parent} is missing: run `make env`")
        for host in self.hosts:
            self.layout(host)
        processes = {host: self._start(host) for host in self.hosts}
        for host, proc in processes.items():
            (self.host_dir(host) / "container.pid").write_text(str(proc.pid))
        pumps = [
            threading.Thread(target=self._pump, args=(host, proc, echo if host == self.hosts[0] else None))
            for host, proc in processes.items()
        ]
        for pump in pumps:
            pump.start()
        deadline = None if self.max_runtime is None else time.monotonic() + self.max_runtime
        codes: Dict[str, int] = {}  # in the order the hosts exited
        failed: Optional[str] = None  # the first host that failed by itself
        timed_out = False
        try:
            while len(codes) < len(processes):
                for host, proc in processes.items():
                    if host not in codes and proc.poll() is not None:
                        codes[host] = proc.returncode
                failed = next((host for host, code in codes.items() if code != 0), None)
                if failed is not None:  # one host failed: SageMaker stops the whole job
                    break
                if deadline is not None and time.monotonic() > deadline and len(codes) < len(processes):
                    timed_out = True
                    break
                time.sleep(0.05)
        finally:  # also on Ctrl-C: each container is a process group of its own, stop them all
            for proc in processes.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for host, proc in processes.items():
            codes.setdefault(host, proc.wait())
        for pump in pumps:
            pump.join()
        if timed_out:
            failure = f"AlgorithmError: the job exceeded its maximum runtime of {self.max_runtime or 0:g} seconds"
            result = self._result(self.hosts[0], 1)
            return result._replace(failure=failure)
        return self._result(failed or self.hosts[0], codes[failed or self.hosts[0]])

    def _result(self, host: str, code: int) -> JobResult:
        base = self.host_dir(host)
        log_path = base / "job.log"
        failure_file = base / "output" / "failure"
        failure = failure_file.read_text().strip() if failure_file.exists() else None
        if code != 0 and failure is None:
            failure = f"AlgorithmError: the training process on {host} exited with code {code} (see {log_path})"
        model_tar = output_tar = None
        evaluation = None
        if code == 0:
            model_tar = self._tar(base / "model", base / "output" / "model.tar.gz")
            output_tar = self._tar(base / "output" / "data", base / "output" / "output.tar.gz")
            evaluation_file = base / "model" / "evaluation.json"
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
