"""RecordIO request bodies (a batch transform of a .rec) against real models served by their own
``code/inference.py``: the tiny models of test_http_contract. A record's line is the very answer
the image path gives for its image; a refused image's line carries the image path's status and
message; a broken body is a 400 that names the byte offset. The MXNet handlers also run on the
container stack (.venv-container: Python 3.8, no OpenCV), as the AWS MXNet container runs them."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from app.local_serving import ModelServer, invoke
from image_dataset.recordio import frame, pack
from tests.builders import jpeg, noisy_jpeg, png
from tests.training.test_http_contract import LABELS, ROOT, build_model

RECORDIO = "application/x-recordio"
VERBOSE = "application/json;verbose"
IMAGES = [
    png(40, 30, (230, 20, 20)),
    b"\x89PNG\r\n\x1a\n but broken",
    jpeg(32, 48, (20, 220, 30)),
    noisy_jpeg(36, 60, 2),
]


def records(images: List[bytes]) -> bytes:
    return b"".join(frame(pack(float(i), image, id=i)) for i, image in enumerate(images))


def image_path_line(url: str, image: bytes, accept: str = VERBOSE) -> Any:
    """What a record's line must be: the image path's answer, or its status and error message."""
    status, _, answer = invoke(url, image, "application/x-image", accept=accept)
    if status == 200:
        return json.loads(answer)
    return {"error": {"code": status, "message": json.loads(answer)["error"]}}


def lines_of(url: str, body: bytes, accept: str = VERBOSE) -> List[Any]:
    status, headers, answer = invoke(url, body, RECORDIO, accept=accept)
    assert status == 200, answer
    assert headers["Content-Type"] == "application/jsonlines" and not answer.endswith(b"\n")
    return [json.loads(line) for line in answer.decode().split("\n")]


def check_answers(url: str) -> None:
    assert lines_of(url, records(IMAGES)) == [image_path_line(url, image) for image in IMAGES]
    plain = lines_of(url, records(IMAGES[2:]), accept="application/json")
    assert plain == [image_path_line(url, image, "application/json") for image in IMAGES[2:]]
    record = pack(0.0, IMAGES[0])
    for single in (frame(record)[: 8 + len(record)], record):  # SingleRecord: no padding, or no frame
        assert lines_of(url, single) == [image_path_line(url, IMAGES[0])]
    body = records(IMAGES)
    status, _, answer = invoke(url, body[:-5], RECORDIO, accept=VERBOSE)
    offset = len(records(IMAGES[:3]))
    assert status == 400 and f"request#record 3 @byte {offset}" in json.loads(answer)["error"]


def served(archive: Path) -> Iterator[str]:
    with ModelServer(str(archive)) as running:
        yield running.url


@pytest.fixture(scope="module")
def mxnet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model("mxnet", tmp_path_factory.mktemp("recordio-mxnet"))


def _archive(folder: Path, into: Path) -> Path:
    archive = into / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted(folder.iterdir()):
            tar.add(item, arcname=item.name)
    return archive


@pytest.mark.mxnet
def test_mxnet_answers_each_record_as_the_image_path(mxnet_folder: Path, tmp_path: Path) -> None:
    for url in served(_archive(mxnet_folder, tmp_path)):
        check_answers(url)
        assert lines_of(url, records(IMAGES[:1]))[0]["predicted_label"] == "red"


CONTAINER = """
import json, sys
sys.path.insert(0, sys.argv[1] + "/code")  # the model's code/, as the container imports it
from image_training import mxnet_inference as handlers
from image_training.serving import RequestError
model = handlers.model_fn(sys.argv[1])
body = open(sys.argv[2], "rb").read()
def answer(data, content_type):
    return handlers.output_fn(handlers.predict_fn(handlers.input_fn(data, content_type), model), "application/json;verbose")
text, kind = answer(body, "application/x-recordio")
singles = []
for path in sys.argv[3:]:
    try:
        singles.append(json.loads(answer(open(path, "rb").read(), "image/png")[0]))
    except RequestError as err:
        singles.append({"error": {"code": err.status, "message": str(err)}})
print(json.dumps({"kind": kind, "lines": [json.loads(line) for line in text.split("\\n")], "singles": singles}))
"""


@pytest.mark.mxnet
def test_mxnet_handlers_on_the_container_stack(
    mxnet_folder: Path, tmp_path: Path, in_container: Callable[..., str]
) -> None:
    (tmp_path / "body.rec").write_bytes(records(IMAGES))
    paths = []
    for i, image in enumerate(IMAGES):
        (tmp_path / f"{i}.img").write_bytes(image)
        paths.append(str(tmp_path / f"{i}.img"))
    found = json.loads(in_container(CONTAINER, str(mxnet_folder), str(tmp_path / "body.rec"), *paths, cwd=str(ROOT)))
    assert found["kind"] == "application/jsonlines" and found["lines"] == found["singles"]
    assert (
        found["lines"][1]["error"]["code"] == 400
        and [line.get("predicted_label") for line in found["lines"]][0] == "red"
    )


@pytest.mark.slow  # TensorFlow loads for 10-30 s
@pytest.mark.tensorflow
def test_tensorflow_answers_each_record_as_the_image_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = build_model("tensorflow", tmp_path_factory.mktemp("recordio-tf"))
    for url in served(_archive(folder, tmp_path_factory.mktemp("recordio-tf-archive"))):
        check_answers(url)
        assert lines_of(url, records(IMAGES[:1]))[0]["labels"] == LABELS
