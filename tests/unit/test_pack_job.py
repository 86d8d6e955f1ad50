"""The Pack step's job: image channels in, RecordIO channels with their class names out; a bad
dataset leaves its reason where SageMaker shows a processing job's exit message."""

from __future__ import annotations

import json

from image_dataset.recordio import IndexedRecordIO
from image_training.errors import run_job
from image_training.pack_job import main
from tests.builders import folder_dataset, write_file


def test_folders_become_recordio_with_labels(tmp_path) -> None:
    root = folder_dataset(str(tmp_path / "in"), {"cat": 3, "dog": 2}, channels=("train", "validation"))
    out = tmp_path / "out"
    main(["--input", root, "--output", str(out), "--workers", "1"])
    for channel in ("train", "validation"):
        count = sum(1 for p in (tmp_path / "in" / channel).rglob("*") if p.is_file())
        folder = out / channel
        with IndexedRecordIO(str(folder / f"{channel}.rec"), str(folder / f"{channel}.idx")) as rec:
            assert len(rec.keys) == count
        assert json.loads((folder / "labels.json").read_text()) == ["cat", "dog"]


def test_an_invalid_dataset_fails_with_its_reason(tmp_path) -> None:
    root = folder_dataset(str(tmp_path / "in"), {"cat": 2}, channels=("train",))
    write_file(str(tmp_path / "in" / "train" / "cat" / "broken.jpg"), b"\xff\xd8\xff not a jpeg")
    code = run_job(lambda: main(["--input", root, "--output", str(tmp_path / "out")]), str(tmp_path), "message")
    message = (tmp_path / "message").read_text()
    assert code == 1 and message.startswith("ClientError: the dataset is invalid: IMG_") and "broken.jpg" in message
    assert not (tmp_path / "out").exists()
