"""A model served on this machine as a SageMaker endpoint serves it: model.tar.gz unpacked,
the backend's interpreter running the container's HTTP contract (app/model_server.py)."""

from __future__ import annotations

import collections
import http.client
import json
import mimetypes
import os
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import IO, Deque, Dict, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from app.local_sagemaker import BACKENDS
from imgclf_core.capture import INFERENCE_ID_HEADER, LOCAL_ENDPOINT

SERVER = Path(__file__).resolve().with_name("model_server.py")


class ServeError(RuntimeError):
    """A model that cannot be served, or an endpoint that cannot be called: one line that says
    what and where; ``details`` holds the server's own output, when there is some."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def unpack_model(model: str, into: str) -> Path:
    """A model folder from model.tar.gz (or the folder itself); ServeError for anything else."""
    path = Path(model)
    if path.is_dir():
        return path.resolve()
    if not path.exists():
        raise ServeError(f"{model} does not exist")
    target = Path(into)
    try:
        with tarfile.open(path) as tar:
            tar.extractall(target, filter="data")
    except (EOFError, zlib.error) as err:
        raise ServeError(f"{model} is damaged: {' '.join(str(err).split())}") from None
    except tarfile.TarError as err:
        why = "it is not a tar or tar.gz file" if isinstance(err, tarfile.ReadError) else " ".join(str(err).split())
        raise ServeError(f"{model} is not a model archive (model.tar.gz): {why}") from None
    except OSError as err:
        raise ServeError(f"cannot read {model}: {err.strerror or err}") from None
    return target.resolve()


def _model_files(model_dir: Path, info: Dict[str, object]) -> Tuple[str, ...]:
    """The files, relative to the model folder, that serving the model needs."""
    code = ("code/inference.py",)
    if info.get("backend") == "mxnet":
        return (str(info.get("symbol")), str(info.get("params")), *code)
    return (f"{info.get('saved_model')}/saved_model.pb", *code)


def model_backend(model_dir: Path, name: Optional[str] = None) -> str:
    """The backend of an unpacked model, once its model-info.json and the files it names are
    found; ServeError otherwise, naming the model as ``name`` (the archive the user gave)."""
    shown = name or str(model_dir)
    info_path = model_dir / "model-info.json"
    if not info_path.is_file():
        raise ServeError(f"{shown} has no model-info.json: not a model trained by imgclf")
    try:
        info = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ServeError(f"{shown}: cannot read model-info.json: {' '.join(str(err).split())}") from None
    if not isinstance(info, dict):
        raise ServeError(f"{shown}: model-info.json is not a JSON object")
    backend = info.get("backend")
    if backend not in BACKENDS:
        raise ServeError(f"{shown}: model-info.json names backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    missing = [file for file in _model_files(model_dir, info) if not (model_dir / file).is_file()]
    if missing:
        raise ServeError(f"{shown} lacks {', '.join(missing)}: not a complete imgclf model")
    return str(backend)


class Capture(NamedTuple):
    """Endpoint data capture for a served model (``imgclf serve --capture``): ``percent`` % of
    the answered requests, under ``folder``/``endpoint``/AllTraffic/YYYY/MM/DD/HH/."""

    folder: str
    percent: float = 100.0
    endpoint: str = LOCAL_ENDPOINT


class ModelServer:
    """Start with ``start()`` (or ``with``); ``url`` is the endpoint's base URL. The server's
    output goes to ``log`` (None: kept only as the last lines, for error messages);
    ``read_timeout`` is the seconds a client may pause mid-request (the server's default: 60);
    ``capture`` turns on data capture."""

    def __init__(
        self,
        model: str,
        port: int = 0,
        host: str = "127.0.0.1",
        log: Optional[IO[str]] = None,
        read_timeout: Optional[float] = None,
        capture: Optional[Capture] = None,
    ) -> None:
        self.model = model
        self.read_timeout = read_timeout
        self.capture = capture
        self.port = port
        self.host = host
        self.log = log
        self.url = ""
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self._proc: Optional[subprocess.Popen] = None
        self._lines: Deque[str] = collections.deque(maxlen=200)
        self._started = threading.Event()
        self._reader: Optional[threading.Thread] = None

    def _read_output(self, stream: IO[str]) -> None:
        """Drain the server's output for as long as it runs (a full pipe would stall it)."""
        for line in stream:
            self._lines.append(line)
            if not self.url and line.startswith("serving ") and " on http://" in line:
                self.url = line.strip().rsplit(" on ", 1)[1]
                self._started.set()
            elif self.log is not None and self.url:
                self.log.write(line)
                self.log.flush()
        self._started.set()  # the server exited

    def _failure(self, what: str) -> ServeError:
        output = "".join(self._lines)
        errors = [line[len("error: ") :].strip() for line in self._lines if line.startswith("error: ")]
        message = errors[-1] if errors else what
        if self._tmp is not None:  # name the archive the user gave, not the folder it was unpacked to
            message = message.replace(str(Path(self._tmp.name).resolve()), self.model)
        return ServeError(message, output)

    def start(self, timeout: float = 120.0) -> str:
        """Unpack, check and serve the model; its URL once /ping answers, or ServeError."""
        self.url = ""
        self._started.clear()
        self._lines.clear()
        self._tmp = tempfile.TemporaryDirectory(prefix="imgclf-model-")
        try:
            model_dir = unpack_model(self.model, self._tmp.name)
            python = BACKENDS[model_backend(model_dir, self.model)].python
            if not python.exists():
                raise ServeError(f"the backend's environment is missing: {python} (make env creates it)")
        except ServeError:
            self.stop()
            raise
        command = [str(python), "-u", str(SERVER), "--model-dir", str(model_dir)]
        if self.read_timeout is not None:
            command += ["--read-timeout", str(self.read_timeout)]
        if self.capture is not None:
            percent, endpoint = repr(float(self.capture.percent)), self.capture.endpoint
            command += ["--capture", os.path.abspath(self.capture.folder), "--capture-percent", percent]
            command += ["--endpoint-name", endpoint]
        self._proc = subprocess.Popen(
            [*command, "--host", self.host, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        assert self._proc.stdout is not None
        self._reader = threading.Thread(target=self._read_output, args=(self._proc.stdout,), daemon=True)
        self._reader.start()
        deadline = time.time() + timeout
        self._started.wait(timeout)
        if not self.url:
            failure = self._failure(
                f"the model server did not start within {timeout:g} s"
                if self._proc.poll() is None
                else f"the model server exited with code {self._proc.poll()} before it listened"
            )
            self.stop()
            raise failure
        while time.time() < deadline:
            if ping(self.url):
                return self.url
            if self._proc.poll() is not None:
                break
            time.sleep(0.1)
        failure = self._failure(f"the model server at {self.url} did not answer GET /ping")
        self.stop()
        raise failure

    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self._proc is not None and self._proc.poll() is None

    def wait(self) -> int:
        """Block until the server process ends; its exit code."""
        assert self._proc is not None
        return self._proc.wait()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._reader is not None:
                self._reader.join(timeout=5)
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


def endpoint_url(url: str) -> str:
    """A model server's base URL (``http://HOST:PORT``), without a trailing slash; ValueError
    that says what is wrong with one that is not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError as err:
        raise ValueError(f"{url!r} is not a URL: {err}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an endpoint URL; expected http://HOST:PORT (or https://...)")
    if port == 0:
        raise ValueError(f"{url!r}: port 0 cannot be called")
    return url.strip().rstrip("/")


def connection_problem(err: BaseException) -> str:
    """Why a call to a server failed, in a few words (connection refused, timed out, ...)."""
    reason = getattr(err, "reason", err)  # urllib's URLError wraps the socket's error
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "no answer in time (timed out)"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "the server closed the connection without an answer"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


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
    url: str,
    body: bytes,
    content_type: str,
    accept: str = "application/json;verbose",
    timeout: float = 60.0,
    inference_id: Optional[str] = None,
) -> Tuple[int, Dict[str, str], bytes]:
    """POST /invocations; returns (status, headers, body) whatever the status. ``inference_id``
    is sent as InvokeEndpoint sends its InferenceId (data capture records it)."""
    headers = {"Content-Type": content_type, "Accept": accept}
    if inference_id is not None:
        headers[INFERENCE_ID_HEADER] = inference_id
    request = urllib.request.Request(url + "/invocations", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
