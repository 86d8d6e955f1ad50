"""Named pipes, sockets and devices in a dataset are errors with a code and a location, never a
hang: opening a named pipe waits for a writer that never comes, and a device (a link to
/dev/zero) never ends. The commands run in a subprocess with a timeout, so that a hang fails
the test instead of stopping the run.

Survivors judged EQUIVALENT (mutation testing): ``getattr(os, "O_NONBLOCK", <default>)`` with
another default or none (every POSIX ``os`` has ``O_NONBLOCK``; the default is never used)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from app.batch import Input, _Unreadable, read_input
from image_dataset.store import LocalStore, open_fd, open_file
from tests.builders import folder_dataset, jpeg, lst_dataset, write_file, write_rec
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")


def imgclf(*args: str) -> Tuple[int, str, str]:
    run = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args], capture_output=True, text=True, cwd=str(ROOT), timeout=90
    )
    return run.returncode, run.stdout, run.stderr


def validate(root: Path, *args: str) -> Tuple[int, Dict]:
    code, out, err = imgclf("validate", str(root), "--json", "--workers", "1", *args)
    assert "Traceback" not in err, err
    return code, json.loads(out)


def errors(report: Dict) -> List[Tuple[str, str, str]]:
    return [(e["code"], e["location"], e["message"]) for e in report["errors"]]


def test_a_named_pipe_is_refused_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    started = time.monotonic()
    with pytest.raises(OSError, match=r"it is a named pipe \(FIFO\), not a file") as caught:
        open_fd(str(pipe))
    assert time.monotonic() - started < 5 and caught.value.filename == str(pipe)
    with pytest.raises(OSError, match="named pipe"):
        LocalStore(str(tmp_path)).size("pipe.jpg")


def test_sockets_and_devices_are_refused(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "s.jpg"))
        with pytest.raises(OSError, match="it is a socket, not a file"):
            open_file(str(tmp_path / "s.jpg"))
    finally:
        server.close()
    if os.path.exists("/dev/null"):
        with pytest.raises(OSError, match="it is a character device, not a file"):
            open_file("/dev/null")


def test_a_regular_file_reads_as_with_open(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 100_000)
    with open_file(str(path)) as f:
        assert f.read() == b"x" * 100_000
    fd = open_fd(str(path))
    try:
        assert os.get_blocking(fd) and os.pread(fd, 3, 99_998) == b"xx"
    finally:
        os.close(fd)
    assert LocalStore(str(tmp_path)).size("a.bin") == 100_000


@pytest.mark.parametrize("decode", [True, False])
def test_a_named_pipe_among_the_images_of_a_class(tmp_path: Path, decode: bool) -> None:
    root = tmp_path / "data"
    folder_dataset(str(root), {"cat": 2, "dog": 2}, channels=("train",))
    os.mkfifo(root / "train" / "cat" / "pipe.jpg")
    code, report = validate(root, *(() if decode else ("--no-decode",)))
    found = [e for e in errors(report) if e[1] == "train/cat/pipe.jpg"]
    assert code == 1 and [e[0] for e in found] == ["FILE_UNREADABLE"], report["errors"]
    assert "named pipe" in found[0][2]


def test_a_link_to_a_device_among_the_images(tmp_path: Path) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    root = tmp_path / "data"
    folder_dataset(str(root), {"cat": 2, "dog": 2}, channels=("train",))
    (root / "train" / "dog" / "zero.png").symlink_to("/dev/zero")
    code, report = validate(root)
    assert code == 1 and errors(report) == [
        ("FILE_UNREADABLE", "train/dog/zero.png", "it is a character device, not a file")
    ], report["errors"]


def test_a_named_pipe_listed_in_a_lst(tmp_path: Path) -> None:
    root = Path(lst_dataset(str(tmp_path / "data"), [(0, [0], "a.jpg"), (1, [1], "b.jpg")]))
    (root / "train" / "b.jpg").unlink()
    os.mkfifo(root / "train" / "b.jpg")
    for flags in ((), ("--no-decode",)):
        code, report = validate(root, *flags)
        found = [e for e in errors(report) if e[1] == "train/train.lst:line 2"]
        assert code == 1 and found and found[0][0] == "FILE_UNREADABLE" and "named pipe" in found[0][2], flags


@pytest.mark.parametrize("name", ["train.rec", "train.lst", "train.manifest"])
def test_a_named_pipe_as_a_dataset_file(tmp_path: Path, name: str) -> None:
    root = tmp_path / "data"
    write_rec(str(root / "validation" / "validation.rec"), [(0, jpeg()), (1, jpeg())])
    (root / "train").mkdir()
    os.mkfifo(root / "train" / name)
    code, report = validate(root)
    found = [e for e in errors(report) if e[1] == f"train/{name}"]
    assert code == 1 and found and found[0][0] == "FILE_UNREADABLE" and "named pipe" in found[0][2], report["errors"]


def test_pack_refuses_a_named_pipe_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder_dataset(str(root), {"cat": 2, "dog": 2}, channels=("train",))
    os.mkfifo(root / "train" / "dog" / "pipe.png")
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = imgclf("pack", str(root), str(out / "x"))
    assert code == 1 and "train/dog/pipe.png" in err and "named pipe" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_batch_reads_no_named_pipe(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    write_file(str(tmp_path / "a.jpg"), jpeg())
    assert read_input(Input("a.jpg", str(tmp_path / "a.jpg")))[0] == jpeg()
    with pytest.raises(_Unreadable, match="named pipe"):
        read_input(Input("pipe.jpg", str(tmp_path / "pipe.jpg")))


def test_a_file_replaced_by_a_named_pipe_after_its_stat_is_refused_too(tmp_path: Path, monkeypatch) -> None:
    """The stat before the open can be outdated: the open itself must not wait for a writer,
    and the descriptor is checked again (and closed)."""
    import errno
    import stat as stat_module
    import threading

    import image_dataset.store as store

    pipe = tmp_path / "late.jpg"
    os.mkfifo(pipe)
    regular = os.stat(__file__)
    real_stat = os.stat
    monkeypatch.setattr(store.os, "stat", lambda p, *a, **k: regular if str(p) == str(pipe) else real_stat(p, *a, **k))
    assert stat_module.S_ISREG(store.os.stat(str(pipe)).st_mode)
    outcome: List[BaseException] = []
    open_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None

    def attempt() -> None:
        try:
            os.close(open_fd(str(pipe)))
        except BaseException as err:  # noqa: BLE001 - the test looks at what it was
            outcome.append(err)

    opener = threading.Thread(target=attempt, daemon=True)
    opener.start()
    opener.join(10)
    if opener.is_alive():  # blocked in open(): a writer lets it go, then fail
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        opener.join(10)
        pytest.fail("open_fd waited for a writer on a named pipe")
    assert len(outcome) == 1 and isinstance(outcome[0], OSError), outcome
    err = outcome[0]
    assert err.errno == errno.EINVAL and err.filename == str(pipe) and "named pipe" in str(err)
    if open_before is not None:  # the refused descriptor was closed
        assert len(os.listdir("/proc/self/fd")) == open_before


@pytest.mark.parametrize("link, target", [("train/cat/up", ".."), ("train/cat/sibling", "../dog")])
def test_a_link_that_reaches_a_file_twice_is_a_duplicate_not_a_second_label(
    tmp_path: Path, link: str, target: str
) -> None:
    """A link to a parent or sibling folder listed each image of the other class under this one
    too: the same file with two labels. The second path to a real file is DUPLICATE_PATH."""
    for channel in ("train", "validation"):
        for name in ("cat", "dog"):
            write_file(str(tmp_path / channel / name / "a.jpg"), jpeg(8, 8))
    os.symlink(target, tmp_path / link)
    code, report = validate(tmp_path, "--no-decode")
    duplicates = [(e["location"], e["message"]) for e in report["errors"] if e["code"] == "DUPLICATE_PATH"]
    assert code == 1 and duplicates == [
        (
            "train/dog/a.jpg",
            f"the same file as {link}/{'dog/' if target == '..' else ''}a.jpg: a symbolic link makes it appear twice",
        )
    ]
    assert report["channels"]["validation"]["samples"] == 2


@pytest.mark.parametrize("command", ["validate", "pack"])
def test_a_device_or_a_named_pipe_as_the_dataset_is_a_usage_error(tmp_path: Path, command: str) -> None:
    os.mkfifo(tmp_path / "pipe")
    for path in ("/dev/null", str(tmp_path / "pipe")):
        args = [path] + ([str(tmp_path / "p")] if command == "pack" else [])
        code, _, err = imgclf(command, *args)
        assert code == 2 and err.startswith(f"usage: imgclf {command} ")
        assert err.strip().splitlines()[-1] == (
            f"imgclf {command}: error: {path} is neither a folder nor a file (a device, a named pipe or a socket)"
        )
