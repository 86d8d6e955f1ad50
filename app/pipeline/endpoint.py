"""A local endpoint with SageMaker's blue/green deployment: a stable front end forwards to the
live model server; a new model is started beside it (green), checked, and only then takes the
traffic, after which the old one (blue) stops. A failed check rolls back: blue keeps serving."""

from __future__ import annotations

import http.client
import json
import threading
from typing import NamedTuple, Optional
from urllib.parse import urlparse, urlsplit

from app.local_serving import Capture, ModelServer, invoke
from app.model_server import INFERENCE_ID_HEADER, ContractHandler, Server

# the request headers the endpoint passes to the model server
FORWARDED = ("content-type", "accept", INFERENCE_ID_HEADER.lower())


class Deployment(NamedTuple):
    switched: bool
    reason: str


class LocalEndpoint:
    """``capture``: every model server it starts captures its traffic (DataCaptureConfig)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", capture: Optional[Capture] = None) -> None:
        self.capture = capture
        self._lock = threading.Lock()
        self.live: Optional[ModelServer] = None
        self.live_version: Optional[int] = None
        endpoint = self

        class FrontEnd(ContractHandler):
            """The endpoint's own front end: SageMaker's HTTP contract (framing, 4xx answers),
            then the request goes to the live model server."""

            def ping(self) -> None:
                self._forward("GET", None)

            def invoke(self, body: bytes) -> None:
                self._forward("POST", body)

            def _forward(self, method: str, body: Optional[bytes]) -> None:
                with endpoint._lock:
                    target = endpoint.live.url if endpoint.live else None
                if target is None:
                    self._error(503, "no model is deployed")
                    return
                parsed = urlparse(target)
                connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED}
                try:
                    connection.request(method, urlsplit(self.path).path, body=body, headers=headers)
                    response = connection.getresponse()
                    self._send(
                        response.status, response.read(), response.getheader("Content-Type") or "application/json"
                    )
                except OSError as err:
                    self._error(502, f"model server: {err}")
                finally:
                    connection.close()

        self._server = Server((host, port), FrontEnd)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def deploy(self, model: str, version: int, canary: bytes, canary_type: str) -> Deployment:
        """Blue/green: start and check the new model, switch, stop the old one; or roll back."""
        green = ModelServer(model, capture=self.capture)
        try:
            green.start()
        except (RuntimeError, OSError, ValueError) as err:
            green.stop()
            return Deployment(False, f"the new model did not start: {str(err).splitlines()[0]}")
        status, _, body = invoke(green.url, canary, canary_type, "application/json")
        problem = None
        if status != 200:
            problem = f"the new model answered the canary request with HTTP {status}"
        else:
            try:
                probabilities = json.loads(body)
                if not probabilities or not all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probabilities):
                    problem = "the new model's answer is not a list of probabilities"
            except ValueError:
                problem = "the new model's answer is not JSON"
        if problem:
            green.stop()
            return Deployment(False, problem)
        with self._lock:
            blue, self.live, self.live_version = self.live, green, version
        if blue is not None:
            blue.stop()
        return Deployment(True, f"version {version} is live")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            live, self.live = self.live, None
        if live is not None:
            live.stop()
