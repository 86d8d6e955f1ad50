"""Every imgclf command fails cleanly: exit 1 when the work failed, 2 for a usage error, one
clear line on stderr (``imgclf CMD: error: ...``) and never a traceback, unless ``--debug``
asks for it. The bad inputs: unreachable and malformed URLs, files that are not what they
should be, busy ports, bad option values, missing files and outputs that cannot be written."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest

from app.local_sagemaker import BACKENDS
from tests.builders import folder_dataset, jpeg, write_file
from tests.conftest import ROOT

Cli = Callable[..., Tuple[int, str, str]]


def clean(code: int, err: str, expected: int, command: str) -> str:
    """Assert a clean failure; returns its one line."""
    assert "Traceback" not in err, err
    assert code == expected, (code, err)
    lines = err.strip().splitlines()
    assert lines, "no message on stderr"
    line = lines[-1]
    assert line.startswith(f"imgclf {command}: "), err
    if expected == 1:
        assert len(lines) == 1, err  # usage errors show argparse's usage lines above it
    return line


@pytest.fixture
def closed_port() -> int:
    """A port that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port that something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


@pytest.fixture
def image(tmp_path: Path) -> str:
    return write_file(str(tmp_path / "cat.jpg"), jpeg())


@pytest.fixture
def not_an_archive(tmp_path: Path) -> str:
    return write_file(str(tmp_path / "model.tar.gz"), b"this is not a tar.gz")


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A plain file: nothing can be written below it, whoever runs the test (root too)."""
    return Path(write_file(str(tmp_path / "plain"), "x"))


@pytest.fixture
def dataset(tmp_path: Path) -> str:
    return folder_dataset(str(tmp_path / "pets"), {"cat": 2, "dog": 2})


@pytest.fixture
def offline_aws(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    """AWS calls go to a closed port at once, with fake credentials and no retries."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# -- usage errors: exit 2 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, shown",
    [
        (["validate", "{tmp}/nope"], "does not exist"),
        (["validate", "{tmp}", "--workers", "abc"], "--workers"),
        (["validate", "{tmp}", "--format", "zip"], "--format"),
        (["pack", "{tmp}/nope", "{tmp}/out"], "does not exist"),
        (["pack", "{data}/train", "{tmp}/no/such/folder/out"], "does not exist"),
        (["pack", "{data}/train", "{tmp}/out", "--quality", "0"], "--quality"),
        (["pack", "{data}/train", "{tmp}/out", "--train-ratio", "2"], "ratio"),
        (["upload", "{tmp}/nope", "s3://data/datasets/pets/v1/"], "not a folder"),
        (["upload", "{data}", "http://data/pets"], "s3://"),
        (["upload", "{data}", "s3://data/datasets/pets/v1/", "--rerun", "no spaces"], "--rerun"),
        (["train", "--train", "{data}/train", "--output", "{tmp}/o", "--hp", "epochs=abc"], "epochs"),
        (["train", "--train", "{data}/train", "--output", "{tmp}/o", "--hp", "epoch=3"], "epoch"),
        (["train", "--train", "{data}/train", "--output", "{tmp}/o", "--hp", "learning_rate=fast"], "learning_rate"),
        (["train", "--train", "{data}/train", "--output", "{tmp}/o", "--hp", "noequals"], "key=value"),
        (["train", "--train", "{tmp}/nope", "--output", "{tmp}/o"], "does not exist"),
        (
            ["train", "--train", "{data}/train", "--output", "{tmp}/o", "--hyperparameters", "{tmp}/nope.json"],
            "cannot read",
        ),
        (["train", "--train", "{data}/train", "--output", "{tmp}/o", "--instance-count", "0"], "--instance-count"),
        (
            ["train", "--backend", "tensorflow", "--train", "{data}/train", "--output", "{tmp}/o", "--hp", "epochs=-1"],
            "epochs",
        ),
        (["hyperparameters", "--backend", "caffe"], "--backend"),
        (["serve", "--model", "{tmp}/nope.tar.gz"], "does not exist"),
        (["serve", "--model", "{tmp}/nope.tar.gz", "--port", "http"], "--port"),
        (["predict", "--url", "localhost:8080", "{image}"], "--url"),
        (["predict", "--url", "http://[::1", "{image}"], "--url"),
        (["predict", "--url", "http://127.0.0.1:1", "{tmp}/nope.jpg"], "nope.jpg"),
        (["predict", "--model", "{tmp}/nope.tar.gz", "{image}"], "does not exist"),
        (["pipeline", "run", "{tmp}/nope"], "does not exist"),
        (["pipeline", "run", "{data}", "--hp", "epochs=abc", "--work", "{tmp}/w"], "epochs"),
        (["pipeline", "run", "{data}", "--threshold", "high"], "--threshold"),
        (["demo", "--hp", "epochs=abc", "--work", "{tmp}/w"], "epochs"),
        (["demo", "--dataset", "{tmp}/nope", "--work", "{tmp}/w"], "does not exist"),
        (["doctor", "--cdk-json", "{tmp}/nope.json"], "cannot read"),
        (["doctor", "--cdk-json", "{tmp}/bad.json"], "not JSON"),
        (["sample-data", "{tmp}/s", "--size", "0"], "--size"),
        (["sample-data", "{tmp}/s", "--size", "big"], "--size"),
        (["frobnicate"], "invalid choice"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_usage_errors_exit_2_with_one_clear_line(
    tmp_path: Path, cli: Cli, dataset: str, image: str, args: List[str], shown: str
) -> None:
    write_file(str(tmp_path / "bad.json"), "{")
    argv = [a.format(tmp=tmp_path, data=dataset, image=image) for a in args]
    code, _, err = cli(*argv)
    command = "" if argv[0] == "frobnicate" else (" ".join(argv[:2]) if argv[0] == "pipeline" else argv[0])
    line = clean(code, err, 2, command) if command else err.strip().splitlines()[-1]
    assert shown in line, line
    assert not (tmp_path / "o").exists()


# -- failed work: exit 1 -------------------------------------------------------------------------


def test_predict_to_a_closed_port(cli: Cli, image: str, closed_port: int) -> None:
    code, _, err = cli("predict", "--url", f"http://127.0.0.1:{closed_port}", image)
    line = clean(code, err, 1, "predict")
    assert str(closed_port) in line and "refused" in line.lower(), line


def test_predict_api_to_a_closed_port(cli: Cli, image: str, closed_port: int, offline_aws: None) -> None:
    code, _, err = cli("predict", "--api", f"http://127.0.0.1:{closed_port}/classify", image)
    line = clean(code, err, 1, "predict")
    assert "refused" in line.lower(), line


@pytest.mark.parametrize("command", ["serve", "predict"])
def test_a_file_that_is_not_a_model_archive(cli: Cli, image: str, not_an_archive: str, command: str) -> None:
    args = ["--model", not_an_archive] + ([image] if command == "predict" else ["--port", "0"])
    code, _, err = cli(command, *args)
    line = clean(code, err, 1, command)
    assert not_an_archive in line and "not a model archive" in line, line


def _fake_model(folder: Path) -> str:
    """A model folder with every file serving looks for, none of them a real model."""
    info = {"backend": "mxnet", "symbol": "model-symbol.json", "params": "model-0000.params", "labels": ["a"]}
    write_file(str(folder / "model-info.json"), json.dumps(info))
    for name in ("model-symbol.json", "model-0000.params", "code/inference.py"):
        write_file(str(folder / name), "")
    return str(folder)


def test_serve_on_a_busy_port(cli: Cli, tmp_path: Path, busy_port: int) -> None:
    if not BACKENDS["mxnet"].python.exists():
        pytest.skip(".venv-mxnet is missing")
    code, _, err = cli("serve", "--model", _fake_model(tmp_path / "model"), "--port", str(busy_port))
    line = clean(code, err, 1, "serve")
    assert str(busy_port) in line and "in use" in line.lower(), line


def test_serve_a_model_that_does_not_load(cli: Cli, tmp_path: Path) -> None:
    if not BACKENDS["mxnet"].python.exists():
        pytest.skip(".venv-mxnet is missing")
    code, _, err = cli("serve", "--model", _fake_model(tmp_path / "model"), "--port", "0")
    clean(code, err, 1, "serve")


def test_upload_to_an_unreachable_bucket(cli: Cli, dataset: str, offline_aws: None) -> None:
    code, _, err = cli("upload", dataset, "s3://data/datasets/pets/v1/")
    line = clean(code, err, 1, "upload")
    assert "upload failed" in line and "connect" in line.lower(), line


def test_doctor_without_a_reachable_account(cli: Cli, offline_aws: None) -> None:
    code, out, err = cli("doctor")
    assert code == 1 and "Traceback" not in err + out, err + out
    assert "FAIL" in out


def test_doctor_with_an_unknown_profile(cli: Cli, offline_aws: None) -> None:
    code, _, err = cli("doctor", "--profile", "no-such-profile")
    assert "no-such-profile" in clean(code, err, 2, "doctor")


def test_train_into_an_output_that_cannot_be_written(cli: Cli, dataset: str, a_file: Path) -> None:
    code, _, err = cli("train", "--train", f"{dataset}/train", "--output", str(a_file / "out"), "--hp", "num_classes=2")
    line = clean(code, err, 1, "train")
    assert str(a_file) in line, line


def test_pack_into_an_output_that_cannot_be_written(cli: Cli, dataset: str, tmp_path: Path) -> None:
    (tmp_path / "taken.rec.partial").mkdir()  # the temporary output's name is a folder
    code, _, err = cli("pack", f"{dataset}/train", str(tmp_path / "taken"))
    line = clean(code, err, 1, "pack")
    assert "taken.rec.partial" in line, line
    assert not (tmp_path / "taken.rec").exists()


def test_sample_data_into_an_output_that_cannot_be_written(cli: Cli, a_file: Path) -> None:
    code, _, err = cli("sample-data", str(a_file / "digits"))
    line = clean(code, err, 1, "sample-data")
    assert str(a_file) in line, line


def test_pipeline_with_a_work_folder_that_cannot_be_written(cli: Cli, dataset: str, a_file: Path) -> None:
    code, _, err = cli("pipeline", "run", dataset, "--work", str(a_file / "work"), "--no-serve")
    line = clean(code, err, 1, "pipeline run")
    assert str(a_file) in line, line


# -- the last resort and --debug -----------------------------------------------------------------


@pytest.fixture
def broken_sample_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """sample-data fails with an error that no handler expects."""

    def boom(*args: object, **kwargs: object) -> int:
        raise RuntimeError("something unexpected\nover two lines")

    monkeypatch.setattr("app.sample_data.write_digits", boom)


def test_an_unexpected_error_is_one_line_with_a_hint(cli: Cli, tmp_path: Path, broken_sample_data: None) -> None:
    code, _, err = cli("sample-data", str(tmp_path / "s"))
    line = clean(code, err, 1, "sample-data")
    assert line == (
        "imgclf sample-data: error: RuntimeError: something unexpected; over two lines "
        "(rerun with --debug for the traceback)"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "sample-data", "{tmp}/s"],
        ["sample-data", "--debug", "{tmp}/s"],
        ["sample-data", "{tmp}/s", "--debug"],
    ],
    ids=["before", "after", "last"],
)
def test_debug_shows_the_traceback(cli: Cli, tmp_path: Path, broken_sample_data: None, argv: List[str]) -> None:
    code, _, err = cli(*(a.format(tmp=tmp_path) for a in argv))
    assert code == 1
    assert "Traceback (most recent call last)" in err and "RuntimeError: something unexpected" in err
    assert err.strip().splitlines()[-1].startswith("imgclf sample-data: error: RuntimeError")


def test_debug_from_the_environment(cli: Cli, tmp_path: Path, broken_sample_data: None, monkeypatch) -> None:
    monkeypatch.setenv("IMGCLF_DEBUG", "1")
    code, _, err = cli("sample-data", str(tmp_path / "s"))
    assert code == 1 and "Traceback" in err


def test_debug_on_a_nested_command(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("pipeline", "run", str(tmp_path / "nope"), "--debug")
    assert code == 2 and "Traceback" in err and "does not exist" in err


def test_a_real_process_fails_cleanly(tmp_path: Path, image: str, closed_port: int) -> None:
    """The same through the installed entry point's interpreter, in a process of its own."""
    run = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "predict", "--url", f"http://127.0.0.1:{closed_port}", image],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=120,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.mark.parametrize(
    "args, usage",
    [
        (["pack", "{tmp}/src", "{tmp}/nofolder/p"], "usage: imgclf pack "),
        (["pipeline", "run", "{tmp}/nothing"], "usage: imgclf pipeline run "),
    ],
)
def test_a_usage_error_found_by_the_command_shows_its_usage_lines_too(
    tmp_path: Path, cli: Cli, args: List[str], usage: str
) -> None:
    """As argparse's own usage errors do: the command's usage, then the one-line reason."""
    (tmp_path / "src" / "cat").mkdir(parents=True)
    write_file(str(tmp_path / "src" / "cat" / "a.jpg"), jpeg(8, 8))
    argv = [a.format(tmp=tmp_path) for a in args]
    code, _, err = cli(*argv)
    command = " ".join(argv[:2]) if argv[0] == "pipeline" else argv[0]
    clean(code, err, 2, command)
    assert err.startswith(usage), err


# -- predict's inputs and answers ---------------------------------------------------------------


def test_predict_refuses_what_is_not_a_regular_file_without_reading_it(cli: Cli, tmp_path: Path) -> None:
    """A named pipe would wait for a writer, /dev/zero would be read until memory runs out."""
    import os

    fifo = str(tmp_path / "fifo.jpg")
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a named pipe"), ("/dev/zero", "a device"), (str(tmp_path), "a folder")):
        code, _, err = cli("predict", "--url", "http://127.0.0.1:9", path)
        assert clean(code, err, 2, "predict").endswith(f"{path} is not a regular file ({kind})")


def test_predict_leaves_out_an_image_over_the_payload_limit_without_sending_it(
    cli: Cli, tmp_path: Path, closed_port: int
) -> None:
    big = write_file(str(tmp_path / "big.jpg"), b"\xff\xd8\xff" + b"\0" * (6 * 1024 * 1024))
    code, _, err = cli("predict", "--url", f"http://127.0.0.1:{closed_port}", big)  # never connects
    assert code == 1 and "Traceback" not in err, err
    assert err.strip() == f"{big}: {6 * 1024 * 1024 + 3} bytes, over the endpoint's payload limit of {6 * 1024 * 1024}"


@pytest.mark.parametrize(
    "body",
    [
        '{"top_k": [{"label": "a", "probability": "x"}]}',
        '{"top_k": [{"label": "a", "probability": null}]}',
        '{"top_k": [{"label": "a", "probability": true}]}',
        '{"top_k": [{"label": null, "probability": 0.5}]}',
        '{"top_k": []}',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_predict_says_when_a_200_is_no_prediction(body: str, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli.serve import _answer

    assert _answer("http://x", "cat.jpg", 200, body.encode()) is None
    err = capsys.readouterr().err
    assert err.startswith("cat.jpg: http://x answered HTTP 200 with something other than a prediction: "), err
    assert _answer("http://x", "cat.jpg", 200, b'{"top_k": [{"label": "a", "probability": 1}]}') is not None
