"""Endpoint data capture on this machine: ``imgclf serve --capture DIR`` writes what SageMaker's
DataCaptureConfig writes to S3, in the same layout under DIR (imgclf_core.capture has the rules).

The model server (app/model_server.py, in a backend's environment) hands each answered request
to a ``CaptureWriter``, which samples it and writes it on its own thread: a slow disk never
slows an answer, and a failed write is logged, never a failed request. Standard library only,
like the model server that imports it."""

from __future__ import annotations

import contextlib
import datetime
import os
import queue
import random
import threading
import time
import uuid
from typing import IO, Callable, Iterator, NamedTuple, Optional, Tuple

from imgclf_core import capture as rules

QUEUE_LIMIT = 1000  # records waiting for the disk; beyond this a record is dropped (and logged)
LOG_EVERY = 60.0  # seconds between two log lines about failed captures


class _Exchange(NamedTuple):
    request: bytes
    request_type: Optional[str]
    response: bytes
    response_type: Optional[str]
    when: datetime.datetime
    inference_id: Optional[str]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class CaptureWriter:
    """Captures ``percent`` % of the exchanges ``offer``-ed to it into ``root``, one file per
    hour (``<root>/<endpoint>/AllTraffic/YYYY/MM/DD/HH/<mm-ss-SSS>-<uuid>.jsonl``), each
    record flushed as it is written. ``close()`` writes what is queued, then stops."""

    def __init__(
        self,
        root: str,
        endpoint: str,
        percent: float = 100.0,
        log: Callable[[str], None] = print,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self.root = root
        self.endpoint = rules.check_endpoint_name(endpoint)
        self.percent = rules.check_percent(percent)
        self.log = log
        self.draw = draw
        self.clock = clock
        self.written = 0
        self.lost = 0
        self._queue: queue.Queue[Optional[_Exchange]] = queue.Queue(QUEUE_LIMIT)
        self._file: Optional[IO[str]] = None
        self._hour = ""
        self._lost_since_log = 0
        self._last_log = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def offer(
        self,
        request: bytes,
        request_type: Optional[str],
        response: bytes,
        response_type: Optional[str],
        inference_id: Optional[str] = None,
    ) -> bool:
        """Sample one answered request; True when it is queued for capture. Never raises."""
        try:
            if not rules.sampled(self.percent, self.draw()):
                return False
            exchange = _Exchange(
                bytes(request), request_type, bytes(response), response_type, self.clock(), inference_id
            )
            self._queue.put_nowait(exchange)
            return True
        except queue.Full:
            self._lose("the capture queue is full (the disk is too slow)")
        except Exception as err:  # noqa: BLE001 - capture never fails a request
            self._lose(f"{type(err).__name__}: {err}")
        return False

    def _lose(self, why: str) -> None:
        """Count a record that was not captured; log it, at most once a minute after the first."""
        with self._lock:
            self.lost += 1
            self._lost_since_log += 1
            now = time.monotonic()
            if self.lost > 1 and now - self._last_log < LOG_EVERY:
                return
            count, self._lost_since_log, self._last_log = self._lost_since_log, 0, now
        self.log(f"capture: {count} record(s) not captured: {why}")

    def _open(self, when: datetime.datetime) -> IO[str]:
        hour = rules.capture_prefix(self.endpoint, when)
        if self._file is None or hour != self._hour:
            self._close_file()
            path = os.path.join(self.root, *rules.capture_key(self.endpoint, when, str(uuid.uuid4())).split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")
            self._hour = hour
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _write(self, exchange: _Exchange) -> None:
        line = rules.dumps(
            rules.record(
                exchange.request,
                exchange.request_type,
                exchange.response,
                exchange.response_type,
                str(uuid.uuid4()),
                exchange.when,
                exchange.inference_id,
            )
        )
        try:
            target = self._open(exchange.when)
            target.write(line)
            target.flush()
            self.written += 1
        except OSError as err:
            self._close_file()  # the next record tries a new file
            self._lose(f"cannot write under {self.root}: {err.strerror or err}")

    def _run(self) -> None:
        while True:
            exchange = self._queue.get()
            try:
                if exchange is None:
                    return
                self._write(exchange)
            except Exception as err:  # noqa: BLE001 - the writer thread must outlive any record
                self._lose(f"{type(err).__name__}: {err}")
            finally:
                self._queue.task_done()

    def close(self, timeout: float = 10.0) -> None:
        """Write the queued records (for up to ``timeout`` seconds), then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._close_file()


def capture_files(root: str) -> Iterator[str]:
    """The capture files under ``root`` (any endpoint, variant and hour), in path order."""
    for folder, folders, files in os.walk(root):
        folders.sort()
        for name in sorted(files):
            if name.endswith(".jsonl"):
                yield os.path.join(folder, name)


def read_captures(root: str) -> Iterator[Tuple[str, rules.Captured]]:
    """Every record under ``root`` as (file, record); ValueError names the file and line of a
    line that is not a capture record."""
    for path in capture_files(root):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield path, rules.parse_record(line)
                except ValueError as err:
                    raise ValueError(f"{path}:line {number}: {err}") from None
