"""The corpus of broken inputs: each must give exit 1 with the right code and location,
and never a traceback. Every dataset here is built by the test."""

from __future__ import annotations

import json
import os
import struct
from typing import Callable, List, Tuple

import pytest

from image_dataset.recordio import RecordIOReader, frame, pack
from tests.builders import (
    folder_dataset,
    jpeg,
    lst_dataset,
    manifest_lines,
    noisy_jpeg,
    png,
    png_bomb,
    write_file,
    write_rec,
)
from tests.conftest import codes, find

Case = Tuple[str, List[str], str, str]  # path, extra args, code, location


def rec_offsets(path: str) -> List[int]:
    with open(path, "rb") as f:
        return [off for off, _ in RecordIOReader(f)]


def truncated_record(root: str) -> Case:
    path = write_rec(os.path.join(root, "train", "d.rec"), [(i, jpeg()) for i in range(3)], with_idx=False)
    last = rec_offsets(path)[2]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 7)
    return root, [], "REC_TRUNCATED", f"train/d.rec#record 2 @byte {last}"


def bad_magic(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(i, jpeg()) for i in range(4)], with_idx=False)
    second = rec_offsets(path)[1]
    with open(path, "r+b") as f:
        f.seek(second)
        f.write(b"\xde\xad\xbe\xef")
    return path, [], "REC_BAD_MAGIC", f"d.rec#record 1 @byte {second}"


def bad_padding(root: str) -> Case:
    first = frame(pack(0, jpeg() + b"x"))
    length = struct.unpack("<I", first[4:8])[0]
    write_file(os.path.join(root, "d.rec"), first[: 8 + length] + frame(pack(1, jpeg())))
    return os.path.join(root, "d.rec"), [], "REC_BAD_PADDING", "d.rec#record 0 @byte 0"


def wrong_label_count(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [([1, 0, 1], jpeg()), ([1, 0], jpeg())])
    second = rec_offsets(path)[1]
    return path, ["--num-classes", "3", "--multi-label"], "LABEL_SHAPE", f"d.rec#record 1 @byte {second}"


def label_out_of_range(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(0, jpeg()), (12, jpeg())])
    return path, ["--num-classes", "10"], "LABEL_OUT_OF_RANGE", f"d.rec#record 1 @byte {rec_offsets(path)[1]}"


def fractional_label(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(0.5, jpeg())])
    return path, [], "LABEL_INVALID", "d.rec#record 0 @byte 0"


def huge_class_id(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(1e9, jpeg())])
    return path, [], "TOO_MANY_CLASSES", "d.rec"


def corrupt_jpeg_in_rec(root: str) -> Case:
    whole = noisy_jpeg(64, 64, seed=1)
    bad = whole[: len(whole) // 2]
    path = write_rec(os.path.join(root, "d.rec"), [(0, jpeg()), (1, bad)])
    return path, [], "IMG_TRUNCATED", f"d.rec#record 1 @byte {rec_offsets(path)[1]}"


def garbage_image_in_rec(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(0, b"not an image at all")])
    return path, [], "IMG_UNKNOWN_FORMAT", "d.rec#record 0 @byte 0"


def zero_byte_image_in_rec(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(0, jpeg()), (0, b"")])
    return path, [], "IMG_EMPTY", f"d.rec#record 1 @byte {rec_offsets(path)[1]}"


def idx_disagrees(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(i, jpeg()) for i in range(3)])
    with open(os.path.join(root, "d.idx"), "a") as f:
        f.write("3\t12345\n")
    return path, [], "IDX_BAD_OFFSET", "d.idx:line 4"


def idx_duplicate_key(root: str) -> Case:
    path = write_rec(os.path.join(root, "d.rec"), [(i, jpeg()) for i in range(2)])
    with open(os.path.join(root, "d.idx"), "a") as f:
        f.write("1\t0\n")
    return path, [], "IDX_DUPLICATE_KEY", "d.idx:line 3"


def idx_empty_and_record_missing(root: str) -> Case:
    write_rec(os.path.join(root, "d.rec"), [(0, jpeg())])
    write_file(os.path.join(root, "d.idx"), "")
    write_file(os.path.join(root, "e.rec"), b"\0" * 7)
    return root, [], "REC_TRUNCATED", "e.rec#record 0 @byte 0"


def duplicate_record_ids(root: str) -> Case:
    path = write_rec(
        os.path.join(root, "d.rec"), [(0, jpeg()), (1, jpeg()), (1, jpeg())], with_idx=False, ids=[4, 5, 4]
    )
    return path, [], "DUPLICATE_ID", "d.rec#record 2"


def empty_rec(root: str) -> Case:
    write_file(os.path.join(root, "d.rec"), b"")
    return os.path.join(root, "d.rec"), [], "REC_EMPTY_FILE", "d.rec"


def lst_duplicate_index(root: str) -> Case:
    lst_dataset(root, [(0, [0], "a.jpg"), (1, [1], "b.jpg"), (0, [1], "c.jpg")])
    return root, [], "DUPLICATE_ID", "train/train.lst:line 3"


def lst_missing_file(root: str) -> Case:
    lst_dataset(root, [(0, [0], "a.jpg")])
    with open(os.path.join(root, "train", "train.lst"), "a") as f:
        f.write("1\t1.000000\tgone.jpg\n")
    return root, [], "FILE_MISSING", "train/train.lst:line 2"


def lst_path_traversal(root: str) -> Case:
    lst_dataset(root, [(0, [0], "a.jpg"), (1, [0], "../../secret.jpg")])
    return root, [], "PATH_UNSAFE", "train/train.lst:line 2"


def lst_non_utf8_path(root: str) -> Case:
    lst_dataset(root, [(0, [0], "a.jpg")])
    with open(os.path.join(root, "train", "train.lst"), "ab") as f:
        f.write(b"1\t0\t\xff\xfeimage.jpg\n")
    return root, [], "TEXT_ENCODING", "train/train.lst:line 2"


def lst_in_separate_channel_out_of_range(root: str) -> Case:
    lst_dataset(root, [(0, [0], "a/x.jpg"), (1, [7], "b/y.jpg")], separate_channel=True)
    return root, ["--num-classes", "2"], "LABEL_OUT_OF_RANGE", "train_lst/train.lst:line 2"


def lst_wrong_multi_hot(root: str) -> Case:
    lst_dataset(root, [(0, [1, 0, 1], "a.jpg"), (1, [1, 2, 0], "b.jpg")])
    return root, ["--multi-label"], "LABEL_NOT_MULTI_HOT", "train/train.lst:line 2"


def non_utf8_file_name(root: str) -> Case:
    folder_dataset(root, {"a": 2}, channels=("train",))
    write_file(os.fsdecode(os.path.join(os.fsencode(root), b"train", b"a", b"\xff\xfe.jpg")), jpeg())
    return root, [], "TEXT_ENCODING", "train/a/\\xff\\xfe.jpg"


def truncated_png_file(root: str) -> Case:
    folder_dataset(root, {"a": 2, "b": 2}, channels=("train",))
    write_file(os.path.join(root, "train", "b", "broken.png"), png(64, 64)[:60])
    return root, [], "IMG_TRUNCATED", "train/b/broken.png"


def corrupt_jpeg_file(root: str) -> Case:
    folder_dataset(root, {"a": 2}, channels=("train",))
    data = bytearray(jpeg(64, 64))
    data[3:20] = b"\x13" * 17  # destroy the JPEG segment headers
    write_file(os.path.join(root, "train", "a", "bad.jpg"), bytes(data))
    return root, [], "IMG_CORRUPT", "train/a/bad.jpg"


def zero_byte_file(root: str) -> Case:
    folder_dataset(root, {"a": 2}, channels=("train",))
    write_file(os.path.join(root, "train", "a", "empty.jpg"), b"")
    return root, [], "IMG_EMPTY", "train/a/empty.jpg"


def png_decompression_bomb(root: str) -> Case:
    folder_dataset(root, {"a": 2}, channels=("train",))
    write_file(os.path.join(root, "train", "a", "bomb.png"), png_bomb())
    return root, [], "IMG_TOO_LARGE", "train/a/bomb.png"


def gif_in_folders(root: str) -> Case:
    folder_dataset(root, {"a": 2}, channels=("train",))
    write_file(os.path.join(root, "train", "a", "anim.png"), b"GIF89a" + b"\0" * 40)
    return root, [], "IMG_UNSUPPORTED_FORMAT", "train/a/anim.png"


def image_smaller_than_shape(root: str) -> Case:
    folder_dataset(root, {"a": 2}, channels=("train",), size=64)
    write_file(os.path.join(root, "train", "a", "tiny.jpg"), jpeg(16, 200))
    return root, ["--image-shape", "3,32,32"], "IMG_TOO_SMALL", "train/a/tiny.jpg"


def class_only_in_validation(root: str) -> Case:
    folder_dataset(root, {"a": 2, "b": 2})
    write_file(os.path.join(root, "validation", "c", "0.jpg"), jpeg())
    return root, [], "CLASS_NOT_IN_TRAIN", "validation"


def fewer_samples_than_batch(root: str) -> Case:
    folder_dataset(root, {"a": 3, "b": 3})
    return root, ["--mini-batch-size", "32"], "TOO_FEW_SAMPLES", "train"


def bad_json_line(root: str) -> Case:
    write_file(os.path.join(root, "train", "a.jpg"), jpeg())
    write_file(
        os.path.join(root, "train", "m.manifest"),
        manifest_lines([{"source-ref": "a.jpg", "class": 0}]) + '{"source-ref": "a.jpg", "class": \n',
    )
    return root, [], "JSON_SYNTAX", "train/m.manifest:line 2"


def manifest_other_bucket(root: str) -> Case:
    write_file(
        os.path.join(root, "train", "m.manifest"),
        manifest_lines([{"source-ref": "s3://data/a.jpg", "class": 0}, {"source-ref": "s3://evil/b.jpg", "class": 1}]),
    )
    return root, ["--allow-bucket", "data"], "PATH_OTHER_BUCKET", "train/m.manifest:line 2"


def annotations_unknown_label(root: str) -> Case:
    write_file(os.path.join(root, "train", "a.jpg"), jpeg())
    doc = {"labels": ["cat"], "images": [{"path": "a.jpg", "label": "cat"}, {"path": "a.jpg", "label": "dog"}]}
    write_file(os.path.join(root, "train", "annotations.json"), json.dumps(doc))
    return root, [], "LABEL_UNKNOWN", "train/annotations.json:line 1 images[1]"


def annotations_duplicate_path(root: str) -> Case:
    write_file(os.path.join(root, "train", "a.jpg"), jpeg())
    doc = '{"labels": ["cat"], "images": [\n{"path": "a.jpg", "label": 0},\n{"path": "./a.jpg", "label": 0}\n]}'
    write_file(os.path.join(root, "train", "annotations.json"), doc)
    return root, [], "DUPLICATE_PATH", "train/annotations.json:line 3 images[1]"


def no_train_channel(root: str) -> Case:
    folder_dataset(os.path.join(root), {"a": 1}, channels=("validation",))
    return root, [], "CHANNEL_MISSING", "."


def unknown_format(root: str) -> Case:
    write_file(os.path.join(root, "train", "readme.txt"), "hello")
    return root, [], "FORMAT_UNKNOWN", "train"


CASES: List[Callable[[str], Case]] = [
    truncated_record,
    bad_magic,
    bad_padding,
    wrong_label_count,
    label_out_of_range,
    fractional_label,
    corrupt_jpeg_in_rec,
    garbage_image_in_rec,
    zero_byte_image_in_rec,
    idx_disagrees,
    idx_duplicate_key,
    idx_empty_and_record_missing,
    duplicate_record_ids,
    empty_rec,
    lst_duplicate_index,
    lst_missing_file,
    lst_path_traversal,
    lst_non_utf8_path,
    lst_in_separate_channel_out_of_range,
    non_utf8_file_name,
    lst_wrong_multi_hot,
    truncated_png_file,
    corrupt_jpeg_file,
    zero_byte_file,
    png_decompression_bomb,
    gif_in_folders,
    image_smaller_than_shape,
    class_only_in_validation,
    fewer_samples_than_batch,
    bad_json_line,
    manifest_other_bucket,
    annotations_unknown_label,
    annotations_duplicate_path,
    no_train_channel,
    unknown_format,
]


@pytest.mark.parametrize("build", CASES, ids=[c.__name__ for c in CASES])
def test_broken_input_is_reported_with_code_and_location(tmp_path, validate_json, build) -> None:
    path, args, code, where = build(str(tmp_path / "data"))
    exit_code, report = validate_json(path, *args)
    assert exit_code == 1
    assert report["valid"] is False
    assert code in codes(report), report["errors"]
    issue = find(report, code)
    assert issue["location"] == where or issue["location"].startswith(where + " "), issue
    assert issue["message"]


@pytest.mark.parametrize("build", CASES, ids=[c.__name__ for c in CASES])
def test_broken_input_human_report_has_no_traceback(tmp_path, cli, build) -> None:
    path, args, code, where = build(str(tmp_path / "data"))
    exit_code, out, err = cli("validate", path, *args)
    assert exit_code == 1
    assert "INVALID" in out and code in out
    assert "Traceback" not in out + err
