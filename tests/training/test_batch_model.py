"""``imgclf batch`` and ``imgclf serve --capture`` with real models: the tiny MXNet models of
test_http_contract (a pooled colour and one dense layer), written by the backend's export code
and served by their own ``code/inference.py``.

Batch and real time answer the same for the same image, whatever the input format; a run that
is killed resumes to the very file an uninterrupted run writes; the captured records read back
to the request's image and the model's answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest

from app.capture import capture_files, read_captures
from app.local_serving import Capture, ModelServer
from imgclf_core import batch as rules
from tests.builders import jpeg, noisy_jpeg, png, write_file, write_rec
from tests.training.test_http_contract import LABELS, MXNET_MODEL, ROOT

pytestmark = pytest.mark.mxnet


def _archive(folder: Path, script: str) -> Path:
    from tests.interop.conftest import runner

    runner(".venv-mxnet")(script, str(folder / "model"), "2", ",".join(LABELS), cwd=str(ROOT))
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted((folder / "model").iterdir()):
            tar.add(item, arcname=item.name)
    return archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return _archive(tmp_path_factory.mktemp("batch-model"), MXNET_MODEL)


@pytest.fixture(scope="module")
def multi_label_archive(tmp_path_factory) -> Path:
    script = MXNET_MODEL.replace('"multi_label": 0', '"multi_label": 1')
    assert script != MXNET_MODEL
    return _archive(tmp_path_factory.mktemp("batch-multi-label"), script)


def _images() -> Dict[str, bytes]:
    return {
        "red.png": png(40, 30, (230, 20, 20)),
        "green.jpg": jpeg(32, 48, (20, 220, 30)),
        "blue.png": png(64, 64, (10, 20, 240)),
        "grey.jpg": jpeg(33, 33, (128, 128, 128)),
        "photo-1.jpg": noisy_jpeg(50, 40, 1),
        "photo-2.jpg": noisy_jpeg(36, 60, 2),
    }


def _lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _without_source(line: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in line.items() if k != "source"}


@pytest.mark.slow  # four model servers: about 12 s (tests/unit/test_batch_cli.py covers the formats quickly)
def test_every_input_format_gives_the_same_answers(tmp_path, archive, cli) -> None:
    images = _images()
    root = tmp_path / "images"
    for name, data in images.items():
        write_file(str(root / name), data)
    names = sorted(images)
    write_file(str(tmp_path / "list.lst"), "".join(f"{i}\t0\timages/{n}\n" for i, n in enumerate(names)))
    write_file(str(tmp_path / "in.manifest"), "".join(json.dumps({"source-ref": f"images/{n}"}) + "\n" for n in names))
    write_rec(str(tmp_path / "packed.rec"), [(0.0, images[n]) for n in names])
    results = {}
    for name in ("images", "list.lst", "in.manifest", "packed.rec"):
        out = tmp_path / f"{name}.jsonl"
        code, _, err = cli("batch", str(tmp_path / name), "--model", str(archive), "-o", str(out), "--workers", "3")
        assert code == 0, err
        results[name] = _lines(out)
    assert [line["source"] for line in results["images"]] == names
    assert [line["source"] for line in results["list.lst"]] == [f"images/{n}" for n in names]
    assert [line["source"] for line in results["packed.rec"]] == [f"#record {i}" for i in range(len(names))]
    assert results["in.manifest"] == results["list.lst"]
    answers = [[_without_source(line) for line in lines] for lines in results.values()]
    assert all(a == answers[0] for a in answers)
    by_name = dict(zip(names, results["images"]))
    assert [by_name[n]["label"] for n in ("red.png", "green.jpg", "blue.png")] == ["red", "green", "blue"]
    assert all(len(line["top_k"]) == 2 and "labels" not in line for line in results["images"])


def test_unreadable_and_corrupt_inputs_get_error_lines(tmp_path, archive, cli) -> None:
    images = _images()
    root = tmp_path / "images"
    for name, data in images.items():
        write_file(str(root / name), data)
    truncated = images["photo-1.jpg"][: len(images["photo-1.jpg"]) // 2]
    write_file(str(root / "cut.jpg"), truncated)
    write_file(str(root / "text.png"), "not an image")
    os.symlink(str(tmp_path / "missing.png"), str(root / "gone.png"))
    out = tmp_path / "out.jsonl"
    code, stdout, err = cli("batch", str(root), "--model", str(archive), "-o", str(out))
    assert code == 1
    lines = {line["source"]: line for line in _lines(out)}
    assert list(lines) == sorted([*images, "cut.jpg", "text.png", "gone.png"])
    assert lines["cut.jpg"]["error"]["code"] == "IMAGE_INVALID" and "HTTP 400" in lines["cut.jpg"]["error"]["message"]
    assert lines["text.png"]["error"]["code"] == "IMAGE_INVALID"
    assert lines["gone.png"]["error"]["code"] == "IMAGE_UNREADABLE"
    assert all("top_k" in lines[name] for name in images)
    assert "classified 6 of 9 inputs; 3 failed (2 IMAGE_INVALID, 1 IMAGE_UNREADABLE)" in stdout
    assert err.startswith("imgclf batch: error: 3 of 9 inputs could not be classified")


def _predict(cli, archive: Path, paths: List[Path]) -> List[Dict[str, Any]]:
    code, stdout, err = cli("predict", "--model", str(archive), "--json", *map(str, paths))
    assert code == 0, err
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("multi_label", [False, True])
def test_batch_and_real_time_give_the_same_answer(tmp_path, archive, multi_label_archive, cli, multi_label) -> None:
    model = multi_label_archive if multi_label else archive
    images = _images()
    root = tmp_path / "images"
    for name, data in images.items():
        write_file(str(root / name), data)
    out = tmp_path / "out.jsonl"
    assert cli("batch", str(root), "--model", str(model), "-o", str(out))[0] == 0
    batch = _lines(out)
    real_time = _predict(cli, model, [root / line["source"] for line in batch])
    for line, answer in zip(batch, real_time):
        assert line == rules.prediction_line(line["source"], answer)
        assert line["label"] == answer["predicted_label"] and line["top_k"] == answer["top_k"]
        if multi_label:
            assert line["labels"] == answer["predicted_labels"]
            assert line["labels"] == [lab for lab, p in zip(answer["labels"], answer["probabilities"]) if p >= 0.5]
        else:
            assert "labels" not in line


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_output(tmp_path, archive, cli) -> None:
    root = tmp_path / "images"
    for i in range(80):
        write_file(str(root / f"{i:03d}.jpg"), noisy_jpeg(48 + i % 7, 40, i))
    reference = tmp_path / "reference.jsonl"
    assert cli("batch", str(root), "--model", str(archive), "-o", str(reference))[0] == 0
    out = tmp_path / "out.jsonl"
    partial = Path(str(out) + ".partial")
    command = [sys.executable, "-m", "app.cli.main", "batch", str(root), "--model", str(archive), "-o", str(out)]
    proc = subprocess.Popen(
        [*command, "--workers", "1"], cwd=str(ROOT), start_new_session=True, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < 10):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its model server, with no chance to tidy up
    proc.wait()
    done = partial.read_bytes().count(b"\n")
    assert 10 <= done < 80 and not out.exists()
    code, _, err = cli("batch", str(root), "--model", str(archive), "-o", str(out))
    assert code == 0, err
    assert "resuming:" in err
    assert out.read_bytes() == reference.read_bytes()
    assert not partial.exists() and not Path(str(out) + ".partial.json").exists()


def _post(url: str, body: bytes, content_type: str, inference_id: str = "") -> Any:
    headers = {"Content-Type": content_type, "Accept": "application/json;verbose"}
    if inference_id:
        headers["X-Amzn-SageMaker-Inference-Id"] = inference_id
    request = urllib.request.Request(url + "/invocations", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_captured_records_read_back_to_the_request_and_the_answer(tmp_path, archive) -> None:
    images = _images()
    sent = [("red.png", "image/png", "req-1"), ("green.jpg", "image/jpeg", ""), ("blue.png", "image/png", "req-3")]
    folder = tmp_path / "capture"
    with ModelServer(str(archive), capture=Capture(str(folder), 100, "local-ep")) as server:
        answers = [_post(server.url, images[name], kind, inference_id) for name, kind, inference_id in sent]
        assert _post(server.url, b"not an image", "image/png")[0] == 400  # not answered: not captured
    assert [status for status, _ in answers] == [200, 200, 200]
    files = list(capture_files(str(folder)))
    assert len(files) == 1
    parts = Path(os.path.relpath(files[0], folder)).parts
    assert parts[:2] == ("local-ep", "AllTraffic") and len(parts) == 7
    assert [len(p) for p in parts[2:6]] == [4, 2, 2, 2]
    records = [record for _, record in read_captures(str(folder))]
    assert [r.request for r in records] == [images[name] for name, _, _ in sent]
    assert [r.request_type for r in records] == [kind for _, kind, _ in sent]
    assert [r.response for r in records] == [body for _, body in answers]
    assert [r.response_type for r in records] == ["application/json;verbose"] * 3
    assert [r.inference_id for r in records] == ["req-1", None, "req-3"]
    assert records[0].response_json()["predicted_label"] == "red"
    raw = json.loads(Path(files[0]).read_text().splitlines()[0])
    assert raw["eventVersion"] == "0" and raw["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert raw["captureData"]["endpointOutput"]["encoding"] == "JSON"


def test_capture_at_0_percent_writes_nothing(tmp_path, archive) -> None:
    folder = tmp_path / "capture"
    with ModelServer(str(archive), capture=Capture(str(folder), 0)) as server:
        for _ in range(5):
            assert _post(server.url, _images()["red.png"], "image/png")[0] == 200
    assert list(capture_files(str(folder))) == []


def test_a_capture_folder_that_cannot_be_written_never_fails_a_request(tmp_path, archive) -> None:
    blocked = tmp_path / "capture"
    blocked.mkdir()
    (blocked / "local-ep").write_text("a file where the endpoint's folder goes")
    log = tmp_path / "server.log"
    with (
        open(log, "w") as stream,
        ModelServer(str(archive), log=stream, capture=Capture(str(blocked), 100, "local-ep")) as server,
    ):
        for _ in range(3):
            status, body = _post(server.url, _images()["blue.png"], "image/png")
            assert status == 200 and json.loads(body)["predicted_label"] == "blue"
    assert "capture: 1 record(s) not captured: cannot write under" in log.read_text()
