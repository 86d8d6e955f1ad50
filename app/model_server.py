"""The SageMaker inference container's HTTP contract, served from a backend environment:
GET (or HEAD) /ping, POST /invocations, answered by the model's own ``code/inference.py``
handlers (model_fn, input_fn, predict_fn, output_fn) as the AWS inference containers call them.

HTTP framing is checked before the model sees a request (RFC 9110/9112): a POST needs a valid
Content-Length (411 when missing, 400 when not a number of bytes or when several disagree) or a
chunked body; a body over SageMaker's 6 MB payload limit is 413; a body that ends before its
Content-Length is 400, one that stops arriving is 408. Every error answer is JSON
(``{"error": ...}``); an answer after a framing error closes the connection.

With ``--capture DIR`` every answered request is also handed to app/capture.py's writer, which
samples it (``--capture-percent``) and writes it as SageMaker's endpoint data capture does; a
capture that fails is logged, never a failed request.

Run by ``imgclf serve`` with the backend's interpreter; imports only the standard library and
the model's code (with ``--capture``, also app/capture.py and imgclf_core.capture, which are
standard library only). It prints ``serving MODEL on URL`` once it listens, or one ``error: ...`` line
and exits 1 when it cannot listen or load the model."""

import argparse
import importlib.util
import json
import os
import re
import signal
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit (image_training.serving.MAX_REQUEST_BYTES)
DRAIN_LIMIT = 16 * MAX_BODY  # an oversized body up to this is read away, so that the client sees the 413
READ_TIMEOUT = 60.0  # seconds a client may pause mid-request (SageMaker gives a request 60 s)
ROUTES = {"/ping": ("GET", "HEAD"), "/invocations": ("POST",)}
_DIGITS = re.compile(r"[0-9]+")
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"  # imgclf_core.capture.INFERENCE_ID_HEADER


class FramingError(Exception):
    """A request whose body cannot be read as HTTP says: answered with ``status``, then closed."""

    def __init__(self, status, message):  # type: ignore[no-untyped-def]
        super().__init__(message)
        self.status = status


def load_handlers(model_dir):  # type: ignore[no-untyped-def]
    code = os.path.join(model_dir, "code")
    sys.path.insert(0, code)
    spec = importlib.util.spec_from_file_location("inference", os.path.join(code, "inference.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class ContractHandler(BaseHTTPRequestHandler):
    """SageMaker's inference HTTP contract: routes, request framing and JSON errors. A subclass
    answers a checked request in ``ping()`` and ``invoke(body)``."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT  # a socket timeout: a stalled client cannot hold a thread forever

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def setup(self):  # type: ignore[no-untyped-def]
        super().setup()
        # answers are small: send them at once instead of waiting on the client's ACK (Nagle)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status, body, content_type="application/json", headers=()):  # type: ignore[no-untyped-def]
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        payload = b"" if self.command == "HEAD" else data  # HEAD: the same headers, no body
        if hasattr(self, "_headers_buffer"):
            self._headers_buffer.append(b"\r\n" + payload)  # one write with the headers
            self.flush_headers()
        else:  # an HTTP/0.9 request line: no headers at all
            self.wfile.write(payload)

    def _error(self, status, message, headers=()):  # type: ignore[no-untyped-def]
        self._send(status, json.dumps({"error": message}), headers=headers)

    def parse_request(self):  # type: ignore[no-untyped-def]
        """RFC 9112 2.2: empty lines before a request line are ignored (a client may send a CRLF
        after a body), not taken for a request that closes the connection unanswered."""
        line: bytes = self.raw_requestline  # type: ignore[has-type]  # set by the base class
        for _ in range(8):
            if line not in (b"\r\n", b"\n"):
                break
            line = self.rfile.readline(65537)
        self.raw_requestline = line
        return super().parse_request()

    def send_error(self, code, message=None, explain=None):  # type: ignore[no-untyped-def]
        """The base class's errors (bad request line, unknown method, headers too long) as JSON."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9" and len(self.requestline.split()) != 2:
            self.request_version = "HTTP/1.1"  # not a real HTTP/0.9 request: answer with a status line
        self._error(code, message or explain or self.responses.get(code, ("error",))[0])

    def _route(self):  # type: ignore[no-untyped-def]
        """True when the request's path and method are served; else answered 404 or 405."""
        path = urlsplit(self.path).path
        if path not in ROUTES:
            self._skip_body()
            self._error(404, "not found: the endpoints are GET /ping and POST /invocations")
            return False
        if self.command not in ROUTES[path]:
            allowed = ", ".join(ROUTES[path])
            self._skip_body()
            self._error(405, f"{self.command} {path} is not served; use {allowed}", [("Allow", allowed)])
            return False
        return True

    def _skip_body(self):  # type: ignore[no-untyped-def]
        """A request answered without its body: close rather than read the body as a request."""
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0").strip() != "0":
            self.close_connection = True

    def do_GET(self):  # noqa: N802
        if self._route():
            self._skip_body()
            self.ping()

    do_HEAD = do_GET  # noqa: N815

    def do_PUT(self):  # noqa: N802 - known paths answer 405 with Allow, others 404
        self._route()

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT  # noqa: N815

    def handle_expect_100(self):  # type: ignore[no-untyped-def]
        """``Expect: 100-continue``: refuse a request before its body is sent, when the
        headers already show it cannot be served (wrong path, bad or too large length)."""
        if self.command == "POST" and urlsplit(self.path).path == "/invocations":
            try:
                self._declared_length()
            except FramingError as err:
                self.close_connection = True
                self._error(err.status, str(err))
                return False
        return super().handle_expect_100()  # type: ignore[no-any-return]

    def _declared_length(self):  # type: ignore[no-untyped-def]
        """The body's length from the headers (None: chunked), or FramingError."""
        encoding = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encoding:
            codings = [c.strip().lower() for value in encoding for c in value.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise FramingError(
                    501,
                    f"Transfer-Encoding {', '.join(encoding)!r} is not supported; send chunked or a Content-Length",
                )
            if lengths:  # RFC 9112 6.3: chunked wins; the connection cannot be trusted after
                self.close_connection = True
            return None
        values = {v.strip() for value in lengths for v in value.split(",")}
        if not values:
            raise FramingError(411, "a POST needs a Content-Length header (or a chunked body)")
        if len(values) > 1:
            raise FramingError(400, f"Content-Length headers disagree: {', '.join(sorted(values))}")
        value = values.pop()
        if not _DIGITS.fullmatch(value):
            raise FramingError(400, f"Content-Length {value!r} is not a number of bytes")
        length = int(value)
        if length > MAX_BODY:
            raise FramingError(413, f"the body is {length} bytes; the limit is {MAX_BODY}")
        return length

    def _read_exactly(self, length, what="Content-Length"):  # type: ignore[no-untyped-def]
        """``length`` bytes of the body; FramingError 400 when it ends early, 408 when it stalls."""
        parts, received = [], 0
        try:
            while received < length:
                chunk = self.rfile.read1(min(length - received, 1 << 20))  # type: ignore[attr-defined]
                if not chunk:
                    raise FramingError(
                        400, f"the body ended after {received} of the {length} bytes that {what} announced"
                    )
                parts.append(chunk)
                received += len(chunk)
        except TimeoutError:
            raise FramingError(
                408, f"the body stopped after {received} of {length} bytes (no data for {self.timeout:g} s)"
            ) from None
        return b"".join(parts)

    def _read_chunked(self):  # type: ignore[no-untyped-def]
        """A chunked body (RFC 9112 7.1). One that passes the limit is read on (up to
        DRAIN_LIMIT, discarded), so that the client sees the 413, then refused."""
        parts, total = [], 0
        try:
            while True:
                line = self.rfile.readline(1024)
                size_text = line.split(b";")[0].strip()
                if not line.endswith(b"\n") or not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                    raise FramingError(400, "the chunked body is malformed (a chunk size line is not hexadecimal)")
                size = int(size_text, 16)
                if size == 0:
                    while self.rfile.readline(8192).strip():  # trailer fields, ignored
                        pass
                    break
                total += size
                if total > DRAIN_LIMIT:
                    break
                chunk = self._read_exactly(size, "a chunk size")
                if total <= MAX_BODY:
                    parts.append(chunk)
                if self.rfile.read(2) != b"\r\n":
                    raise FramingError(400, "the chunked body is malformed (a chunk does not end with CRLF)")
        except TimeoutError:
            raise FramingError(408, f"the chunked body stopped arriving (no data for {self.timeout:g} s)") from None
        if total > MAX_BODY:
            raise FramingError(413, f"the chunked body passes the limit of {MAX_BODY} bytes")
        return b"".join(parts)

    def _drain(self, length):  # type: ignore[no-untyped-def]
        """Read an oversized body away (up to DRAIN_LIMIT), so that the client reads the 413."""
        remaining = length
        try:
            while 0 < remaining <= DRAIN_LIMIT:
                chunk = self.rfile.read1(min(remaining, 1 << 20))  # type: ignore[attr-defined]
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass

    def _body(self):  # type: ignore[no-untyped-def]
        try:
            length = self._declared_length()
            return self._read_chunked() if length is None else self._read_exactly(length)
        except FramingError as err:
            self.close_connection = True
            if err.status == 413:
                declared = self.headers.get("Content-Length", "").strip()
                if _DIGITS.fullmatch(declared) and not self.headers.get("Transfer-Encoding"):
                    self._drain(int(declared))
            self._error(err.status, str(err))
            return None

    def do_POST(self):  # noqa: N802
        if not self._route():
            return
        body = self._body()
        if body is not None:
            self.invoke(body)

    def ping(self):  # type: ignore[no-untyped-def]
        self._send(200, "")

    def invoke(self, body):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def _capture(capture, headers, body, answer, content_type):  # type: ignore[no-untyped-def]
    """Offer one answered request to the capture writer; never fails the request."""
    try:
        data = answer.encode("utf-8") if isinstance(answer, str) else bytes(answer)
        inference_id = (headers.get(INFERENCE_ID_HEADER) or "").strip() or None
        capture.offer(body, headers.get("Content-Type"), data, content_type, inference_id)
    except Exception as err:  # noqa: BLE001 - capture must not break serving
        print(f"capture: a record was not captured: {type(err).__name__}: {err}", flush=True)


def make_handler(module, model, read_timeout=READ_TIMEOUT, capture=None):  # type: ignore[no-untyped-def]
    predict_lock = threading.Lock()  # one forward pass at a time; decoding runs in parallel

    def predict(data):  # type: ignore[no-untyped-def]
        """``module.predict_fn`` under the lock; a RecordIO request's records (a list) one at a
        time, so that other clients' requests get their turn between them."""
        if not isinstance(data, list):
            with predict_lock:
                return module.predict_fn(data, model)
        done = type(data)()
        for record in data:
            with predict_lock:
                done.extend(module.predict_fn(type(data)([record]), model))
        return done

    class Handler(ContractHandler):
        timeout = read_timeout

        def invoke(self, body):  # type: ignore[no-untyped-def]
            try:
                data = module.input_fn(body, self.headers.get("Content-Type"))
                prediction = predict(data)
                accept = self.headers.get_all("Accept")  # several field lines are one list (RFC 9110 5.3)
                result = module.output_fn(prediction, ", ".join(accept) if accept else None)
            except Exception as error:  # noqa: BLE001 - every failure becomes an HTTP status
                status = getattr(error, "status", 500)
                status = status if isinstance(status, int) and 400 <= status < 600 else 500
                self._error(status, str(error) if status != 500 else f"internal error: {type(error).__name__}")
                if status == 500:
                    traceback.print_exc()
                return
            body_out, content_type = result if isinstance(result, tuple) else (result, "application/json")
            self._send(200, body_out, content_type)
            if capture is not None:
                _capture(capture, self.headers, body, body_out, content_type)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of clients wait instead of being refused

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        """A client that went away (reset, broken pipe, timeout) is no server error: no traceback."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def _summary(err):  # type: ignore[no-untyped-def]
    """An exception in one line: frameworks (MXNet) put their own stack trace in the message."""
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [line for line in lines if line and not line.startswith(("Traceback", "File ", "[bt]", "Stack trace"))]
    text = " ".join(kept)
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


def _fail(message):  # type: ignore[no-untyped-def]
    """The one line that ``imgclf serve`` shows, then exit 1."""
    print("error: " + " ".join(str(message).split()), flush=True)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT, help="seconds a client may pause")
    parser.add_argument("--capture", help="capture answered requests under this folder")
    parser.add_argument("--capture-percent", type=float, default=100.0)
    parser.add_argument("--endpoint-name", default="imgclf-local")  # imgclf_core.capture.LOCAL_ENDPOINT
    args = parser.parse_args()
    try:  # listen first: a busy port fails at once, not after the model has loaded
        server = Server((args.host, args.port), BaseHTTPRequestHandler)
    except (OSError, OverflowError) as err:  # OverflowError: a port outside 0-65535
        return _fail(f"cannot listen on {args.host}:{args.port}: {getattr(err, 'strerror', None) or err}")
    try:
        module = load_handlers(args.model_dir)
        model = module.model_fn(args.model_dir)
    except Exception as err:  # noqa: BLE001 - any failure to load is reported in one line
        traceback.print_exc()
        server.server_close()
        return _fail(f"cannot load the model in {args.model_dir}: {_summary(err)}")
    capture = None
    if args.capture:
        try:
            capture = _capture_writer(args)
        except Exception as err:  # noqa: BLE001 - a bad capture setting stops the server before it listens
            server.server_close()
            return _fail(f"cannot capture to {args.capture}: {err}")
        signal.signal(signal.SIGTERM, _interrupt)  # stopped by imgclf: write what is queued first
    server.RequestHandlerClass = make_handler(module, model, args.read_timeout, capture)
    print(f"serving {args.model_dir} on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if capture is not None:
            capture.close()
    return 0


def _interrupt(signum, frame):  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt


def _capture_writer(args):  # type: ignore[no-untyped-def]
    """app/capture.py's writer; the repository's folders go at the end of the path, so that the
    model's own code/ keeps precedence."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for folder in (root, os.path.join(root, "training_code")):
        if folder not in sys.path:
            sys.path.append(folder)
    from app.capture import CaptureWriter  # noqa: PLC0415

    return CaptureWriter(args.capture, args.endpoint_name, args.capture_percent)


if __name__ == "__main__":
    sys.exit(main())
