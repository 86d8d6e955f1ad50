"""Unreadable and vanishing inputs: permissions, broken symbolic links, folders that cannot be
listed and files deleted while a command runs are errors with a code and a location (exit 1),
never a skip and never a traceback.

CI runs as root, whose CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH ignore file modes: the
permission cases run the CLI in a subprocess without those two capabilities (``setpriv``), as
the same uid, so the test's files stay reachable except the ones made unreadable."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from image_dataset.store import LocalStore
from image_dataset.validate import Validator
from tests.builders import folder_dataset, jpeg, lst_dataset, manifest_lines, write_file, write_rec
from tests.conftest import ROOT

NO_DAC = ["--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


def _probe(prefix: List[str], tmp: Path) -> bool:
    """True when a process started with ``prefix`` cannot read a file of mode 000."""
    secret = tmp / "probe"
    secret.write_text("x")
    secret.chmod(0)
    try:
        run = subprocess.run([*prefix, sys.executable, "-c", f"open({str(secret)!r}).read()"], capture_output=True)
        return run.returncode != 0 and b"PermissionError" in run.stderr
    finally:
        secret.chmod(0o600)
        secret.unlink()


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    """The command prefix that runs a process without the capabilities that bypass file modes."""
    prefix: List[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes cannot be tested")
        prefix = [setpriv, *NO_DAC]
    if not _probe(prefix, tmp_path_factory.mktemp("probe")):
        pytest.skip("this process cannot drop the capabilities that bypass file modes")
    return prefix


@pytest.fixture
def locked() -> Iterator[Callable[[Path, int], None]]:
    """chmod a path for the test; the mode is restored afterwards (so tmp_path can be removed)."""
    changed: List[Tuple[Path, int]] = []

    def lock(path: Path, mode: int = 0) -> None:
        changed.append((path, stat.S_IMODE(path.stat().st_mode)))
        path.chmod(mode)

    yield lock
    for path, mode in reversed(changed):
        path.chmod(mode)


def imgclf(prefix: List[str], *args: str) -> Tuple[int, str, str]:
    run = subprocess.run(
        [*prefix, sys.executable, "-m", "app.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=120,
    )
    return run.returncode, run.stdout, run.stderr


# -- the datasets ---------------------------------------------------------------------------


def folders(root: Path) -> Path:
    folder_dataset(str(root), {"cat": 2, "dog": 2}, channels=("train",))
    write_file(str(root / "train" / "cat" / "more" / "010.jpg"), jpeg())
    return root


def lst(root: Path) -> Path:
    return Path(lst_dataset(str(root), [(0, [0], "a.jpg"), (1, [1], "b.jpg")]))


def lst_folder(root: Path) -> Path:
    return Path(lst_dataset(str(root), [(0, [0], "a.jpg"), (1, [1], "b.jpg")], separate_channel=True))


def manifest(root: Path) -> Path:
    for name in ("a.jpg", "b.jpg"):
        write_file(str(root / "train" / name), jpeg())
    rows = [{"source-ref": "a.jpg", "class": 0}, {"source-ref": "b.jpg", "class": 1}]
    write_file(str(root / "train" / "train.manifest"), manifest_lines(rows))
    return root


def annotations(root: Path) -> Path:
    for name in ("a.jpg", "b.jpg"):
        write_file(str(root / "train" / name), jpeg())
    doc = {"labels": ["cat", "dog"], "images": [{"path": "a.jpg", "label": 0}, {"path": "b.jpg", "label": 1}]}
    write_file(str(root / "train" / "annotations.json"), json.dumps(doc))
    return root


def recordio(root: Path) -> Path:
    write_rec(str(root / "train" / "train.rec"), [(0, jpeg()), (1, jpeg())])
    write_file(str(root / "train" / "labels.json"), json.dumps(["cat", "dog"]))
    return root


CASES = {
    # name: (dataset, what is made unreadable, its mode, the location reported)
    "class-folder": (folders, "train/cat", 0, "train/cat"),
    "folder-inside-a-class": (folders, "train/cat/more", 0, "train/cat/more"),
    "class-folder-not-searchable": (folders, "train/cat", 0o644, "train/cat/000.jpg"),
    "image": (folders, "train/dog/001.jpg", 0, "train/dog/001.jpg"),
    "channel-folder": (folders, "train", 0, "train"),
    "dataset-root": (folders, "", 0, "."),
    "lst": (lst, "train/train.lst", 0, "train/train.lst"),
    "lst-folder": (lst_folder, "train_lst", 0, "train_lst"),
    "listed-image": (lst, "train/b.jpg", 0, "train/train.lst:line 2"),
    "manifest": (manifest, "train/train.manifest", 0, "train/train.manifest"),
    "annotations": (annotations, "train/annotations.json", 0, "train/annotations.json"),
    "rec": (recordio, "train/train.rec", 0, "train/train.rec"),
    "idx": (recordio, "train/train.idx", 0, "train/train.idx"),
    "labels-json": (recordio, "train/labels.json", 0, "train/labels.json"),
}


def _issue(report: Dict, code: str, location: str) -> Optional[Dict[str, str]]:
    return next((i for i in report["errors"] if i["code"] == code and i["location"] == location), None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_reports_what_cannot_be_read(tmp_path, unprivileged, locked, case) -> None:
    build, target, mode, location = CASES[case]
    root = build(tmp_path / "data")
    locked(root / target if target else root, mode)
    code, out, err = imgclf(unprivileged, "validate", str(root), "--json", "--workers", "1")
    assert "Traceback" not in err, err
    assert code == 1, (out, err)
    report = json.loads(out)
    issue = _issue(report, "FILE_UNREADABLE", location)
    assert issue is not None, report["errors"]
    assert "ermission denied" in issue["message"]
    assert not report["valid"]


@pytest.mark.parametrize("case", ["class-folder", "image", "lst", "manifest", "annotations", "dataset-root"])
def test_pack_refuses_what_cannot_be_read_and_writes_nothing(tmp_path, unprivileged, locked, case) -> None:
    build, target, mode, location = CASES[case]
    root = build(tmp_path / "data")
    source = root / "train" if case in ("class-folder", "image") else root
    locked(root / target if target else root, mode)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = imgclf(unprivileged, "pack", str(source), str(out_dir / "packed"), "--workers", "1")
    assert "Traceback" not in err, err
    assert code == 1, (out, err)
    shown = location[len("train/") :] if source != root else location
    assert f"error FILE_UNREADABLE {shown}:" in err, err
    assert "nothing was packed" in err
    assert not list(out_dir.iterdir())


def test_one_unreadable_file_given_directly(tmp_path, unprivileged, locked) -> None:
    root = recordio(tmp_path / "data")
    rec = root / "train" / "train.rec"
    locked(rec, 0)
    code, out, err = imgclf(unprivileged, "validate", str(rec), "--json")
    assert code == 1 and "Traceback" not in err, err
    assert _issue(json.loads(out), "FILE_UNREADABLE", "train.rec")


def test_no_decode_still_opens_each_image(tmp_path, unprivileged, locked) -> None:
    root = manifest(tmp_path / "data")
    locked(root / "train" / "a.jpg", 0)
    code, out, err = imgclf(unprivileged, "validate", str(root), "--json", "--no-decode")
    assert code == 1 and "Traceback" not in err, err
    issue = _issue(json.loads(out), "FILE_UNREADABLE", "train/train.manifest:line 1")
    assert issue and "train/a.jpg" in issue["message"]


@pytest.mark.parametrize("command", ["validate", "pack"])
def test_a_path_inside_a_folder_that_cannot_be_entered(tmp_path, unprivileged, locked, command) -> None:
    """Not a usage error ("does not exist"): the path may well exist; the check says why it fails."""
    root = folders(tmp_path / "data")
    locked(root, 0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = [str(root / "train")] + ([str(out_dir / "packed")] if command == "pack" else [])
    code, out, err = imgclf(unprivileged, command, *args)
    assert code == 1 and "Traceback" not in err, err
    assert "FILE_UNREADABLE .: cannot list the folder: Permission denied" in out + err
    assert not list(out_dir.iterdir())


def test_unwritable_pack_output_is_one_line(tmp_path, unprivileged, locked) -> None:
    root = folders(tmp_path / "data")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    locked(out_dir, 0o555)
    code, out, err = imgclf(unprivileged, "pack", str(root / "train"), str(out_dir / "packed"), "--workers", "1")
    assert code == 1 and "Traceback" not in err, err
    (line,) = err.splitlines()
    assert line.startswith("imgclf pack: error: Permission denied: ") and str(out_dir) in line, line
    assert not list(out_dir.iterdir())


# -- broken symbolic links (no privileges needed) -------------------------------------------


def test_broken_links_are_missing_files(tmp_path, validate_json) -> None:
    root = folders(tmp_path / "data")
    (root / "train" / "cat" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (root / "train" / "bird").symlink_to(tmp_path / "no-folder", target_is_directory=True)
    code, report = validate_json(str(root))
    assert code == 1
    assert _issue(report, "FILE_MISSING", "train/cat/gone.jpg")
    bird = _issue(report, "FILE_MISSING", "train/bird")
    assert bird and "broken symbolic link" in bird["message"]


def test_broken_link_listed_in_a_lst(tmp_path, validate_json) -> None:
    root = lst(tmp_path / "data")
    (root / "train" / "b.jpg").unlink()
    (root / "train" / "b.jpg").symlink_to(tmp_path / "nowhere.jpg")
    code, report = validate_json(str(root))
    issue = _issue(report, "FILE_MISSING", "train/train.lst:line 2")
    assert code == 1 and issue and "broken symbolic link" in issue["message"], report["errors"]


def test_broken_link_as_the_rec(tmp_path, validate_json) -> None:
    root = recordio(tmp_path / "data")
    (root / "train" / "train.rec").rename(tmp_path / "moved.rec")
    (root / "train" / "train.rec").symlink_to(tmp_path / "nowhere.rec")
    code, report = validate_json(str(root))
    assert code == 1 and _issue(report, "FILE_MISSING", "train/train.rec"), report["errors"]


def test_broken_link_given_as_the_path_is_a_usage_error(tmp_path, cli) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    code, _, err = cli("validate", str(tmp_path / "link"))
    assert code == 2 and "broken symbolic link" in err and "Traceback" not in err


def test_linked_folders_are_followed_once(tmp_path, validate_json) -> None:
    """As im2rec lists images: a link to a folder is followed, a link loop ends."""
    root = folders(tmp_path / "data")
    folder_dataset(str(tmp_path / "elsewhere"), {"cat": 3}, channels=("x",))
    (root / "train" / "cat" / "linked").symlink_to(tmp_path / "elsewhere" / "x" / "cat", target_is_directory=True)
    (root / "train" / "dog" / "loop").symlink_to(root / "train" / "dog", target_is_directory=True)
    code, report = validate_json(str(root))
    assert code == 0, report["errors"]
    assert report["channels"]["train"]["class_counts"] == {"0": 2 + 1 + 3, "1": 2}


# -- files that vanish while a command runs ---------------------------------------------------


def _after_discovery(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Run ``action`` once the validator has listed the channels, before it reads them."""
    channels = Validator.channels

    def listed_then_changed(self: Validator) -> list:
        found = channels(self)
        action()
        return found

    monkeypatch.setattr(Validator, "channels", listed_then_changed)


VANISHING = {
    # name: (dataset, what is deleted after the listing, the location reported)
    "class-folder": (folders, "train/cat", "train/cat"),
    "lst": (lst, "train/train.lst", "train/train.lst"),
    "manifest": (manifest, "train/train.manifest", "train/train.manifest"),
    "rec": (recordio, "train/train.rec", "train/train.rec"),
}


def _delete(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


@pytest.mark.parametrize("case", sorted(VANISHING))
def test_deleted_after_listing(tmp_path, validate_json, monkeypatch, case) -> None:
    build, target, location = VANISHING[case]
    root = build(tmp_path / "data")
    _after_discovery(monkeypatch, lambda: _delete(root / target))
    code, report = validate_json(str(root))
    issue = _issue(report, "FILE_MISSING", location)
    assert code == 1 and issue, report["errors"]
    assert "does not exist" in issue["message"]


def _delete_when_asked_again(monkeypatch: pytest.MonkeyPatch, root: Path, path: str) -> None:
    """Delete ``path`` right after the second ``exists`` check of it says yes (the channel
    listing asks first, then its reader, which then finds it gone)."""
    exists = LocalStore.exists
    asked: List[str] = []

    def exists_then_delete(store: LocalStore, name: str) -> bool:
        found = exists(store, name)
        asked.append(name)
        if found and name == path and asked.count(path) == 2:
            (root / path).unlink()
        return found

    monkeypatch.setattr(LocalStore, "exists", exists_then_delete)


@pytest.mark.parametrize("path", ["train/labels.json", "train/train.idx"])
def test_deleted_between_exists_and_read(tmp_path, validate_json, monkeypatch, path) -> None:
    root = recordio(tmp_path / "data")
    _delete_when_asked_again(monkeypatch, root, path)
    code, report = validate_json(str(root))
    assert code == 1 and _issue(report, "FILE_MISSING", path), report["errors"]


def test_image_deleted_between_listing_and_reading(tmp_path, validate_json, monkeypatch) -> None:
    root = folders(tmp_path / "data")
    walk = LocalStore.walk_files

    def walk_then_delete(self: LocalStore, path: str) -> Iterator[str]:
        for found in walk(self, path):
            if found.endswith("dog/001.jpg"):
                (root / found).unlink()
            yield found

    monkeypatch.setattr(LocalStore, "walk_files", walk_then_delete)
    code, report = validate_json(str(root))
    issue = _issue(report, "FILE_MISSING", "train/dog/001.jpg")
    assert code == 1 and issue, report["errors"]


def test_class_folder_deleted_between_validation_and_pack(tmp_path, cli, monkeypatch) -> None:
    """pack reads the folders again after validating them: a folder gone by then stops it."""
    root = folders(tmp_path / "data")
    run = Validator.run

    def run_then_delete(self: Validator) -> dict:
        report = run(self)
        shutil.rmtree(root / "train" / "dog")
        return report

    monkeypatch.setattr(Validator, "run", run_then_delete)
    code, out, err = cli("pack", str(root / "train"), str(tmp_path / "packed"), "--workers", "1")
    assert code == 1 and "Traceback" not in err, err
    (line,) = err.splitlines()
    assert line.startswith("imgclf pack: dog: the folder does not exist") and "[FILE_MISSING]" in line, line
    assert not list(tmp_path.glob("packed*"))


def test_image_deleted_between_validation_and_pack(tmp_path, cli, monkeypatch) -> None:
    """pack packs what it validated: an image gone when the folders are read again stops it."""
    root = folders(tmp_path / "data")
    run = Validator.run

    def run_then_delete(self: Validator) -> dict:
        report = run(self)
        (root / "train" / "dog" / "001.jpg").unlink()
        return report

    monkeypatch.setattr(Validator, "run", run_then_delete)
    code, out, err = cli("pack", str(root / "train"), str(tmp_path / "packed"), "--workers", "1")
    assert code == 1 and "Traceback" not in err, err
    (line,) = err.splitlines()
    assert line.startswith("imgclf pack: .: 1 of the 5 validated samples are gone") and "[FILE_MISSING]" in line, line
    assert not list(tmp_path.glob("packed*"))


def test_image_deleted_while_packing(tmp_path, cli, monkeypatch) -> None:
    """An image gone after the samples are read stops the pack with FILE_MISSING, and leaves nothing."""
    import app.cli.dataset

    root = folders(tmp_path / "data")
    load = app.cli.dataset.load_index

    def load_then_delete(*args: object, **kwargs: object) -> object:
        index = load(*args, **kwargs)  # type: ignore[arg-type]
        (root / "train" / "dog" / "001.jpg").unlink()
        return index

    monkeypatch.setattr(app.cli.dataset, "load_index", load_then_delete)
    code, out, err = cli("pack", str(root / "train"), str(tmp_path / "packed"), "--workers", "1")
    assert code == 1 and "Traceback" not in err, err
    (line,) = err.splitlines()
    assert line.startswith("imgclf pack: dog/001.jpg: ") and "[FILE_MISSING]" in line, line
    assert not list(tmp_path.glob("packed*"))
