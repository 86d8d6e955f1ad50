"""``imgclf pipeline run`` takes every dataset shape that ``imgclf validate`` takes: a root with
or without validation/, one channel folder (class folders, .lst, manifest, RecordIO), one file;
and it shows the defaults it uses. The training job is replaced here by one that records its
channels and stops, so these run in seconds; tests/e2e/test_pipeline_shapes.py trains."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

import app.pipeline.run as pipeline_run
from app.local_sagemaker import JobResult, place_channel
from app.pipeline.run import EXIT_FAILED, FROM_DATA, PipelineRun, _records, dataset_version
from image_dataset.lst import format_lst_line
from image_dataset.recordio import RecordIOReader, unpack
from image_training.data import ChannelData, held_out, split_channel
from image_training.errors import ClientError
from tests.builders import folder_dataset, jpeg, manifest_lines, write_file, write_rec

CLASSES = {"cat": 6, "dog": 6}


class StoppedJob:
    """Stands in for LocalTrainingJob: keeps what it was given and fails as a job would."""

    seen: List[Dict[str, Any]] = []

    def __init__(self, backend: str, work_dir: str, channels: Dict[str, str], hyperparameters: Dict[str, str]):
        self.work = Path(work_dir)
        StoppedJob.seen.append({"backend": backend, "channels": dict(channels), "hyperparameters": hyperparameters})

    def run(self, echo: Any = None) -> JobResult:
        self.work.mkdir(parents=True, exist_ok=True)
        log = self.work / "job.log"
        log.write_text("")
        return JobResult(1, "ClientError: stopped by the test", None, None, None, log)


@pytest.fixture
def stopped(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, Any]]:
    StoppedJob.seen = []
    monkeypatch.setattr(pipeline_run, "LocalTrainingJob", StoppedJob)
    return StoppedJob.seen


def images(root: Path, count: int = 12) -> List[tuple]:
    """``root/imgs/<n>.jpg`` of two colours; (relative path, class id) of each."""
    rows = []
    for n in range(count):
        label = n % 2
        rel = f"imgs/{n:03d}.jpg"
        write_file(str(root / rel), jpeg(32, 32, (200 * label, 40, 90)))
        rows.append((rel, label))
    return rows


def rec_root(root: Path, count: int = 12, name: str = "data.rec") -> Path:
    write_rec(str(root / name), [(float(n % 2), jpeg(32, 32, (200 * (n % 2), 40, 90))) for n in range(count)])
    write_file(str(root / "labels.json"), json.dumps(["cat", "dog"]))
    return root / name


def run(dataset: Path, work: Path, backend: str = "tensorflow", **kwargs: Any) -> tuple:
    said: List[str] = []
    hps = {"epochs": "1", "mini_batch_size": "4"} if backend == "mxnet" else {"epochs": "1"}
    result = PipelineRun(str(dataset), str(work), backend, hps, say=said.append, **kwargs).run()
    return result, "\n".join(said)


def step(result: Any, name: str) -> Dict[str, str]:
    return next(s for s in result.summary["steps"] if s["step"] == name)


# -- the shapes reach the training job as the channels it would get in the cloud -----------------
def test_no_validation_channel_is_split_by_the_tensorflow_job(tmp_path: Path, stopped: list) -> None:
    root = folder_dataset(str(tmp_path / "d"), CLASSES, channels=("train",))
    result, said = run(Path(root), tmp_path / "w")
    assert result.exit_code == EXIT_FAILED and step(result, "train")["detail"].endswith("stopped by the test")
    assert step(result, "split")["status"] == "ok"
    assert "holds out 2 of 12 train records (validation_split_ratio=0.2)" in said
    [job] = stopped
    assert sorted(job["channels"]) == ["train"]  # the job splits train, as tf_train does in the cloud
    assert (Path(job["channels"]["train"]) / "train.rec").exists()


def test_no_validation_channel_with_mxnet_is_refused_before_packing(tmp_path: Path, stopped: list) -> None:
    root = folder_dataset(str(tmp_path / "d"), CLASSES, channels=("train",))
    result, _ = run(Path(root), tmp_path / "w", backend="mxnet")
    assert result.exit_code == EXIT_FAILED and not stopped
    detail = step(result, "split")["detail"]
    assert "no validation channel" in detail and "mxnet backend does not split train" in detail
    assert "--backend tensorflow" in detail
    assert [s["step"] for s in result.summary["steps"]] == ["validate", "split"]
    assert (result.report.parent / "summary.json").exists()


def test_a_split_that_leaves_one_side_empty_is_refused(tmp_path: Path, stopped: list) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"cat": 1, "dog": 1}, channels=("train",))
    said: List[str] = []
    result = PipelineRun(
        root, str(tmp_path / "w"), "tensorflow", {"validation_split_ratio": "0.1"}, say=said.append
    ).run()
    assert result.exit_code == EXIT_FAILED and not stopped
    assert "validation_split_ratio=0.1 of 2 training records leaves no record" in step(result, "split")["detail"]


@pytest.mark.parametrize("shape", ["folders", "lst", "manifest"])
def test_one_channel_folder_of_images_is_packed_as_train(tmp_path: Path, stopped: list, shape: str) -> None:
    root = tmp_path / "d"
    if shape == "folders":  # class folders directly at the root
        folder_dataset(str(tmp_path), CLASSES, channels=("d",))
    else:
        rows = images(root)
        if shape == "lst":
            write_file(str(root / "data.lst"), "".join(format_lst_line(i, [c], p) for i, (p, c) in enumerate(rows)))
        else:
            write_file(str(root / "data.manifest"), manifest_lines({"source-ref": p, "class": c} for p, c in rows))
    result, _ = run(root, tmp_path / "w")
    assert step(result, "validate")["detail"] == f"train 12 {shape}"
    assert step(result, "split")["status"] == "ok" and step(result, "pack")["status"] == "ok"
    [job] = stopped
    train = Path(job["channels"]["train"])
    assert sorted(job["channels"]) == ["train"] and train.parent.parent.name == "packed"
    with open(train / "train.rec", "rb") as f:
        assert sum(1 for _ in RecordIOReader(f)) == 12


def test_a_recordio_root_and_a_rec_file_are_used_where_they_are(tmp_path: Path, stopped: list) -> None:
    rec = rec_root(tmp_path / "d")
    for dataset, expected in ((rec.parent, rec.parent), (rec, rec)):
        result, _ = run(dataset, tmp_path / "w")
        assert step(result, "validate")["detail"] == "train 12 recordio"
        assert step(result, "pack")["detail"] == "nothing to pack: the channels are RecordIO"
        assert stopped[-1]["channels"] == {"train": str(expected)}
        assert result.summary["validation"]["label_names"] == ["cat", "dog"]


def test_a_root_with_recordio_train_and_image_validation(tmp_path: Path, stopped: list) -> None:
    root = tmp_path / "d"
    rec_root(root / "train", name="train.rec")
    folder_dataset(str(root), {"cat": 2, "dog": 2}, channels=("validation",))
    result, _ = run(root, tmp_path / "w", backend="mxnet")
    assert "split" not in [s["step"] for s in result.summary["steps"]]
    [job] = stopped
    assert job["channels"]["train"] == str(root / "train")
    assert Path(job["channels"]["validation"]).parent.parent.name == "packed"
    assert job["hyperparameters"]["num_training_samples"] == "12"


def test_format_and_label_attribute_read_the_dataset_as_a_descriptor_says(tmp_path: Path, stopped: list) -> None:
    root = tmp_path / "d"
    rows = images(root)
    lines = ({"source-ref": p, "class": c, "colour": 1 - c} for p, c in rows)
    write_file(str(root / "data.manifest"), manifest_lines(lines))
    write_file(str(root / "data.lst"), "".join(format_lst_line(i, [c], p) for i, (p, c) in enumerate(rows)))
    result, _ = run(root, tmp_path / "w")
    assert step(result, "validate")["status"] == "failed"  # two list formats, two label attributes
    result, _ = run(root, tmp_path / "w", descriptor={"format": "manifest", "label_attribute": "colour", "unused": ""})
    assert step(result, "validate")["detail"] == "train 12 manifest"
    assert result.summary["descriptor"] == {"format": "manifest", "label_attribute": "colour"}


# -- the defaults: in --help, printed at the start, kept in the report ---------------------------
def test_help_shows_each_backends_defaults_and_what_the_data_decide(cli: Any) -> None:
    code, out, _ = cli("pipeline", "run", "--help")
    assert code == 0
    for text in (
        "num_layers=20",
        "image_shape=3,32,32",
        "epochs=20",
        "model_name=mobilenet_v2",
        "image_size=32",
        "epochs=15",
        "from the data: num_classes, num_training_samples",
        "validation_split_ratio=0.2",
    ):
        assert text in out, text


def test_settings_are_printed_first_and_kept_in_the_report(tmp_path: Path, stopped: list) -> None:
    root = folder_dataset(str(tmp_path / "d"), CLASSES, size=40)
    result, said = run(Path(root), tmp_path / "w", backend="mxnet")
    lines = said.splitlines()
    assert lines[1].startswith("settings  default: num_layers=20, image_shape=3,32,32, resize=32, learning_rate")
    assert lines[2] == "settings  --hp: epochs=1, mini_batch_size=4"
    assert lines[3].startswith("validate  ok")
    assert lines[4] == "settings  from the data: num_classes=2, num_training_samples=12"
    assert lines[5] == "input     from the data: images of 40x40 to 40x40 pixels; the network sees 32x32 (resize 32)"
    summary = json.loads((result.report.parent / "summary.json").read_text())
    sources = {s["name"]: s["source"] for s in summary["settings"]}
    assert sources["num_layers"] == "default" and sources["epochs"] == "--hp"
    assert sources["num_classes"] == sources["num_training_samples"] == FROM_DATA
    assert summary["hyperparameters"]["num_training_samples"] == "12"
    page = result.report.read_text()
    assert "<td>num_classes</td><td>2</td><td>from the data</td>" in page
    assert "<td>epochs</td><td>1</td><td>--hp</td>" in page and "the network sees 32x32" in page


@pytest.mark.parametrize(
    "value, expected",
    [("epochs=abc", "hyperparameter epochs"), ("num_classes=3", "set by the workflow"), ("color=1", "not a hyper")],
)
def test_bad_hyperparameters_are_usage_errors(tmp_path: Path, cli: Any, value: str, expected: str) -> None:
    root = folder_dataset(str(tmp_path / "d"), CLASSES)
    code, out, err = cli("pipeline", "run", root, "--work", str(tmp_path / "w"), "--no-serve", "--hp", value)
    assert code == 2 and expected in err and "Traceback" not in err
    assert err.startswith("usage: imgclf pipeline run ") and not (tmp_path / "w").exists()
    assert err.strip().splitlines()[-1].startswith("imgclf pipeline run: error: ")


def test_hyperparameters_are_read_as_the_job_reads_them(tmp_path: Path, cli: Any, stopped: list) -> None:
    root = folder_dataset(str(tmp_path / "d"), CLASSES)
    args = ["--work", str(tmp_path / "w"), "--no-serve", "--hp", "epochs=2.0", "--hp", "mini_batch_size=4"]
    code, out, err = cli("pipeline", "run", root, *args)
    assert code == 1 and "stopped by the test" in out and "Traceback" not in err
    assert stopped[0]["hyperparameters"]["epochs"] == "2.0"


def test_a_missing_dataset_is_a_usage_error(tmp_path: Path, cli: Any) -> None:
    code, _, err = cli("pipeline", "run", str(tmp_path / "nothing"), "--no-serve")
    assert code == 2 and "does not exist" in err


# -- the pieces ---------------------------------------------------------------------------------
def test_the_held_out_records_are_those_the_job_splits_off(tmp_path: Path) -> None:
    rec = write_rec(str(tmp_path / "t.rec"), [(float(n), jpeg(8, 8, (n, n, n))) for n in range(20)])
    train = ChannelData(rec, rec[:-4] + ".idx", 20)
    _, validation = split_channel(train, 0.25, str(tmp_path))
    with open(validation.rec, "rb") as f:
        split_labels = sorted(unpack(r)[0].label for _, r in RecordIOReader(f))
    held = held_out(20, 0.25)
    assert sorted(float(n) for n in held) == split_labels
    names = [str(n) for n in range(20)]
    picked = list(_records([Path(rec)], held, 99, names))
    assert sorted(truth for *_, truth in picked) == sorted(str(n) for n in held)
    assert [truth for *_, truth in _records([Path(rec)], None, 3, None)] == ["0", "1", "2"]
    with pytest.raises(ClientError, match="leaves no record"):
        held_out(3, 0.1)


def test_a_rec_file_channel_brings_its_class_names(tmp_path: Path) -> None:
    rec = rec_root(tmp_path / "d")
    place_channel(str(rec), tmp_path / "train")
    assert sorted(os.listdir(tmp_path / "train")) == ["data.idx", "data.rec", "labels.json"]


def test_the_version_of_a_file_dataset_covers_what_it_names(tmp_path: Path) -> None:
    rec = rec_root(tmp_path / "d")
    first = dataset_version(rec)
    assert first == dataset_version(rec) != dataset_version(rec.parent)
    (rec.parent / "notes.txt").write_text("not part of the dataset")
    assert dataset_version(rec) == first
    (rec.parent / "labels.json").write_text(json.dumps(["cats", "dogs"]))
    assert dataset_version(rec) != first
    rows = images(tmp_path / "l")
    lst = tmp_path / "l" / "data.lst"
    write_file(str(lst), "".join(format_lst_line(i, [c], p) for i, (p, c) in enumerate(rows)))
    listed = dataset_version(lst)
    write_file(str(tmp_path / "l" / rows[0][0]), jpeg(32, 32, (1, 2, 3)))  # an image the list names
    assert dataset_version(lst) != listed
