"""The SageMaker inference container's HTTP contract, served from a backend environment:
GET /ping, POST /invocations, answered by the model's own ``code/inference.py`` handlers
(model_fn, input_fn, predict_fn, output_fn) as the AWS inference containers call them.

Run by ``imgclf serve`` with the backend's interpreter; imports only the standard library and
the model's code."""

import argparse
import importlib.util
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 6 * 1024 * 1024


def load_handlers(model_dir):  # type: ignore[no-untyped-def]
    code = os.path.join(model_dir, "code")
    sys.path.insert(0, code)
    spec = importlib.util.spec_from_file_location("inference", os.path.join(code, "inference.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def make_handler(module, model):  # type: ignore[no-untyped-def]
    predict_lock = threading.Lock()  # one forward pass at a time; decoding runs in parallel

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

        def setup(self):  # type: ignore[no-untyped-def]
            super().setup()
            # answers are small: send them at once instead of waiting on the client's ACK (Nagle)
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _send(self, status, body, content_type="application/json"):  # type: ignore[no-untyped-def]
            data = body.encode("utf-8") if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]  # one write
            self.flush_headers()

        def _error(self, status, message):  # type: ignore[no-untyped-def]
            self._send(status, json.dumps({"error": message}))

        def do_GET(self):  # noqa: N802
            if self.path == "/ping":
                self._send(200, "")
            else:
                self._error(404, "GET /ping or POST /invocations")

        def do_POST(self):  # noqa: N802
            if self.path != "/invocations":
                self._error(404, "POST /invocations")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._error(411, "Content-Length is required")
                return
            if length > MAX_BODY:
                if length <= 16 * MAX_BODY:  # read it away, so that the client sees the answer
                    remaining = length
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 20))
                        if not chunk:
                            break
                        remaining -= len(chunk)
                self.close_connection = True
                self._error(413, f"the body is {length} bytes; the limit is {MAX_BODY}")
                return
            body = self.rfile.read(length)
            try:
                data = module.input_fn(body, self.headers.get("Content-Type"))
                with predict_lock:
                    prediction = module.predict_fn(data, model)
                result = module.output_fn(prediction, self.headers.get("Accept"))
            except Exception as error:  # noqa: BLE001 - every failure becomes an HTTP status
                status = getattr(error, "status", 500)
                self._error(status, str(error) if status != 500 else f"internal error: {type(error).__name__}")
                if status == 500:
                    import traceback

                    traceback.print_exc()
                return
            body_out, content_type = result if isinstance(result, tuple) else (result, "application/json")
            self._send(200, body_out, content_type)

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    module = load_handlers(args.model_dir)
    model = module.model_fn(args.model_dir)
    ThreadingHTTPServer.request_queue_size = 128  # bursts of clients wait instead of being refused
    server = ThreadingHTTPServer((args.host, args.port), make_handler(module, model))
    server.daemon_threads = True
    print(f"serving {args.model_dir} on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
