"""A model served on this machine as a SageMaker endpoint serves it: model.tar.gz unpacked,
the backend's interpreter running the container's HTTP contract (app/model_server.py)."""

from __future__ import annotations

import json
import mimetypes
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Tuple

from app.local_sagemaker import BACKENDS

SERVER = Path(__file__).resolve().with_name("model_server.py")


def unpack_model(model: str, into: str) -> Path:
    """A model folder from model.tar.gz (or the folder itself)."""
    path = Path(model)
    if path.is_dir():
        return path.resolve()
    target = Path(into)
    with tarfile.open(path) as tar:
        tar.extractall(target, filter="data")
    return target.resolve()


def model_backend(model_dir: Path) -> str:
    info = model_dir / "model-info.json"
    if not info.exists():
        raise ValueError(f"{model_dir} has no model-info.json: not a model trained by imgclf")
    backend = json.loads(info.read_text()).get("backend")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} in {info}")
    return str(backend)


class ModelServer:
    """Start with ``start()`` (or ``with``); ``url`` is the endpoint's base URL."""

    def __init__(self, model: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.model = model
        self.port = port
        self.host = host
        self.url = ""
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self._proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 120.0) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="imgclf-model-")
        model_dir = unpack_model(self.model, self._tmp.name)
        python = BACKENDS[model_backend(model_dir)].python
        self._proc = subprocess.Popen(
            [str(python), str(SERVER), "--model-dir", str(model_dir), "--host", self.host, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._proc.stdout is not None
        deadline = time.time() + timeout
        output = []
        for line in self._proc.stdout:
            output.append(line)
            if line.startswith("serving ") and " on http://" in line:
                self.url = line.strip().rsplit(" on ", 1)[1]
                break
            if time.time() > deadline:
                break
        if not self.url:
            self.stop()
            raise RuntimeError("the model server did not start:\n" + "".join(output[-30:]))
        while time.time() < deadline:
            if ping(self.url):
                return self.url
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the model server did not answer /ping")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/ping", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def content_type_of(path: str) -> str:
    guessed = mimetypes.guess_type(path)[0]
    return guessed if guessed in ("image/jpeg", "image/png") else "application/x-image"


def invoke(
    url: str, body: bytes, content_type: str, accept: str = "application/json;verbose", timeout: float = 60.0
) -> Tuple[int, Dict[str, str], bytes]:
    """POST /invocations; returns (status, headers, body) whatever the status."""
    request = urllib.request.Request(
        url + "/invocations", data=body, method="POST", headers={"Content-Type": content_type, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
