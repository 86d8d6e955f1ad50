"""pack's outputs are all or nothing (image_dataset.pack.Outputs): a folder in the way of any
file of any part stops the run before anything is written, a move that fails puts every earlier
file back as it was, and named pipes left in the output folder never block it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

from image_dataset import pack as pack_module
from image_dataset.pack import Outputs
from tests.builders import jpeg, write_file
from tests.unit.test_special_files import imgclf


def _classes(root: Path) -> str:
    for name in ("cat", "dog"):
        for i in range(3):
            write_file(str(root / name / f"{i}.jpg"), jpeg(8, 8, color=(40 * i, 10, 10)))
    return str(root)


def _tree(folder: Path) -> Dict[str, bytes]:
    return {p.name: (p.read_bytes() if p.is_file() else b"<folder>") for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("in_the_way", ["p.idx", "p_val.idx", "p_train.lst"])
def test_a_folder_with_the_name_of_any_output_stops_the_run_before_anything_is_written(
    tmp_path, cli, in_the_way: str
) -> None:
    src, out = _classes(tmp_path / "src"), tmp_path / "out"
    (out / in_the_way).mkdir(parents=True)
    ratio = [] if in_the_way == "p.idx" else ["--train-ratio", "0.5"]
    code, stdout, stderr = cli("pack", src, str(out / "p"), *ratio)
    assert code != 0 and "a folder has the name of a file to write; nothing was written" in stderr
    assert in_the_way in stderr and "Traceback" not in stdout + stderr
    assert _tree(out) == {in_the_way: b"<folder>"}


def test_a_move_that_fails_puts_back_the_files_it_replaced(tmp_path, monkeypatch) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"old " + name.encode())
    outputs = Outputs()
    for name in ("a", "b", "c"):
        Path(outputs.temp(str(tmp_path / name))).write_bytes(b"new " + name.encode())
    real_replace = os.replace
    moves = []

    def replace(source, target):  # the third file's move fails
        moves.append((os.path.basename(source), os.path.basename(target)))
        if source == str(tmp_path / "c.partial"):
            raise PermissionError(13, "Permission denied", source)
        real_replace(source, target)

    monkeypatch.setattr(pack_module.os, "replace", replace)
    with pytest.raises(PermissionError):
        outputs.publish()
    monkeypatch.setattr(pack_module.os, "replace", real_replace)
    outputs.discard()
    assert _tree(tmp_path) == {"a": b"old a", "b": b"old b", "c": b"old c"}
    assert ("a.partial", "a") in moves and ("b.partial", "b") in moves


def test_published_files_replace_the_old_ones_and_leave_nothing_else(tmp_path) -> None:
    (tmp_path / "a").write_bytes(b"old")
    outputs = Outputs()
    Path(outputs.temp(str(tmp_path / "a"))).write_bytes(b"new a")
    Path(outputs.temp(str(tmp_path / "b"))).write_bytes(b"new b")
    outputs.publish()
    outputs.discard()
    assert _tree(tmp_path) == {"a": b"new a", "b": b"new b"}


def test_named_pipes_left_in_the_output_folder_do_not_block_pack(tmp_path) -> None:
    src, out = _classes(tmp_path / "src"), tmp_path / "out"
    out.mkdir()
    for stale in ("p.rec.partial", "p.lst.partial", "labels.json.partial"):
        os.mkfifo(out / stale)
    code, stdout, _ = imgclf("pack", src, str(out / "p"))  # in a subprocess with a timeout
    assert code == 0 and "p.rec: 6 records" in stdout
    assert sorted(os.listdir(out)) == ["labels.json", "p.idx", "p.lst", "p.rec"]


def test_a_named_pipe_as_labels_json_is_refused_at_once(tmp_path) -> None:
    src, out = _classes(tmp_path / "src"), tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "labels.json")
    code, stdout, stderr = imgclf("pack", src, str(out / "p"))
    assert code != 0 and "LABEL_NAMES_INVALID" in stdout + stderr and "named pipe" in stdout + stderr
    assert sorted(os.listdir(out)) == ["labels.json"]


def test_sigterm_stops_pack_without_leaving_partial_files(tmp_path) -> None:
    """SIGTERM runs pack's clean-up as Ctrl-C does (it used to leave every .partial file)."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    src, out = tmp_path / "src", tmp_path / "out"
    for name in ("cat", "dog"):
        for i in range(300):
            write_file(str(src / name / f"{i}.jpg"), jpeg(256, 256, color=(i % 250, 10, 10)))
    out.mkdir()
    args = [
        "pack",
        str(src),
        str(out / "p"),
        "--resize",
        "200",
        "--encoding",
        ".png",
        "--quality",
        "9",
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", *args], cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not (out / "p.rec.partial").exists() or (out / "p.rec.partial").stat().st_size == 0:
        assert proc.poll() is None and time.monotonic() < deadline, "pack ended before it could be stopped"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and b"terminated" in err and b"Traceback" not in err
    assert os.listdir(out) == []


def test_the_labels_line_shows_control_characters_escaped(tmp_path, cli) -> None:
    from tests.builders import manifest_lines

    src, out = tmp_path / "src", tmp_path / "out"
    for i in range(2):
        write_file(str(src / f"{i}.jpg"), jpeg(8, 8))
    rows = [{"source-ref": f"{i}.jpg", "class": i, "class-metadata": {"class-name": f"a\tb{i}\n"}} for i in range(2)]
    write_file(str(src / "m.manifest"), manifest_lines(rows))
    out.mkdir()
    code, stdout, _ = cli("pack", str(src / "m.manifest"), str(out / "p"))
    assert code == 0 and "labels: 0=a\\tb0\\n, 1=a\\tb1\\n (in " in stdout
