"""``imgclf batch`` end to end with a stand-in model server (a few lines of HTTP that answer as
the verbose serving contract does), so that inputs, order, errors, exit codes and resuming are
checked in a second. tests/training/test_batch_model.py runs the same with real models."""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List

import pytest

import app.batch
from image_dataset.recordio import MAGIC_BYTES
from tests.builders import jpeg, png, write_file, write_rec

LABELS = ["red", "green", "blue"]


def verbose(body: bytes) -> Dict[str, Any]:
    """The stand-in model's answer: a label that the image's bytes decide."""
    best = int(hashlib.sha256(body).hexdigest(), 16) % 3
    probabilities = [0.1, 0.1, 0.1]
    probabilities[best] = 0.8
    order = sorted(range(3), key=lambda i: -probabilities[i])[:2]
    return {
        "probabilities": probabilities,
        "labels": LABELS,
        "predicted_label": LABELS[best],
        "top_k": [{"label": LABELS[i], "probability": probabilities[i]} for i in order],
    }


class JoinedServer(ThreadingHTTPServer):
    """Its close waits for the requests in flight: a handler left running would append to the
    next test's FakeModelServer.requests (a request the stopped command sent last)."""

    daemon_threads = False


class FakeModelServer:
    """Stands in for app.local_serving.ModelServer: 400 for what is no JPEG/PNG, else a verbose
    answer, after a random delay (so that answers finish out of order)."""

    requests: List[bytes] = []
    fail_start = ""
    die_after = -1  # the request on which the server "crashes"

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model = model
        self.url = ""
        self._server: Any = None
        self._dead = False

    def start(self) -> str:
        if FakeModelServer.fail_start:
            raise app.batch.ServeError(FakeModelServer.fail_start)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a connection that sends nothing cannot hold stop() (it joins the handlers)

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Accept"] == "application/json;verbose"
                FakeModelServer.requests.append(body)
                if len(FakeModelServer.requests) == FakeModelServer.die_after:
                    owner._dead = True  # as a crashed server: the connection closes unanswered
                    self.close_connection = True
                    return
                time.sleep(random.random() * 0.01)
                if body[:3] == b"\xff\xd8\xff" or body[:8] == b"\x89PNG\r\n\x1a\n":
                    status, answer = 200, json.dumps(verbose(body))
                else:
                    status, answer = 400, json.dumps({"error": "the body is not a JPEG or PNG image"})
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = JoinedServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def running(self) -> bool:
        return not self._dead

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture(autouse=True)
def fake_server(monkeypatch) -> None:
    monkeypatch.setattr(app.batch, "ModelServer", FakeModelServer)
    FakeModelServer.requests = []
    FakeModelServer.fail_start = ""
    FakeModelServer.die_after = -1


@pytest.fixture
def model(tmp_path) -> Path:
    return Path(write_file(str(tmp_path / "model.tar.gz"), b"a model archive"))


def images(count: int) -> List[bytes]:
    return [png(8 + i % 5, 8, (i * 37 % 256, i * 11 % 256, 90)) for i in range(count)]


def read_lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected(source: str, body: bytes) -> Dict[str, Any]:
    answer = verbose(body)
    return {"source": source, "label": answer["predicted_label"], "probability": 0.8, "top_k": answer["top_k"]}


def no_sidecars(out: Path) -> bool:
    return not Path(str(out) + ".partial").exists() and not Path(str(out) + ".partial.json").exists()


def test_a_folder_is_classified_in_order_with_error_lines(tmp_path, model, cli) -> None:
    root = tmp_path / "in"
    bodies = images(12)
    for i, body in enumerate(bodies):
        write_file(str(root / f"{i:02d}.png"), body)
    write_file(str(root / "b" / "deep.jpg"), jpeg(9, 9))
    write_file(str(root / "a" / "corrupt.png"), b"this is no image")
    write_file(str(root / "notes.txt"), "not an image")
    write_file(str(root / ".hidden.png"), b"ignored")
    write_file(str(root / ".cache" / "x.png"), b"ignored")
    os.symlink(str(tmp_path / "gone.png"), str(root / "broken.png"))
    out = tmp_path / "out.jsonl"
    code, stdout, err = cli("batch", str(root), "--model", str(model), "--output", str(out), "--workers", "4")
    assert code == 1, err
    lines = read_lines(out)
    assert [line["source"] for line in lines] == [
        *[f"{i:02d}.png" for i in range(12)],
        "broken.png",  # a folder's files, then its folders (as im2rec lists them)
        "a/corrupt.png",
        "b/deep.jpg",
    ]
    assert lines[:12] == [expected(f"{i:02d}.png", body) for i, body in enumerate(bodies)]
    assert lines[12]["error"]["code"] == "IMAGE_UNREADABLE" and "No such file" in lines[12]["error"]["message"]
    assert lines[13]["error"] == {"code": "IMAGE_INVALID", "message": "HTTP 400: the body is not a JPEG or PNG image"}
    assert lines[14] == expected("b/deep.jpg", jpeg(9, 9))
    assert stdout.strip() == (
        f"classified 13 of 15 inputs; 2 failed (1 IMAGE_INVALID, 1 IMAGE_UNREADABLE); "
        f"skipped 1 file that is not an image; wrote {out}"
    )
    assert err.strip() == f"imgclf batch: error: 2 of 15 inputs could not be classified; their lines in {out} say why"
    assert no_sidecars(out)


def test_every_input_classified_exits_0(tmp_path, model, cli) -> None:
    root = tmp_path / "in"
    for i, body in enumerate(images(3)):
        write_file(str(root / f"{i}.png"), body)
    out = tmp_path / "out.jsonl"
    code, stdout, err = cli("batch", str(root), "--model", str(model), "-o", str(out))
    assert (code, err) == (0, "")
    assert stdout.strip() == f"classified 3 of 3 inputs; wrote {out}"


def test_a_lst_is_classified_in_its_order(tmp_path, model, cli) -> None:
    bodies = images(3)
    write_file(str(tmp_path / "imgs" / "a.png"), bodies[0])
    write_file(str(tmp_path / "imgs" / "sub" / "b.png"), bodies[1])
    lst = "0\t1\timgs/sub/b.png\n1\t0\timgs/a.png\nbroken line\n2\t0\timgs/missing.png\n3\t2\t../escape.png\n"
    write_file(str(tmp_path / "list.lst"), lst)
    out = tmp_path / "out.jsonl"
    code, _, _ = cli("batch", str(tmp_path / "list.lst"), "--model", str(model), "-o", str(out))
    assert code == 1
    lines = read_lines(out)
    assert lines[0] == expected("imgs/sub/b.png", bodies[1])
    assert lines[1] == expected("imgs/a.png", bodies[0])
    assert lines[2]["source"] == "list.lst:line 3" and lines[2]["error"]["code"] == "LST_SYNTAX"
    assert lines[3]["source"] == "imgs/missing.png" and lines[3]["error"]["code"] == "IMAGE_UNREADABLE"
    assert lines[4]["source"] == "list.lst:line 5" and lines[4]["error"]["code"] == "PATH_UNSAFE"
    assert len(lines) == 5


def test_a_manifest_needs_no_labels(tmp_path, model, cli) -> None:
    bodies = images(3)
    for i, body in enumerate(bodies):
        write_file(str(tmp_path / "data" / f"{i}.png"), body)
    rows = [
        {"source-ref": "data/0.png"},  # an inference manifest: no label
        {"image-ref": "data/1.png", "class": 2, "class-metadata": {"class-name": "blue"}},
        {"source-ref": "s3://bucket/key.png"},
        {"no-source": 1},
        {"source-ref": "data/2.png", "labels": [0, 1]},
    ]
    write_file(str(tmp_path / "in.manifest"), "".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    code, _, _ = cli("batch", str(tmp_path / "in.manifest"), "--model", str(model), "-o", str(out))
    assert code == 1
    lines = read_lines(out)
    assert lines[0] == expected("data/0.png", bodies[0])
    assert lines[1] == expected("data/1.png", bodies[1])
    assert lines[2]["source"] == "s3://bucket/key.png" and lines[2]["error"]["code"] == "S3_REFERENCE"
    assert lines[3]["source"] == "in.manifest:line 4" and lines[3]["error"]["code"] == "MANIFEST_NO_SOURCE"
    assert lines[4] == expected("data/2.png", bodies[2])


def test_a_rec_is_classified_record_by_record(tmp_path, model, cli) -> None:
    bodies = images(4)
    bodies[2] = bodies[2] + b"\0" * (-len(bodies[2]) % 4) + MAGIC_BYTES + b"tail"  # a multi-part record
    rec = write_rec(str(tmp_path / "data.rec"), [(float(i), body) for i, body in enumerate(bodies)], with_idx=False)
    out = tmp_path / "out.jsonl"
    code, _, err = cli("batch", rec, "--model", str(model), "-o", str(out), "--workers", "3")
    assert code == 0, err
    assert read_lines(out) == [expected(f"#record {i}", body) for i, body in enumerate(bodies)]
    with open(rec, "ab") as f:  # a record cut short: the inputs before it are still classified
        f.write(b"\x0a\x23\xd7\xce\x40\x00\x00\x00abc")
    code, _, _ = cli("batch", rec, "--model", str(model), "-o", str(out))
    lines = read_lines(out)
    assert code == 1 and len(lines) == 5 and lines[:4] == [expected(f"#record {i}", b) for i, b in enumerate(bodies)]
    assert lines[4]["source"] == "#record 4" and lines[4]["error"]["code"] == "IMAGE_UNREADABLE"
    assert "REC_TRUNCATED" in lines[4]["error"]["message"]


def _folder(root: Path, count: int) -> List[bytes]:
    bodies = images(count)
    for i, body in enumerate(bodies):
        write_file(str(root / f"{i:03d}.png"), body)
    return bodies


def test_resume_keeps_the_complete_lines_and_finishes(tmp_path, model, cli) -> None:
    root = tmp_path / "in"
    _folder(root, 20)
    whole = tmp_path / "whole.jsonl"
    assert cli("batch", str(root), "--model", str(model), "-o", str(whole))[0] == 0
    reference = whole.read_bytes()
    # an interrupted run: its state file, 7 complete lines and a torn eighth
    out = tmp_path / "out.jsonl"
    assert cli("batch", str(root), "--model", str(model), "-o", str(out))[0] == 0
    state = json.dumps({"version": 1, "fingerprint": app_fingerprint(model, root)})
    Path(str(out) + ".partial.json").write_text(state)
    cut = [i for i, byte in enumerate(reference) if byte == ord("\n")][6] + 1
    Path(str(out) + ".partial").write_bytes(reference[: cut + 25])
    out.unlink()
    FakeModelServer.requests = []
    code, _, err = cli("batch", str(root), "--model", str(model), "-o", str(out))
    assert code == 0
    assert "resuming: 7 of 20 inputs were done (an incomplete last line was dropped)" in err
    assert out.read_bytes() == reference
    assert len(FakeModelServer.requests) == 13  # only what was not done
    assert no_sidecars(out)


def app_fingerprint(model: Path, root: Path) -> str:
    batch = app.batch.Batch(str(model), str(root), str(root.parent / "x.jsonl"), 1)
    batch.prepare()
    return batch.fingerprint()


def test_a_changed_model_starts_over(tmp_path, model, cli) -> None:
    root = tmp_path / "in"
    _folder(root, 5)
    out = tmp_path / "out.jsonl"
    Path(str(out) + ".partial.json").write_text(json.dumps({"version": 1, "fingerprint": app_fingerprint(model, root)}))
    Path(str(out) + ".partial").write_text('{"source": "000.png", "label": "stale", "probability": 1, "top_k": []}\n')
    model.write_bytes(b"another model")
    code, _, err = cli("batch", str(root), "--model", str(model), "-o", str(out))
    assert code == 0
    assert "starting over: the model or the inputs changed since the interrupted run" in err
    assert len(FakeModelServer.requests) == 5 and "stale" not in out.read_text()


def test_an_interrupted_run_resumes_to_the_same_output(tmp_path, model, cli, monkeypatch) -> None:
    root = tmp_path / "in"
    _folder(root, 30)
    whole = tmp_path / "whole.jsonl"
    assert cli("batch", str(root), "--model", str(model), "-o", str(whole), "--workers", "3")[0] == 0
    out = tmp_path / "out.jsonl"
    real = app.batch.classify
    calls = []

    def interrupted(*args: Any) -> Dict[str, Any]:
        calls.append(1)
        if len(calls) == 11:
            raise KeyboardInterrupt  # Ctrl-C, as the main thread sees it through the worker's future
        return real(*args)

    monkeypatch.setattr(app.batch, "classify", interrupted)
    code, _, err = cli("batch", str(root), "--model", str(model), "-o", str(out), "--workers", "3")
    assert code == 130
    assert f"interrupted: 10 of 30 lines are in {out}.partial; run the same command again to continue" in err
    assert not out.exists() and len(read_lines(Path(str(out) + ".partial"))) == 10
    monkeypatch.setattr(app.batch, "classify", real)
    code, _, err = cli("batch", str(root), "--model", str(model), "-o", str(out), "--workers", "2")
    assert code == 0 and "resuming: 10 of 30" in err
    assert out.read_bytes() == whole.read_bytes() and no_sidecars(out)


def test_a_model_that_cannot_be_served_is_one_line_and_writes_nothing(tmp_path, model, cli) -> None:
    root = tmp_path / "in"
    _folder(root, 2)
    FakeModelServer.fail_start = "model.tar.gz is not a model archive (model.tar.gz): it is not a tar or tar.gz file"
    out = tmp_path / "out.jsonl"
    code, stdout, err = cli("batch", str(root), "--model", str(model), "-o", str(out))
    assert (code, stdout) == (1, "")
    assert err == f"imgclf batch: error: {FakeModelServer.fail_start}\n"
    assert not out.exists() and no_sidecars(out)


def test_a_server_that_stops_fails_the_run_and_keeps_the_lines(tmp_path, model, cli) -> None:
    root = tmp_path / "in"
    _folder(root, 8)
    FakeModelServer.die_after = 4
    out = tmp_path / "out.jsonl"
    code, _, err = cli("batch", str(root), "--model", str(model), "-o", str(out), "--workers", "1")
    assert code == 1 and "the model server stopped" in err and "run the same command again to continue" in err
    assert not out.exists() and len(read_lines(Path(str(out) + ".partial"))) == 3


def test_usage_errors_exit_2(tmp_path, model, cli) -> None:
    root = tmp_path / "in"
    _folder(root, 1)
    out = str(tmp_path / "out.jsonl")
    cases = {
        "does not exist": ("batch", str(tmp_path / "nope"), "--model", str(model), "-o", out),
        "unknown input format": ("batch", write_file(str(tmp_path / "x.txt"), "x"), "--model", str(model), "-o", out),
        "is a folder": ("batch", str(root), "--model", str(model), "-o", str(tmp_path)),
        "folder": ("batch", str(root), "--model", str(model), "-o", str(tmp_path / "no" / "out.jsonl")),
        "the input itself": (
            "batch",
            write_file(str(tmp_path / "l.lst"), ""),
            "--model",
            str(model),
            "-o",
            str(tmp_path / "l.lst"),
        ),
        "--model": ("batch", str(root), "--model", str(tmp_path / "none.tar.gz"), "-o", out),
        "greater than 0": ("batch", str(root), "--model", str(model), "-o", out, "--workers", "0"),
        "required": ("batch", str(root), "--model", str(model)),
    }
    for message, args in cases.items():
        code, _, err = cli(*args)
        assert code == 2, (message, err)
        assert message in err and err.strip().splitlines()[-1].startswith("imgclf batch: error: "), err
    assert FakeModelServer.requests == [] and not Path(out).exists()


def test_an_empty_input_writes_an_empty_output(tmp_path, model, cli) -> None:
    (tmp_path / "in").mkdir()
    out = tmp_path / "out.jsonl"
    code, stdout, _ = cli("batch", str(tmp_path / "in"), "--model", str(model), "-o", str(out))
    assert code == 0 and out.read_text() == "" and stdout.startswith("classified 0 of 0 inputs")
