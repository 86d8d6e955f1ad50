"""The local endpoint's front end keeps SageMaker's HTTP contract, as the model server does:
framing errors are answered (never a dropped connection or a hang), HEAD /ping works, and a
request reaches the live model server unchanged."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Tuple

import pytest

from app.pipeline.endpoint import LocalEndpoint


class Live:
    """A stand-in for the live model server: records what reaches it."""

    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, bytes]] = []
        live = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _reply(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                live.seen.append(("GET", self.path, b""))
                self._reply(b"")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                live.seen.append(("POST", self.path, body))
                self._reply(b"[0.25, 0.75]")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Tuple[LocalEndpoint, Live]]:
    local, live = LocalEndpoint(), Live()
    local.live = live  # type: ignore[assignment]
    yield local, live
    local.live = None
    local.stop()
    live.stop()


def exchange(url: str, request: bytes) -> Tuple[int, bytes]:
    """Send raw bytes; the status and body of the answer (the test fails on a hang or a drop)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the connection was dropped without an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk
            body += chunk
    return int(head.split()[1]), body


@pytest.mark.parametrize(("length", "status"), [("abc", 400), ("-5", 400), ("+5", 400), (None, 411), ("99999999", 413)])
def test_a_bad_content_length_is_answered(endpoint: Tuple[LocalEndpoint, Live], length: str, status: int) -> None:
    local, live = endpoint
    header = f"Content-Length: {length}\r\n" if length is not None else ""
    header += "Expect: 100-continue\r\n" if status == 413 else ""  # refused before the body is sent
    request = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n{header}\r\n".encode()
    got, body = exchange(local.url, request)
    assert got == status and "error" in json.loads(body)
    assert live.seen == []


def test_head_ping_answers_without_a_body(endpoint: Tuple[LocalEndpoint, Live]) -> None:
    local, live = endpoint
    port = int(local.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "dropped"
            head += chunk
    assert head.split()[1] == b"200" and head.endswith(b"\r\n\r\n")
    assert live.seen == [("GET", "/ping", b"")]


def test_a_request_reaches_the_live_model_unchanged(endpoint: Tuple[LocalEndpoint, Live]) -> None:
    local, live = endpoint
    request = b"POST /invocations?x=1 HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 3\r\n\r\nabc"
    assert exchange(local.url, request) == (200, b"[0.25, 0.75]")
    assert live.seen == [("POST", "/invocations", b"abc")]


def test_unknown_paths_and_no_model_are_answered(endpoint: Tuple[LocalEndpoint, Live]) -> None:
    local, _ = endpoint
    assert exchange(local.url, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404
    local.live = None
    assert exchange(local.url, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 503
