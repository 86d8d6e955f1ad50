"""The imgclf CLI: exit codes, reports for every valid format, the JSON Schema, and pack."""

from __future__ import annotations

import json
import os
from importlib import resources

import jsonschema
import pytest

from image_dataset.issues import CODES
from image_dataset.recordio import IndexedRecordIO, unpack
from tests.builders import folder_dataset, jpeg, lst_dataset, manifest_lines, noisy_jpeg, png, write_file, write_rec
from tests.conftest import codes

SCHEMA = json.loads(resources.files("image_dataset").joinpath("report.schema.json").read_text())


def test_usage_errors_exit_2(tmp_path, cli) -> None:
    assert cli("validate", str(tmp_path / "nope"))[0] == 2
    assert cli("validate", str(tmp_path), "--image-shape", "3,x,2")[0] == 2
    assert cli("validate", str(tmp_path), "--num-classes", "0")[0] == 2
    code, _, err = cli("validate", str(tmp_path), "--image-shape", "3,224,224", "--resize", "100")
    assert code == 2 and "--resize 100 is smaller" in err
    assert cli("frobnicate")[0] == 2
    assert cli("pack", str(tmp_path / "nope"), str(tmp_path / "out"))[0] == 2


def test_folder_dataset_report_matches_schema(tmp_path, validate_json) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"cat": 4, "dog": 3})
    code, report = validate_json(root, "--num-classes", "2", "--image-shape", "3,32,32", "--mini-batch-size", "2")
    jsonschema.validate(report, SCHEMA)
    assert code == 0 and report["valid"]
    assert report["label_names"] == ["cat", "dog"] and report["num_classes"] == 2
    train = report["channels"]["train"]
    assert train["samples"] == 7 and train["class_counts"] == {"0": 4, "1": 3}
    assert train["image_size"] == {"min_width": 32, "min_height": 32, "max_width": 32, "max_height": 32}
    assert report["channels"]["validation"]["samples"] == 3


def test_label_map_is_the_union_of_class_folders_over_channels(tmp_path, validate_json) -> None:
    root = str(tmp_path / "d")
    folder_dataset(root, {"b": 1, "c": 1}, channels=("train",))
    folder_dataset(root, {"a": 1, "c": 1}, channels=("validation",))
    write_file(os.path.join(root, "train", "a", "0.jpg"), jpeg())
    code, report = validate_json(root)
    assert code == 0 and report["label_names"] == ["a", "b", "c"]
    assert report["channels"]["validation"]["class_counts"] == {"0": 1, "2": 1}


def test_multi_label_lst_is_valid(tmp_path, validate_json) -> None:
    root = lst_dataset(str(tmp_path / "d"), [(0, [1, 0, 1], "a.jpg"), (1, [0, 1, 0], "b.jpg")])
    code, report = validate_json(root, "--multi-label", "--num-classes", "3")
    assert code == 0 and report["multi_label"] is True
    assert report["channels"]["train"]["class_counts"] == {"0": 1, "1": 1, "2": 1}
    jsonschema.validate(report, SCHEMA)


def test_recordio_with_vector_labels_is_valid(tmp_path, validate_json) -> None:
    path = write_rec(str(tmp_path / "d.rec"), [([1, 0, 1], jpeg()), ([0, 1, 1], png())])
    code, report = validate_json(path, "--multi-label")
    assert code == 0 and report["num_classes"] == 3


def test_manifest_and_annotations_channels(tmp_path, validate_json) -> None:
    root = str(tmp_path / "d")
    for name in ("a.jpg", "b.jpg"):
        write_file(os.path.join(root, "train", "img", name), jpeg())
        write_file(os.path.join(root, "validation", name), jpeg())
    write_file(
        os.path.join(root, "train", "train.manifest"),
        manifest_lines(
            [
                {"source-ref": "img/a.jpg", "animal": 0, "animal-metadata": {"class-name": "cat"}},
                {"source-ref": "img/b.jpg", "animal": 1, "animal-metadata": {"class-name": "dog"}},
            ]
        ),
    )
    doc = {"labels": ["cat", "dog"], "images": [{"path": "a.jpg", "label": "cat"}, {"path": "b.jpg", "label": 1}]}
    write_file(os.path.join(root, "validation", "annotations.json"), json.dumps(doc))
    code, report = validate_json(root)
    assert code == 0, report["errors"]
    assert report["label_names"] == ["cat", "dog"]
    assert report["channels"]["train"]["format"] == "manifest"
    assert report["channels"]["validation"]["format"] == "annotations"


def test_extra_images_and_s3_references_are_warnings(tmp_path, validate_json) -> None:
    root = lst_dataset(str(tmp_path / "d"), [(0, [0], "a.jpg")])
    write_file(os.path.join(root, "train", "unlisted.jpg"), jpeg())
    code, report = validate_json(root)
    assert code == 0 and codes(report, "warnings") == ["VALIDATION_CHANNEL_MISSING", "FILE_EXTRA"]
    write_file(os.path.join(root, "validation", "m.manifest"), manifest_lines([{"source-ref": "s3://b/k.jpg", "c": 0}]))
    code, report = validate_json(root)
    assert code == 0 and "PATH_NOT_CHECKED" in codes(report, "warnings")


def test_no_decode_skips_image_decoding(tmp_path, validate_json) -> None:
    whole = jpeg(64, 64)
    path = write_rec(str(tmp_path / "d.rec"), [(0, whole[: len(whole) // 2])])
    assert validate_json(path)[0] == 1
    code, report = validate_json(path, "--no-decode")
    assert code == 0 and report["channels"]["train"]["images_checked"] == 0


def test_validate_with_worker_processes(tmp_path, cli) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"a": 40, "b": 40})
    whole = noisy_jpeg(64, 64, seed=2)
    write_file(os.path.join(root, "train", "b", "bad.jpg"), whole[: len(whole) // 2])
    code, out, _ = cli("validate", root, "--json", "--workers", "2")
    report = json.loads(out)
    assert code == 1 and codes(report) == ["IMG_TRUNCATED"]
    assert report["channels"]["train"]["images_checked"] == 80


def test_human_report_lists_problems(tmp_path, cli) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"a": 2})
    code, out, _ = cli("validate", root, "--mini-batch-size", "8")
    assert code == 1
    assert "INVALID" in out and "TOO_FEW_SAMPLES" in out and "train" in out


def test_every_code_is_documented() -> None:
    docs = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dataset-formats.md")).read()
    missing = [code for code in CODES if f"`{code}`" not in docs]
    assert not missing


def test_pack_folders_roundtrip(tmp_path, cli, validate_json) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"cat": 5, "dog": 4}, channels=("train",), size=40)
    out = str(tmp_path / "packed")
    code, stdout, err = cli("pack", os.path.join(root, "train"), out, "--resize", "32", "--workers", "2")
    assert code == 0, err
    lst = [line.split("\t") for line in open(out + ".lst").read().splitlines()]
    assert len(lst) == 9 and {row[-1].split("/")[0] for row in lst} == {"cat", "dog"}
    with IndexedRecordIO(out + ".rec", out + ".idx") as rec:
        assert sorted(rec.keys) == list(range(9))
        for row in lst:
            header, image = unpack(rec.read_idx(int(row[0])))
            assert header.label == float(row[1]) and header.id == int(row[0])
            assert image[:3] == b"\xff\xd8\xff"
    code, report = validate_json(out + ".rec", "--image-shape", "3,32,32")
    assert code == 0 and report["channels"]["train"]["image_size"]["min_height"] == 32
    # RecordIO carries class ids only: the names travel in labels.json beside the .rec
    assert json.loads((tmp_path / "labels.json").read_text()) == ["cat", "dog"] and "labels.json" in stdout
    assert report["label_names"] == ["cat", "dog"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('["cat", "cat"]', "names appear twice: cat"),
        ('["cat"]', "names 1 classes, but class ids 1 appear"),
        ("{not json", "not a JSON list of class names"),
        ('["cat", ""]', "non-empty JSON list of non-empty strings"),
    ],
)
def test_recordio_label_names_file_is_checked(tmp_path, validate_json, content, message) -> None:
    for channel in ("train", "validation"):
        write_rec(str(tmp_path / channel / "data.rec"), [(0.0, jpeg()), (1.0, jpeg())])
    (tmp_path / "train" / "labels.json").write_text(content)
    code, report = validate_json(str(tmp_path))
    issue = next(e for e in report["errors"] if e["code"] == "LABEL_NAMES_INVALID")
    assert code == 1 and issue["location"] == "train/labels.json" and message in issue["message"]


def test_recordio_channels_with_different_label_names(tmp_path, validate_json) -> None:
    for channel, names in (("train", '["cat", "dog"]'), ("validation", '["dog", "cat"]')):
        write_rec(str(tmp_path / channel / "data.rec"), [(0.0, jpeg()), (1.0, jpeg())])
        (tmp_path / channel / "labels.json").write_text(names)
    code, report = validate_json(str(tmp_path))
    assert code == 1 and codes(report) == ["LABEL_NAMES_INVALID"]
    (tmp_path / "validation" / "labels.json").write_text('["cat", "dog"]')
    code, report = validate_json(str(tmp_path))
    assert code == 0 and report["label_names"] == ["cat", "dog"]


def test_pack_train_ratio_and_lst_source(tmp_path, cli) -> None:
    root = lst_dataset(str(tmp_path / "d"), [(i, [i % 2], f"img{i}.png") for i in range(10)], image_bytes=png())
    out = str(tmp_path / "p")
    code, _, err = cli(
        "pack", os.path.join(root, "train", "train.lst"), out, "--train-ratio", "0.8", "--no-shuffle", "--pass-through"
    )
    assert code == 0, err
    with IndexedRecordIO(out + "_train.rec", out + "_train.idx") as rec:
        assert rec.keys == list(range(8))
        assert unpack(rec.read_idx(3))[1] == png()
    with IndexedRecordIO(out + "_val.rec", out + "_val.idx") as rec:
        assert rec.keys == [8, 9]


def test_pack_multi_label_writes_vector_labels(tmp_path, cli) -> None:
    root = str(tmp_path / "d")
    write_file(os.path.join(root, "a.jpg"), jpeg())
    write_file(os.path.join(root, "b.jpg"), jpeg())
    doc = {
        "labels": ["x", "y", "z"],
        "images": [{"path": "a.jpg", "label": ["x", "z"]}, {"path": "b.jpg", "label": [1]}],
    }
    write_file(os.path.join(root, "annotations.json"), json.dumps(doc))
    code, _, err = cli("pack", os.path.join(root, "annotations.json"), str(tmp_path / "m"), "--no-shuffle")
    assert code == 0, err
    with IndexedRecordIO(str(tmp_path / "m.rec"), str(tmp_path / "m.idx")) as rec:
        assert unpack(rec.read_idx(0))[0].label == (1.0, 0.0, 1.0)
        assert unpack(rec.read_idx(1))[0].label == (0.0, 1.0, 0.0)


def test_pack_refuses_invalid_source_and_writes_nothing(tmp_path, cli) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"a": 3}, channels=("train",))
    write_file(os.path.join(root, "train", "a", "bad.jpg"), b"\xff\xd8\xff" + b"\0" * 20)
    out = str(tmp_path / "p")
    code, _, err = cli("pack", os.path.join(root, "train"), out)
    assert code == 1 and "IMG_" in err and "nothing was packed" in err
    assert not [f for f in os.listdir(tmp_path) if f.startswith("p")]


def test_pack_refuses_recordio_source(tmp_path, cli) -> None:
    path = write_rec(str(tmp_path / "d.rec"), [(0, jpeg())])
    assert cli("pack", path, str(tmp_path / "p"))[0] == 2


@pytest.mark.parametrize("bad", ["0", "1.5", "x"])
def test_pack_train_ratio_must_be_a_fraction(tmp_path, cli, bad) -> None:
    assert cli("pack", str(tmp_path), str(tmp_path / "p"), "--train-ratio", bad)[0] == 2
