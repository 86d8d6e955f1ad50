"""``imgclf pack`` on the shapes of datasets that ``validate`` takes: a dataset root (one label
map for every channel), labels.json never replaced silently, no empty channel, no hidden files
from a bare output prefix, file names the .lst format cannot carry, --max-pixels, a UTF-8
byte order mark, and .lst indexes that a RecordIO id cannot hold."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from image_dataset.pack import PackJob, PackOptions, _encode_job
from image_dataset.recordio import IndexedRecordIO, unpack
from tests.builders import folder_dataset, jpeg, png, write_file
from tests.conftest import codes, find


def records(prefix: str) -> dict:
    """key -> (flag, label) of a packed .rec."""
    with IndexedRecordIO(prefix + ".rec", prefix + ".idx") as reader:
        return {k: unpack(reader.read_idx(k))[0][:2] for k in reader.keys}


def no_output(folder, name: str = "out") -> bool:
    return not [f for f in os.listdir(folder) if f.startswith((name, "."))]


# -- a dataset root: one label map -------------------------------------------------------------


def test_a_dataset_root_packs_every_channel_with_one_label_map(tmp_path, cli, validate_json) -> None:
    """Class b has no validation sample: c keeps id 2 in validation, as in train."""
    root = str(tmp_path / "d")
    folder_dataset(root, {"a": 2, "b": 2, "c": 2}, channels=("train",))
    folder_dataset(root, {"a": 1, "c": 1}, channels=("validation",))
    out = tmp_path / "packed"
    code, stdout, err = cli("pack", root, str(out), "--no-shuffle", "--workers", "1")
    assert code == 0, err
    assert sorted(v[1] for v in records(str(out / "train" / "train")).values()) == [0, 0, 1, 1, 2, 2]
    assert sorted(v[1] for v in records(str(out / "validation" / "validation")).values()) == [0, 2]
    for channel in ("train", "validation"):
        assert json.loads((out / channel / "labels.json").read_text()) == ["a", "b", "c"]
    code, report = validate_json(str(out))
    assert code == 0 and report["label_names"] == ["a", "b", "c"]
    assert report["channels"]["validation"]["class_counts"] == {"0": 1, "2": 1}


def test_a_dataset_root_packs_lists_relative_to_each_channel(tmp_path, cli, validate_json) -> None:
    """The .lst of a root's channel reads as a list of that channel (train_lst/train.lst)."""
    root = tmp_path / "d"
    folder_dataset(str(root), {"a": 2, "b": 1}, channels=("train", "validation"))
    out = tmp_path / "packed"
    code, _, err = cli("pack", str(root), str(out), "--no-shuffle", "--workers", "1")
    assert code == 0, err
    for channel in ("train", "validation"):
        paths = [line.split("\t")[-1] for line in (out / channel / f"{channel}.lst").read_text().splitlines()]
        assert paths and all((root / channel / p).is_file() for p in paths), paths
    (root / "train_lst").mkdir()
    (root / "train_lst" / "train.lst").write_text((out / "train" / "train.lst").read_text())
    code, report = validate_json(str(root))
    assert code == 0 and report["channels"]["train"]["format"] == "lst", report["errors"]


def test_a_single_lst_in_train_lst_reads_its_paths_in_train(tmp_path, cli, validate_json) -> None:
    """As in the dataset root: a list in train_lst/ names images relative to train/ beside it;
    in any other folder, relative to its own folder."""
    root = tmp_path / "d"
    folder_dataset(str(root), {"a": 2, "b": 1}, channels=("train",))
    lines = "".join(f"{i}\t{i % 2}\t{p}\n" for i, p in enumerate(("a/000.jpg", "a/001.jpg", "b/000.jpg")))
    (root / "train_lst").mkdir()
    (root / "train_lst" / "train.lst").write_text(lines)
    code, report = validate_json(str(root / "train_lst" / "train.lst"))
    assert code == 0 and report["channels"]["train"]["samples"] == 3, report["errors"]
    code, _, err = cli("pack", str(root / "train_lst" / "train.lst"), str(tmp_path / "out"), "--workers", "1")
    assert code == 0 and records(str(tmp_path / "out")).keys() == {0, 1, 2}, err
    (root / "lists").mkdir()
    (root / "lists" / "train.lst").write_text(lines)
    code, report = validate_json(str(root / "lists" / "train.lst"))
    assert code == 1 and report["errors"][0]["message"] == "image a/000.jpg does not exist"  # in lists/


def test_a_dataset_root_refuses_train_ratio_and_a_file_as_output(tmp_path, cli) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"a": 2, "b": 2})
    code, _, err = cli("pack", root, str(tmp_path / "out"), "--train-ratio", "0.5")
    assert code == 2 and "--train-ratio" in err and no_output(tmp_path)
    write_file(str(tmp_path / "out"), "a file")
    code, _, err = cli("pack", root, str(tmp_path / "out"))
    assert code == 2 and "is a file" in err


# -- labels.json -------------------------------------------------------------------------------


def test_labels_json_is_never_replaced_by_other_names(tmp_path, cli) -> None:
    """Packing two channel folders with different classes into one folder: the second would
    rename the first one's ids. Refused before any record is written; the same names are fine."""
    root = str(tmp_path / "d")
    folder_dataset(root, {"a": 2, "b": 2, "c": 2}, channels=("train",))
    folder_dataset(root, {"a": 1, "c": 1}, channels=("validation",))
    out = tmp_path / "out"
    out.mkdir()
    assert cli("pack", os.path.join(root, "train"), str(out / "train"), "--workers", "1")[0] == 0
    assert cli("pack", os.path.join(root, "train"), str(out / "again"), "--workers", "1")[0] == 0  # same names
    before = (out / "labels.json").read_bytes()
    code, _, err = cli("pack", os.path.join(root, "validation"), str(out / "val"), "--workers", "1")
    assert code == 1 and "LABEL_NAMES_INVALID" in err and "labels.json" in err and "not replaced" in err
    assert "Traceback" not in err and (out / "labels.json").read_bytes() == before
    assert not [f for f in os.listdir(out) if f.startswith("val")]


def test_a_dataset_root_refuses_a_conflicting_labels_json_before_writing(tmp_path, cli) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"a": 2, "b": 2})
    write_file(str(tmp_path / "out" / "validation" / "labels.json"), '["b", "a"]')
    code, _, err = cli("pack", root, str(tmp_path / "out"), "--workers", "1")
    assert code == 1 and "LABEL_NAMES_INVALID" in err
    assert not os.path.exists(tmp_path / "out" / "train" / "train.rec")


# -- empty channels ----------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ["0.01", "0.1", "0.99999"])
def test_a_train_ratio_that_empties_a_part_is_a_usage_error(tmp_path, cli, ratio) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"a": 3, "b": 2}, channels=("train",))
    code, _, err = cli("pack", os.path.join(root, "train"), str(tmp_path / "out"), "--train-ratio", ratio)
    if ratio == "0.99999":  # 4 train, 1 validation: both hold a sample
        assert code == 0, err
        assert len(records(str(tmp_path / "out_val"))) == 1
        return
    assert code == 2 and "--train-ratio" in err and "empty" in err and "Traceback" not in err
    assert no_output(tmp_path)


def test_one_sample_cannot_be_split(tmp_path, cli) -> None:
    write_file(str(tmp_path / "d" / "a" / "0.jpg"), jpeg())
    code, _, err = cli("pack", str(tmp_path / "d"), str(tmp_path / "out"), "--train-ratio", "0.5")
    assert code == 2 and "cannot be split" in err and no_output(tmp_path)


# -- output prefixes ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["{tmp}/", ".", "./", "{tmp}/sub", "{tmp}/.hidden", "{tmp}/sub/."])
def test_a_bare_output_prefix_writes_no_hidden_files(tmp_path, cli, monkeypatch, prefix) -> None:
    src = folder_dataset(str(tmp_path / "src"), {"a": 2}, channels=("train",))
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("pack", os.path.join(src, "train"), prefix.format(tmp=tmp_path))
    assert code == 2 and "OUT_PREFIX" in err
    for folder in (tmp_path, tmp_path / "sub"):
        assert not [f for f in os.listdir(folder) if f.startswith(".")]


# -- file names the .lst format cannot carry ------------------------------------------------


@pytest.mark.parametrize("name", ["a\tb.jpg", "a\nb.jpg", "a\rb.jpg", " lead.jpg"])
def test_file_names_with_tabs_or_line_breaks_are_refused(tmp_path, cli, validate_json, name) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"cat": 2}, channels=("train",))
    write_file(os.path.join(root, "train", "cat", name), jpeg())
    code, report = validate_json(os.path.join(root, "train"))
    issue = find(report, "PATH_UNSAFE")
    assert code == 1 and "cat/" in issue["location"] and (".lst" in issue["message"])
    code, _, err = cli("pack", os.path.join(root, "train"), str(tmp_path / "out"))
    assert code == 1 and "PATH_UNSAFE" in err and no_output(tmp_path)


def test_the_text_report_keeps_each_problem_on_its_line(tmp_path, cli) -> None:
    """A name with a line feed or tab (a file's, a class folder's) is shown escaped, so that
    every error, warning and the class list stay one line each."""
    root = folder_dataset(str(tmp_path / "d"), {"cat": 2, "c\nd": 1}, channels=("train",))
    write_file(os.path.join(root, "train", "cat", "a\tb.jpg"), jpeg())
    code, out, _ = cli("validate", root, "--workers", "1")
    lines = out.splitlines()
    assert code == 1 and "  classes: 2 (c\\nd, cat)" in lines, out
    assert any(line.startswith("  error PATH_UNSAFE train/cat/a\\tb.jpg: the file name holds a tab") for line in lines)
    assert any(line.startswith("  error PATH_UNSAFE train/c\\nd/") for line in lines), out
    assert all(line.startswith(("  ", root)) for line in lines), out


def test_a_class_folder_with_a_leading_space_is_refused(tmp_path, validate_json) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"cat": 2, " dog": 2}, channels=("train",))
    code, report = validate_json(root)
    assert code == 1 and "PATH_UNSAFE" in codes(report)


@pytest.mark.parametrize("ref", ["a\tb.jpg", "a\nb.jpg", "sub/ x.jpg"])
def test_manifest_references_with_tabs_or_line_breaks_are_refused_at_their_line(tmp_path, cli, ref) -> None:
    write_file(str(tmp_path / "ok.jpg"), jpeg())
    write_file(str(tmp_path / ref), jpeg())
    lines = [{"source-ref": "ok.jpg", "class": 0}, {"source-ref": ref, "class": 1}]
    write_file(str(tmp_path / "m.manifest"), "".join(json.dumps(r) + "\n" for r in lines))
    code, _, err = cli("pack", str(tmp_path / "m.manifest"), str(tmp_path / "out"))
    assert code == 1 and "PATH_UNSAFE" in err and "m.manifest:line 2" in err and ".lst" in err
    assert not os.path.exists(tmp_path / "out.rec")


# -- --max-pixels ------------------------------------------------------------------------------


def test_pack_honours_max_pixels(tmp_path, cli) -> None:
    root = str(tmp_path / "d")
    write_file(os.path.join(root, "a", "0.png"), png(64, 64))
    write_file(os.path.join(root, "b", "0.png"), png(16, 16))
    code, _, err = cli("pack", root, str(tmp_path / "small"), "--max-pixels", "1000", "--workers", "1")
    assert code == 1 and "IMG_TOO_LARGE" in err and no_output(tmp_path, "small")
    code, _, err = cli("pack", root, str(tmp_path / "big"), "--max-pixels", "4096", "--workers", "1")
    assert code == 0, err
    assert len(records(str(tmp_path / "big"))) == 2


def test_the_encoder_decodes_up_to_the_max_pixels_it_is_given(tmp_path, monkeypatch) -> None:
    """A cap above Pillow's own reaches pack's decoder: Pillow alone refuses 4096 pixels here."""
    path = write_file(str(tmp_path / "a.png"), png(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    job = PackJob(7, path, (1.0,))
    key, record, code, message = _encode_job((job, PackOptions(max_pixels=10_000)))
    assert (key, code, message) == (7, "", "") and record is not None and unpack(record)[0].label == 1.0
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    assert _encode_job((job, PackOptions(max_pixels=2_000)))[1:3] == (None, "IMG_TOO_LARGE")


# -- byte order marks --------------------------------------------------------------------------


def test_a_utf8_bom_at_the_start_of_a_manifest_or_lst_is_accepted(tmp_path, cli, validate_json) -> None:
    write_file(str(tmp_path / "a.jpg"), jpeg())
    write_file(str(tmp_path / "b.jpg"), jpeg())
    manifest = "\ufeff" + "".join(json.dumps({"source-ref": f"{n}.jpg", "class": i}) + "\n" for i, n in enumerate("ab"))
    write_file(str(tmp_path / "m.manifest"), manifest)
    write_file(str(tmp_path / "l.lst"), "\ufeff5\t1\ta.jpg\n6\t0\tb.jpg\n")
    for source in ("m.manifest", "l.lst"):
        code, report = validate_json(str(tmp_path / source))
        assert code == 0 and report["channels"]["train"]["samples"] == 2, report["errors"]
        code, _, err = cli("pack", str(tmp_path / source), str(tmp_path / ("p" + source[0])), "--no-shuffle")
        assert code == 0, err
    assert records(str(tmp_path / "pm")) == {0: (0, 0.0), 1: (0, 1.0)}
    assert records(str(tmp_path / "pl")) == {5: (0, 1.0), 6: (0, 0.0)}


# -- .lst indexes a RecordIO id must hold ---------------------------------------------------


@pytest.mark.parametrize("index", [2**70, 2**64, 2**63, -1])
def test_a_lst_index_beyond_a_recordio_id_is_refused_by_validate_and_pack(tmp_path, cli, validate_json, index) -> None:
    write_file(str(tmp_path / "a.jpg"), jpeg())
    write_file(str(tmp_path / "t.lst"), f"0\t0\ta.jpg\n{index}\t1\ta.jpg\n")
    code, report = validate_json(str(tmp_path / "t.lst"))
    assert code == 1 and find(report, "LST_BAD_INDEX")["location"] == "t.lst:line 2"
    code, _, err = cli("pack", str(tmp_path / "t.lst"), str(tmp_path / "out"))
    assert code == 1 and "LST_BAD_INDEX" in err and "Traceback" not in err and no_output(tmp_path)


def test_the_largest_lst_index_packs_and_reads_back(tmp_path, cli) -> None:
    write_file(str(tmp_path / "a.jpg"), jpeg())
    write_file(str(tmp_path / "t.lst"), f"{2**63 - 1}\t3\ta.jpg\n")
    code, _, err = cli("pack", str(tmp_path / "t.lst"), str(tmp_path / "out"))
    assert code == 0, err
    with IndexedRecordIO(str(tmp_path / "out.rec"), str(tmp_path / "out.idx")) as reader:
        header = unpack(reader.read_idx(2**63 - 1))[0]
    assert (header.id, header.label) == (2**63 - 1, 3.0)


# -- label shapes across channels -----------------------------------------------------------


def _manifest_channel(root, channel: str, labels: list) -> None:
    lines = []
    for i, label in enumerate(labels):
        write_file(os.path.join(root, channel, f"{i}.jpg"), jpeg())
        lines.append(json.dumps({"source-ref": f"{i}.jpg", "class": label}) + "\n")
    write_file(os.path.join(root, channel, "data.manifest"), "".join(lines))


@pytest.mark.parametrize(
    "train, validation, message",
    [
        ([0, 1], [[0, 1, 0], [1, 0, 0]], "multi-label"),
        ([[0, 1, 0], [1, 0, 1]], [[0, 1], [1, 1]], "label vectors have"),
    ],
)
def test_channels_with_different_label_shapes_are_refused(tmp_path, cli, validate_json, train, validation, message):
    root = str(tmp_path / "d")
    _manifest_channel(root, "train", train)
    _manifest_channel(root, "validation", validation)
    code, report = validate_json(root)
    assert code == 1 and message in find(report, "LABEL_SHAPE")["message"]
    assert cli("pack", root, str(tmp_path / "out"))[0] == 1 and not os.path.exists(tmp_path / "out")


def test_multi_label_lists_without_any_class_id_need_num_classes(tmp_path, cli) -> None:
    """Empty class-id lists with no --num-classes would pack vectors of no value (flag 0: class 0)."""
    _manifest_channel(str(tmp_path), "c", [[], []])
    code, _, err = cli("pack", str(tmp_path / "c" / "data.manifest"), str(tmp_path / "out"))
    assert code == 1 and "LABEL_SHAPE" in err and "--num-classes" in err
    code, _, err = cli("pack", str(tmp_path / "c" / "data.manifest"), str(tmp_path / "out"), "--num-classes", "3")
    assert code == 0, err
    assert records(str(tmp_path / "out"))[0] == (3, (0.0, 0.0, 0.0))


def test_a_manifest_of_s3_references_is_not_packed(tmp_path, cli) -> None:
    write_file(str(tmp_path / "m.manifest"), json.dumps({"source-ref": "s3://bucket/a.jpg", "class": 0}) + "\n")
    code, _, err = cli("pack", str(tmp_path / "m.manifest"), str(tmp_path / "out"), "--no-decode")
    assert code == 2  # pack always decodes: --no-decode is validate's
    code, _, err = cli("pack", str(tmp_path / "m.manifest"), str(tmp_path / "out"))
    assert code == 1 and "m.manifest:line 1" in err and "s3://" in err and "Traceback" not in err
    assert no_output(tmp_path)


def test_a_resize_beyond_the_pixel_cap_is_refused_before_any_memory_is_taken() -> None:
    """--resize 100000 tried to allocate terabytes (MemoryError); the result's size is checked
    against --max-pixels first, as an image's own size is."""
    from image_dataset.pack import encode_image
    from image_dataset.pixels import PixelError

    with pytest.raises(PixelError) as caught:
        encode_image(png(20, 10), PackOptions(resize=100_000))
    assert caught.value.code == "IMG_TOO_LARGE"
    assert str(caught.value) == "resized to 200000x100000 = 20000000000 pixels, over the cap of 89478485"
    assert len(encode_image(png(20, 10), PackOptions(resize=30, max_pixels=60 * 30))) > 0


@pytest.mark.parametrize("orientation, fits", [(1, False), (6, True), (8, True), (3, False)])
def test_the_image_shape_check_sees_an_exif_turned_jpeg_upright(tmp_path, orientation: int, fits: bool) -> None:
    """A 40x20 JPEG whose EXIF turns it a quarter is 20x40 to OpenCV, and so to training:
    IMG_TOO_SMALL compared the stored size with --image-shape."""
    import io

    from image_dataset.context import ValidationOptions
    from image_dataset.validate import validate_path

    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (120, 30, 30)).save(out, "JPEG", exif=exif.tobytes())
    for channel in ("train", "validation"):
        write_file(str(tmp_path / channel / "cat" / "a.jpg"), out.getvalue())
    report = validate_path(str(tmp_path), ValidationOptions(workers=1, image_shape=(3, 30, 15)))
    too_small = [e["location"] for e in report["errors"] if e["code"] == "IMG_TOO_SMALL"]  # type: ignore[index]
    assert too_small == ([] if fits else ["train/cat/a.jpg", "validation/cat/a.jpg"])
