"""A trained MXNet model behind the SageMaker endpoint contract, and no train/serve skew."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from PIL import Image

from app.local_sagemaker import LocalTrainingJob
from app.local_serving import ModelServer, invoke
from tests.builders import jpeg, noisy_jpeg, png
from tests.training.conftest import hps

pytestmark = [pytest.mark.slow, pytest.mark.mxnet]


@pytest.fixture(scope="module")
def model_tar(tmp_path_factory, digits) -> Path:
    work = tmp_path_factory.mktemp("job")
    result = LocalTrainingJob(
        "mxnet",
        str(work),
        {"train": str(digits / "train"), "validation": str(digits / "validation")},
        hps(digits, epochs="3"),
    ).run(echo=None)
    assert result.exit_code == 0, result.log.read_text()[-2000:]
    assert result.model_tar is not None
    return result.model_tar


@pytest.fixture(scope="module")
def endpoint(model_tar):
    with ModelServer(str(model_tar)) as server:
        yield server.url


def digit_png(digits: Path, label: str) -> bytes:
    return next((digits / "validation" / label).glob("*.png")).read_bytes()


def test_every_accept_type(endpoint, digits) -> None:
    body = digit_png(digits, "1")
    status, headers, raw = invoke(endpoint, body, "image/png", "application/json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    probs = json.loads(raw)
    assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-4
    status, headers, raw = invoke(endpoint, body, "application/x-image", "application/json;verbose")
    verbose = json.loads(raw)
    assert status == 200 and verbose["labels"] == ["0", "1", "2"] and verbose["probabilities"] == pytest.approx(probs)
    assert verbose["predicted_label"] == verbose["top_k"][0]["label"]
    status, headers, raw = invoke(endpoint, body, "image/png", "application/jsonlines")
    assert status == 200 and json.loads(raw.decode().strip()) == {"prediction": pytest.approx(probs)}
    jpeg_body = io.BytesIO()
    Image.open(io.BytesIO(body)).convert("RGB").save(jpeg_body, format="JPEG", quality=95)
    assert invoke(endpoint, jpeg_body.getvalue(), "image/jpeg")[0] == 200


@pytest.mark.parametrize(
    "body, content_type, accept, status",
    [
        (png(), "text/plain", "application/json", 415),
        (b"not an image", "image/jpeg", "application/json", 400),
        (jpeg()[:50], "image/jpeg", "application/json", 400),
        (b"", "image/png", "application/json", 400),
        (png(), "image/png", "text/csv", 406),
        (b"\xff\xd8\xff" + b"\0" * (6 * 1024 * 1024 + 10), "image/jpeg", "application/json", 413),
    ],
    ids=["wrong-type", "garbage", "truncated", "empty", "bad-accept", "too-large"],
)
def test_bad_requests_get_4xx_never_500(endpoint, body, content_type, accept, status) -> None:
    code, headers, raw = invoke(endpoint, body, content_type, accept)
    assert code == status
    assert json.loads(raw)["error"]


def test_concurrent_requests(endpoint) -> None:
    images = [noisy_jpeg(40, 30, seed) for seed in range(8)]
    results: list = []

    def call(body: bytes) -> None:
        try:
            results.append(invoke(endpoint, body, "image/jpeg")[0])
        except OSError as err:
            results.append(repr(err))

    threads = [threading.Thread(target=call, args=(images[i % 8],)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 24


def test_ping_and_unknown_paths(endpoint) -> None:
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(endpoint + "/ping") as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(endpoint + "/nope")
    assert err.value.code == 404


def test_predict_command(model_tar, digits, cli) -> None:
    images = [str(next((digits / "validation" / c).glob("*.png"))) for c in "012"]
    code, out, err = cli("predict", "--model", str(model_tar), *images, "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["image"] for line in lines] == images and all(len(line["probabilities"]) == 3 for line in lines)
