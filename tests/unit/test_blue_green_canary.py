"""The local endpoint's blue/green rule (app.pipeline.endpoint.LocalEndpoint.deploy): the new
model takes the traffic only when it starts AND answers the canary request with a list of
probabilities; otherwise it is stopped and the old model keeps serving. The model servers are
replaced by fakes, so this tests the rule itself, in milliseconds."""

from __future__ import annotations

import json
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from app.pipeline import endpoint as endpoint_module
from app.pipeline.endpoint import LocalEndpoint

ANSWERS: Dict[str, Tuple[int, bytes]] = {}  # model -> (status, body) of its canary answer
FAILS_TO_START = "broken.tar.gz"


class FakeServer:
    """Stands in for app.local_serving.ModelServer: records start/stop, never starts a process."""

    made: List[FakeServer] = []

    def __init__(self, model: str, capture: object = None) -> None:
        self.model = model
        self.capture = capture
        self.url = f"http://fake/{model}"
        self.started = self.stopped = False
        FakeServer.made.append(self)

    def start(self, timeout: float = 120.0) -> str:
        if self.model == FAILS_TO_START:
            raise RuntimeError("the model server exited with code 1\nTraceback ...")
        self.started = True
        return self.url

    def stop(self) -> None:
        self.stopped = True


def fake_invoke(url: str, body: bytes, content_type: str, accept: str = "", timeout: float = 60.0):
    status, answer = ANSWERS[url.rsplit("/", 1)[1]]
    return status, {"Content-Type": "application/json"}, answer


@pytest.fixture(scope="module")
def shared_endpoint() -> Iterator[LocalEndpoint]:
    """One front end for the module (stopping one waits for its poll interval)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(endpoint_module, "ModelServer", FakeServer)
        patch.setattr(endpoint_module, "invoke", fake_invoke)
        local = LocalEndpoint()
        yield local
        local.stop()


@pytest.fixture
def endpoint(shared_endpoint: LocalEndpoint) -> LocalEndpoint:
    """The shared endpoint with nothing deployed."""
    FakeServer.made = []
    ANSWERS.clear()
    shared_endpoint.live, shared_endpoint.live_version = None, None
    return shared_endpoint


def deploy_blue(local: LocalEndpoint) -> FakeServer:
    ANSWERS["blue"] = (200, b"[0.9, 0.1]")
    result = local.deploy("blue", 1, b"jpeg", "image/jpeg")
    assert result == (True, "version 1 is live")
    return FakeServer.made[-1]


def test_a_healthy_new_model_takes_the_traffic_and_the_old_one_stops(endpoint: LocalEndpoint) -> None:
    blue = deploy_blue(endpoint)
    ANSWERS["green"] = (200, b"[0.25, 0.75]")
    result = endpoint.deploy("green", 2, b"jpeg", "image/jpeg")
    green = FakeServer.made[-1]
    assert result.switched and result.reason == "version 2 is live"
    assert endpoint.live is green and endpoint.live_version == 2
    assert blue.stopped and not green.stopped


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b'{"error": "boom"}', "the new model answered the canary request with HTTP 500"),
        (400, b"[0.5, 0.5]", "the new model answered the canary request with HTTP 400"),
        (200, b"not json", "the new model's answer is not JSON"),
        (200, b"[]", "the new model's answer is not a list of probabilities"),
        (200, b"[0.5, 1.5]", "the new model's answer is not a list of probabilities"),
        (200, b"[-0.1, 0.9]", "the new model's answer is not a list of probabilities"),
        (200, b'["cat", "dog"]', "the new model's answer is not a list of probabilities"),
        (200, b"[1, 0]", "the new model's answer is not a list of probabilities"),  # ints: not probabilities
    ],
)
def test_a_new_model_that_starts_but_answers_the_canary_wrongly_is_rolled_back(
    endpoint: LocalEndpoint, status: int, body: bytes, reason: str
) -> None:
    blue = deploy_blue(endpoint)
    ANSWERS["green"] = (status, body)
    result = endpoint.deploy("green", 2, b"jpeg", "image/jpeg")
    green = FakeServer.made[-1]
    assert result == (False, reason)
    assert green.started and green.stopped  # started, then stopped again
    assert endpoint.live is blue and endpoint.live_version == 1 and not blue.stopped


def test_the_edges_of_the_probability_range_are_accepted(endpoint: LocalEndpoint) -> None:
    ANSWERS["edges"] = (200, json.dumps([0.0, 1.0]).encode())
    assert endpoint.deploy("edges", 1, b"jpeg", "image/jpeg").switched


def test_a_new_model_that_does_not_start_is_rolled_back_with_the_first_line(endpoint: LocalEndpoint) -> None:
    blue = deploy_blue(endpoint)
    result = endpoint.deploy(FAILS_TO_START, 2, b"jpeg", "image/jpeg")
    assert result == (False, "the new model did not start: the model server exited with code 1")
    assert FakeServer.made[-1].stopped and endpoint.live is blue and not blue.stopped


def test_the_first_deployment_has_nothing_to_stop(endpoint: LocalEndpoint) -> None:
    live: Optional[FakeServer] = deploy_blue(endpoint)
    assert endpoint.live is live and endpoint.live_version == 1
