"""The endpoint contract at the HTTP level, for both backends' model servers as ``imgclf serve``
starts them: images that ``validate`` rejects get 400, Accept is negotiated with q-values,
HEAD /ping and bad framing (Content-Length, chunked bodies, oversized bodies) answer as HTTP
says, the configured top_k is honoured; and ``serve``/``predict`` fail in one line.

The models are tiny (a global average pool and one dense layer over 4 colour classes), written
by each backend's real export code, so a server starts in seconds."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pytest
from PIL import Image

from app.local_serving import ModelServer, invoke
from image_dataset.images import DEFAULT_MAX_PIXELS, check_image
from tests.builders import jpeg, noisy_jpeg, png, png_bomb
from tests.http_stub import http_stub

LABELS = ["red", "green", "blue", "gray"]
CONFIGURED_TOP_K = {"mxnet": 2, "tensorflow": 3}  # neither 5 (the fallback) nor len(LABELS)
READ_TIMEOUT = 1.5  # the servers' read timeout in these tests, seconds

MXNET_MODEL = """
import sys
sys.path.insert(0, "training_code")
import mxnet as mx
from mxnet import gluon
from image_training.mxnet_train import export

net = gluon.nn.HybridSequential()
net.add(gluon.nn.GlobalAvgPool2D(), gluon.nn.Flatten(), gluon.nn.Dense(4, in_units=3))
net.initialize()
net[2].weight.set_data(mx.nd.array([[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [0, 0, 0]]))
net[2].bias.set_data(mx.nd.zeros(4))
net.hybridize()
net(mx.nd.zeros((1, 3, 32, 32)))
hp = {"mini_batch_size": 1, "image_shape": [3, 32, 32], "resize": 32, "top_k": int(sys.argv[2]),
      "precision_dtype": "float32", "multi_label": 0}
export(net, sys.argv[1], 0, hp, sys.argv[3].split(","), {"accuracy": 1.0})
"""

TF_MODEL = """
import json, os, sys
sys.path.insert(0, "training_code")
import tensorflow as tf
from image_training.tf_train import export

inputs = tf.keras.Input((32, 32, 3))
mean = tf.keras.layers.GlobalAveragePooling2D()(inputs) / 255.0 - 0.5
outputs = tf.keras.layers.Dense(4, activation="softmax", kernel_initializer=tf.keras.initializers.Constant(
    [[4, -4, -4, 0], [-4, 4, -4, 0], [-4, -4, 4, 0]]))(mean)
hp = {"image_size": 32, "image_resize_interpolation": "bilinear", "binary_mode": False}
export(tf.keras.Model(inputs, outputs), sys.argv[1], hp, sys.argv[3].split(","), {"accuracy": 1.0})
path = os.path.join(sys.argv[1], "model-info.json")
info = json.load(open(path))
info["top_k"] = int(sys.argv[2])  # the TF backend writes min(5, classes): set it as a user would
json.dump(info, open(path, "w"))
"""

ROOT = Path(__file__).resolve().parents[2]


def build_model(backend: str, folder: Path) -> Path:
    from tests.interop.conftest import runner

    venv, code = {"mxnet": (".venv-mxnet", MXNET_MODEL), "tensorflow": (".venv-tf", TF_MODEL)}[backend]
    runner(venv)(code, str(folder), str(CONFIGURED_TOP_K[backend]), ",".join(LABELS), cwd=str(ROOT))
    return folder


BACKEND_PARAMS = [
    pytest.param("mxnet", marks=pytest.mark.mxnet),
    pytest.param("tensorflow", marks=[pytest.mark.tensorflow, pytest.mark.slow]),  # TensorFlow loads for 10-30 s
]


@pytest.fixture(scope="module")
def mxnet_model(tmp_path_factory) -> Path:
    return build_model("mxnet", tmp_path_factory.mktemp("mxnet-model"))


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def server(request, tmp_path_factory) -> Iterator[Tuple[str, str]]:
    """(backend, base URL) of a running model server of a tiny model."""
    backend = request.param
    folder = request.getfixturevalue("mxnet_model") if backend == "mxnet" else None
    if folder is None:
        folder = build_model(backend, tmp_path_factory.mktemp(f"{backend}-model"))
    archive = tmp_path_factory.mktemp(f"{backend}-archive") / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # served as a training job leaves it
        for item in sorted(folder.iterdir()):
            tar.add(item, arcname=item.name)
    with ModelServer(str(archive), read_timeout=READ_TIMEOUT) as running:
        yield backend, running.url


# -- raw HTTP -------------------------------------------------------------------------------


def _address(url: str) -> Tuple[str, int]:
    host, port = url.split("//")[1].rsplit(":", 1)
    return host, int(port)


def _split(data: bytes, head_only: bool) -> Tuple[List[bytes], bytes, bool]:
    """(interim 1xx answers, the final answer so far, whether the final answer is complete)."""
    interim = []
    while data.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in data:
        first, _, data = data.partition(b"\r\n\r\n")
        interim.append(first)
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        return interim, data, False
    lengths = [int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return interim, data, head_only or bool(lengths and len(body) >= lengths[0])


def exchange(url: str, request: bytes, half_close: bool = False, timeout: float = 10.0) -> bytes:
    """Send raw bytes; read until a complete final answer arrives (after any 1xx) or the server
    closes. b"" when the server drops the connection without answering."""
    head_only = request.startswith(b"HEAD ")
    with socket.create_connection(_address(url), timeout=timeout) as conn:
        conn.sendall(request)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        data = b""
        while not _split(data, head_only)[2]:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data


class Answer:
    """A raw HTTP answer: ``interim`` 1xx status codes, then the final status, headers and body."""

    def __init__(self, raw: bytes) -> None:
        assert raw, "the server dropped the connection without an answer"
        interim, final, _ = _split(raw, False)
        self.interim = [int(line.split()[1]) for line in interim]
        head, _, self.body = final.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def error(self) -> str:
        assert self.headers["content-type"] == "application/json"
        message = json.loads(self.body)["error"]
        assert isinstance(message, str) and message
        return message


def post(url: str, headers: List[str], body: bytes = b"", **kwargs) -> Answer:
    lines = ["POST /invocations HTTP/1.1", "Host: test", *headers]
    return Answer(exchange(url, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, **kwargs))


def alive(url: str) -> bool:
    return Answer(exchange(url, b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")).status == 200


# -- images: the server's verdict is validate's verdict --------------------------------------


def _corpus() -> Dict[str, Tuple[bytes, str]]:
    """Damaged and intact images, as (bytes, content type)."""
    photo = noisy_jpeg(96, 64, 7)
    progressive = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(progressive, "JPEG", progressive=True, quality=90)
    prog = progressive.getvalue()
    drawing = io.BytesIO()
    Image.effect_noise((80, 60), 60).convert("RGB").save(drawing, "PNG")
    picture = drawing.getvalue()
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    flipped = bytearray(photo)
    for i in range(len(flipped) // 2, len(flipped) // 2 + 40):
        flipped[i] ^= 0xFF
    modes = {}
    base = Image.open(io.BytesIO(photo))
    for name, image, fmt in (
        ("png-16-bit-gray", Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257), "PNG"),
        ("png-palette", base.convert("P"), "PNG"),
        ("png-gray-alpha", base.convert("LA"), "PNG"),
        ("png-rgba", base.convert("RGBA"), "PNG"),
        ("jpeg-gray", base.convert("L"), "JPEG"),
        ("jpeg-cmyk", base.convert("CMYK"), "JPEG"),
    ):
        out = io.BytesIO()
        image.save(out, fmt)
        modes[name] = (out.getvalue(), f"image/{fmt.lower()}")
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    base.save(rotated, "JPEG", exif=exif.tobytes())
    modes["jpeg-exif-rotated"] = (rotated.getvalue(), "image/jpeg")
    return {
        **modes,
        "jpeg": (photo, "image/jpeg"),
        "png": (picture, "image/png"),
        "progressive-jpeg": (prog, "image/jpeg"),
        "jpeg-cut-at-half": (photo[: len(photo) // 2], "image/jpeg"),
        "jpeg-cut-at-two-thirds": (photo[: len(photo) * 2 // 3], "image/jpeg"),
        "jpeg-cut-30-bytes-early": (photo[:-30], "image/jpeg"),
        "jpeg-without-end-marker": (photo[:-2], "image/jpeg"),
        "jpeg-with-trailing-bytes": (photo + b"\0" * 64, "image/jpeg"),
        "png-with-trailing-bytes": (picture + b"trailer", "image/png"),
        "jpeg-header-only": (photo[:200], "application/x-image"),
        "progressive-jpeg-cut": (prog[: len(prog) // 2], "image/jpeg"),
        "jpeg-bytes-flipped": (bytes(flipped), "image/jpeg"),
        "png-cut-in-data": (picture[: len(picture) // 2], "image/png"),
        "png-without-end": (picture[:-12], "image/png"),
        "png-too-many-pixels": (png_bomb(), "image/png"),
        "gif-as-png": (gif.getvalue(), "image/png"),
        "text-as-jpeg": (b"not an image at all", "image/jpeg"),
        "empty": (b"", "image/jpeg"),
    }


CORPUS = _corpus()


def test_the_corpus_has_what_validate_rejects() -> None:
    """The cases named in the issue are ones that validate rejects (so the server must too)."""
    verdicts = {name: check_image(0, data, DEFAULT_MAX_PIXELS).code for name, (data, _) in CORPUS.items()}
    assert verdicts["jpeg"] is None and verdicts["png"] is None and verdicts["progressive-jpeg"] is None
    for name in ("jpeg-cut-at-half", "jpeg-cut-at-two-thirds", "progressive-jpeg-cut", "png-cut-in-data"):
        assert verdicts[name] == "IMG_TRUNCATED", (name, verdicts[name])
    assert verdicts["png-too-many-pixels"] == "IMG_TOO_LARGE"


# Images that validate accepts but a backend's own decoder refuses (with 400, never 500)
@pytest.mark.parametrize("name", list(CORPUS))
def test_the_server_rejects_what_validate_rejects(server, name) -> None:
    data, content_type = CORPUS[name]
    rejected = check_image(0, data, DEFAULT_MAX_PIXELS)
    status, headers, body = invoke(server[1], data, content_type, "application/json")
    if rejected.code:
        assert status == 400, (
            f"validate says {rejected.code} ({rejected.message}); the server answered {status} {body[:200]!r}"
        )
        assert headers["Content-Type"] == "application/json" and json.loads(body)["error"]
    else:
        assert status == 200, body
        assert len(json.loads(body)) == len(LABELS)


def test_the_colour_decides_the_class(server) -> None:
    """The tiny models work: a red image is red, a blue one blue (so 200s above mean something)."""
    for colour, label in (((250, 10, 10), "red"), ((10, 10, 250), "blue")):
        status, _, body = invoke(server[1], jpeg(40, 40, colour), "image/jpeg")
        assert status == 200 and json.loads(body)["predicted_label"] == label


# -- top_k -----------------------------------------------------------------------------------


def test_the_configured_top_k_is_served(server) -> None:
    backend, url = server
    status, _, body = invoke(url, png(), "image/png", "application/json;verbose")
    answer = json.loads(body)
    assert status == 200 and len(answer["top_k"]) == CONFIGURED_TOP_K[backend]
    probabilities = sorted(answer["probabilities"], reverse=True)
    assert [t["probability"] for t in answer["top_k"]] == pytest.approx(probabilities[: CONFIGURED_TOP_K[backend]])


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_both_backends_handlers_pass_the_configured_top_k(top_k) -> None:
    """The handlers' own code (as the AWS containers call it), without a server or framework."""
    from image_training import mxnet_inference, tf_inference

    info = {"labels": LABELS, "top_k": top_k, "multi_label": False}
    probabilities = [0.1, 0.2, 0.3, 0.4]
    body, _ = mxnet_inference.output_fn(probabilities, "application/json;verbose", {"info": info})
    assert [t["label"] for t in json.loads(body)["top_k"]] == ["gray", "blue", "green"][:top_k]
    tf_inference._LOADED["info"] = info
    try:
        body, _ = tf_inference.output_fn(probabilities, "application/json;verbose")
        assert len(json.loads(body)["top_k"]) == top_k

        class Response:
            status_code, content = 200, json.dumps({"predictions": [probabilities]}).encode()

        class Context:
            accept_header = "application/json;verbose"

        body, _ = tf_inference.output_handler(Response(), Context())
        assert len(json.loads(body)["top_k"]) == top_k
    finally:
        tf_inference._LOADED.clear()


# -- Accept ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("application/json;q=0.9", "application/json"),
        ("application/json; q=1", "application/json"),
        ("application/json ; q=1.000", "application/json"),
        ("text/csv;q=1, application/json;q=0.5", "application/json"),
        ("*/*;q=0.1", "application/json"),
        ("application/*", "application/json"),
        ("application/json;verbose;q=0.5, application/jsonlines;q=0.9", "application/jsonlines"),
        ("application/jsonlines;q=0.2, application/json;verbose", "application/json;verbose"),
        ("application/json;verbose;q=0, application/json", "application/json"),
        ("text/html, application/json; verbose", "application/json;verbose"),
        ("", "application/json"),
        ("application/json;q=0", 406),
        ("*/*;q=0", 406),
        ("text/csv, image/*", 406),
        ("application/json;q=high", 400),
        ("application/json;q=1.5", 400),
    ],
)
def test_accept_is_negotiated_per_rfc_9110(server, accept, expected) -> None:
    status, headers, body = invoke(server[1], png(), "image/png", accept)
    if isinstance(expected, int):
        assert status == expected and json.loads(body)["error"]
        return
    assert status == 200 and headers["Content-Type"] == expected
    answer = json.loads(body.decode().strip())
    if expected == "application/jsonlines":
        assert set(answer) == {"prediction"}
    elif expected == "application/json;verbose":
        assert answer["labels"] == LABELS
    else:
        assert isinstance(answer, list) and len(answer) == len(LABELS)


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("application/jsonlines, application/json", "application/jsonlines"),  # a tie: the first listed
        ("application/json, application/jsonlines", "application/json"),
        ("*/*, application/jsonlines;q=0.5", "application/json"),  # */* is q=1 for the other formats
        ("application/*;q=0.3, application/jsonlines;q=0.2", "application/json"),
        ("application/json;verbose=true", "application/json;verbose"),
        ("application/json;verbose=false", "application/json"),
        ("APPLICATION/JSON;Q=0.5", "application/json"),
        (",, application/jsonlines ,", "application/jsonlines"),
        (None, "application/json"),
    ],
)
def test_negotiation_precedence(accept, expected) -> None:
    from image_training.serving import response_type

    assert response_type(accept) == expected


# -- /ping, methods, paths -------------------------------------------------------------------


def test_head_ping_is_200_without_a_body(server) -> None:
    url = server[1]
    answer = Answer(exchange(url, b"HEAD /ping HTTP/1.1\r\nHost: test\r\n\r\n", timeout=3))
    assert answer.status == 200 and answer.body == b"" and answer.headers["content-length"] == "0"
    # HEAD then GET on one connection: both answered, the HEAD answer without a body
    with socket.create_connection(_address(url), timeout=5) as conn:
        conn.sendall(b"HEAD /ping HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200 ") < 2:
            chunk = conn.recv(4096)
            assert chunk, data
            data += chunk


@pytest.mark.parametrize(
    "request_line, status, allow",
    [
        ("GET /invocations", 405, "POST"),
        ("HEAD /invocations", 405, "POST"),
        ("POST /ping", 405, "GET, HEAD"),
        ("PUT /invocations", 405, "POST"),
        ("DELETE /ping", 405, "GET, HEAD"),
        ("GET /nope", 404, None),
        ("GET /ping?probe=1", 200, None),
    ],
)
def test_methods_and_paths(server, request_line, status, allow) -> None:
    url = server[1]
    answer = Answer(exchange(url, f"{request_line} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n".encode()))
    assert answer.status == status
    if allow:
        assert answer.headers["allow"] == allow
    if status != 200 and not request_line.startswith("HEAD"):
        assert answer.error()


def test_a_malformed_request_line_is_400_json(server) -> None:
    answer = Answer(exchange(server[1], b"POST /invocations HTTP/1.1 extra\r\n\r\n"))
    assert answer.status == 400 and answer.error()
    assert alive(server[1])


# -- framing: Content-Length, chunked, size ---------------------------------------------------

IMAGE = png()


@pytest.mark.parametrize(
    "length, status",
    [("abc", 400), ("-5", 400), ("+5", 400), ("1_0", 400), ("0x10", 400), (" ", 400), ("99999999999999999999", 413)],
)
def test_an_invalid_content_length_is_400(server, length, status) -> None:
    answer = post(server[1], ["Content-Type: image/png", f"Content-Length: {length}"], IMAGE, timeout=5)
    assert answer.status == status and answer.error()
    assert answer.headers.get("connection") == "close"
    assert alive(server[1])


def test_disagreeing_content_lengths_are_400(server) -> None:
    headers = ["Content-Type: image/png", f"Content-Length: {len(IMAGE)}", f"Content-Length: {len(IMAGE) + 1}"]
    answer = post(server[1], headers, IMAGE)
    assert answer.status == 400 and "disagree" in answer.error()


def test_a_post_without_content_length_is_411(server) -> None:
    answer = post(server[1], ["Content-Type: image/png"], timeout=5)
    assert answer.status == 411 and "Content-Length" in answer.error()


def test_a_body_shorter_than_content_length_is_400(server) -> None:
    answer = post(server[1], ["Content-Type: image/png", f"Content-Length: {len(IMAGE) + 100}"], IMAGE, half_close=True)
    assert answer.status == 400 and f"after {len(IMAGE)} of the {len(IMAGE) + 100} bytes" in answer.error()


def test_a_body_that_stops_arriving_is_408_not_a_hang(server) -> None:
    started = time.time()
    answer = post(server[1], ["Content-Type: image/png", f"Content-Length: {len(IMAGE) + 100}"], IMAGE, timeout=10)
    assert answer.status == 408 and answer.error()
    assert time.time() - started < READ_TIMEOUT + 5


def test_a_body_over_6_mb_is_413(server) -> None:
    status, _, body = invoke(server[1], b"\xff\xd8\xff" + b"\0" * (6 * 1024 * 1024), "image/jpeg")
    assert status == 413 and json.loads(body)["error"]
    assert alive(server[1])


def test_expect_100_continue_refuses_an_oversized_body_before_it_is_sent(server) -> None:
    headers = ["Content-Type: image/jpeg", f"Content-Length: {7 * 1024 * 1024}", "Expect: 100-continue"]
    answer = post(server[1], headers, timeout=5)  # no body sent: the answer comes from the headers
    assert answer.status == 413 and "limit" in answer.error()
    ok = post(server[1], ["Content-Type: image/png", f"Content-Length: {len(IMAGE)}", "Expect: 100-continue"], IMAGE)
    assert ok.interim == [100] and ok.status == 200


def _chunked(data: bytes, size: int = 100) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def test_a_chunked_body_is_read(server) -> None:
    answer = post(
        server[1],
        ["Content-Type: image/png", "Accept: application/json", "Transfer-Encoding: chunked"],
        _chunked(IMAGE),
    )
    assert answer.status == 200 and len(json.loads(answer.body)) == len(LABELS)


def test_a_chunked_body_over_6_mb_is_413(server) -> None:
    big = b"%x\r\n" % (4 * 1024 * 1024) + b"\0" * (4 * 1024 * 1024) + b"\r\n"
    answer = post(server[1], ["Content-Type: image/jpeg", "Transfer-Encoding: chunked"], big * 2 + b"0\r\n\r\n")
    assert answer.status == 413 and answer.error()


@pytest.mark.parametrize("body", [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n"], ids=["bad-size", "bad-end"])
def test_a_malformed_chunked_body_is_400(server, body) -> None:
    answer = post(server[1], ["Content-Type: image/png", "Transfer-Encoding: chunked"], body, half_close=True)
    assert answer.status == 400 and "chunked" in answer.error()


def test_an_unknown_transfer_coding_is_501(server) -> None:
    answer = post(server[1], ["Content-Type: image/png", "Transfer-Encoding: gzip, chunked"], _chunked(IMAGE))
    assert answer.status == 501 and answer.error()


def test_keep_alive_serves_several_requests_on_one_connection(server) -> None:
    one = f"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\nContent-Length: {len(IMAGE)}\r\n\r\n"
    with socket.create_connection(_address(server[1]), timeout=10) as conn:
        for _ in range(3):
            conn.sendall(one.encode() + IMAGE)
            data = b""
            while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
                data.lower().split(b"content-length:")[1].split(b"\r\n")[0]
            ):
                data += conn.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 ")


def test_empty_lines_before_a_request_line_are_ignored(server) -> None:
    """RFC 9112 2.2: a CRLF after a body, before the next pipelined request, loses nothing."""
    ping = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
    assert Answer(exchange(server[1], b"\r\n\r\n" + ping)).status == 200
    one = f"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\nContent-Length: {len(IMAGE)}\r\n\r\n"
    with socket.create_connection(_address(server[1]), timeout=10) as conn:
        conn.sendall(one.encode() + IMAGE + b"\r\n" + ping)
        data = b""
        while data.count(b"HTTP/1.1 200 ") < 2 or not data.endswith(b"\r\n\r\n"):  # the ping has no body
            chunk = conn.recv(65536)
            assert chunk, data
            data += chunk
    assert data.count(b"HTTP/1.1 200 ") == 2


# -- the serve and predict commands fail in one line -------------------------------------------


def one_line(err: str) -> str:
    """The reason, on one line; only a usage error's usage lines may come above it."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    if len(lines) > 1:
        assert lines[0].startswith("usage: imgclf ") and all(line.startswith(" ") for line in lines[1:-1]), err
    return lines[-1]


def test_serve_a_missing_file_is_a_usage_error(cli, tmp_path) -> None:
    code, _, err = cli("serve", "--model", str(tmp_path / "model.tar.gz"))
    assert code == 2 and "does not exist" in one_line(err)


def _tar(path: Path, files: Dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    "kind", ["not-a-tar", "truncated", "empty-file", "no-model-info", "bad-model-info", "no-params"]
)
def test_serve_of_something_that_is_not_a_model_fails_in_one_line(cli, tmp_path, kind) -> None:
    archive = tmp_path / "model.tar.gz"
    if kind == "not-a-tar":
        archive.write_bytes(png())
    elif kind == "truncated":
        _tar(archive, {"model-info.json": b"{}" * 5000, "labels.json": bytes(range(256)) * 100})
        archive.write_bytes(archive.read_bytes()[:300])
    elif kind == "empty-file":
        archive.write_bytes(b"")
    elif kind == "no-model-info":
        _tar(archive, {"labels.json": b"[]"})
    elif kind == "bad-model-info":
        _tar(archive, {"model-info.json": b"{not json"})
    else:
        info = {"backend": "mxnet", "symbol": "net-symbol.json", "params": "net-0001.params"}
        _tar(archive, {"model-info.json": json.dumps(info).encode(), "net-symbol.json": b"{}"})
    code, _, err = cli("serve", "--model", str(archive), "--port", "0")
    line = one_line(err)
    assert code == 1 and line.startswith("imgclf serve: error: ") and str(archive) in line
    if kind == "no-params":
        assert "net-0001.params" in line


@pytest.mark.mxnet
def test_serve_on_a_busy_port_fails_in_one_line(cli, mxnet_model) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.time()
        code, _, err = cli("serve", "--model", str(mxnet_model), "--port", str(port))
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in one_line(err)
    assert time.time() - started < 30  # it fails before loading the model


@pytest.mark.slow
@pytest.mark.mxnet
def test_serve_reports_a_model_that_does_not_load_in_one_line(cli, mxnet_model, tmp_path) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    for item in mxnet_model.rglob("*"):
        target = broken / item.relative_to(mxnet_model)
        if item.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(item.read_bytes()[:20] if item.suffix == ".params" else item.read_bytes())
    code, _, err = cli("serve", "--model", str(broken), "--port", "0")
    assert code == 1 and "cannot load the model" in one_line(err)


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_with_a_bad_port_is_a_usage_error(cli, port) -> None:
    code, _, err = cli("serve", "--model", "whatever.tar.gz", "--port", port)
    assert code == 2 and "Traceback" not in err


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_predict_to_a_closed_port_fails_in_one_line(cli, tmp_path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(png())
    url = f"http://127.0.0.1:{_closed_port()}"
    code, _, err = cli("predict", "--url", url, str(image))
    line = one_line(err)
    assert code == 1 and url in line and "refused" in line.lower()


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8080", "localhost", "http://", "http://127.0.0.1:port", "ftp://127.0.0.1:21", "http://[::1"]
)
def test_predict_to_a_malformed_url_is_a_usage_error(cli, tmp_path, url) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(png())
    code, _, err = cli("predict", "--url", url, str(image))
    assert code == 2 and "--url" in one_line(err)


def test_predict_reports_an_answer_that_is_not_a_prediction(cli, tmp_path) -> None:
    class NotAModel(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002
            pass

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    image = tmp_path / "a.png"
    image.write_bytes(png())
    with http_stub(NotAModel) as url:
        code, _, err = cli("predict", "--url", url, str(image))
    assert code == 1 and "other than a prediction" in one_line(err)


def test_predict_with_a_running_server(cli, server, tmp_path) -> None:
    image = tmp_path / "red.jpg"
    image.write_bytes(jpeg(40, 40, (250, 10, 10)))
    code, out, err = cli("predict", "--url", server[1] + "/", str(image), "--top-k", "1")
    assert code == 0, err
    assert out.startswith(f"{image}: red ")


def test_predict_of_a_model_that_is_not_one_fails_in_one_line(cli, tmp_path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(png())
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + b"\0" * 50)
    code, _, err = cli("predict", "--model", str(archive), str(image))
    assert code == 1 and str(archive) in one_line(err)


def test_the_server_and_the_contract_share_the_size_limit_and_the_inference_id_header() -> None:
    """app/model_server.py imports only the standard library before the model's code, so it keeps
    its own copies of these two; they must not drift from their homes."""
    from app import model_server
    from image_training.serving import MAX_REQUEST_BYTES
    from imgclf_core.capture import INFERENCE_ID_HEADER

    assert model_server.MAX_BODY == MAX_REQUEST_BYTES
    assert model_server.INFERENCE_ID_HEADER == INFERENCE_ID_HEADER


LOUD_HANDLERS = """
import sys


def model_fn(model_dir):
    return {}


def input_fn(body, content_type):
    sys.stdout.write("x" * 20000 + "\\n")  # a chatty model: 20 kB of output per request
    sys.stdout.flush()
    return body


def predict_fn(data, model):
    return [1.0]


def output_fn(prediction, accept):
    return "[1.0]", "application/json"
"""


@pytest.mark.mxnet
def test_a_server_that_writes_a_lot_of_output_keeps_answering(tmp_path) -> None:
    """ModelServer drains the server's output while it runs: a full pipe (64 kB) would stall it."""
    info = {"backend": "mxnet", "symbol": "net-symbol.json", "params": "net-0001.params"}
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(LOUD_HANDLERS)
    (tmp_path / "model-info.json").write_text(json.dumps(info))
    for name in info["symbol"], info["params"]:
        (tmp_path / name).write_text("")
    with ModelServer(str(tmp_path)) as running:
        for _ in range(20):
            assert invoke(running.url, b"x", "image/png", timeout=10)[0] == 200
