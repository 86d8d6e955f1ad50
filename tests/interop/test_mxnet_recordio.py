"""Both directions against MXNet 1.9.1 itself: its writer -> our reader and validator, our pack ->
MXIndexedRecordIO and ImageRecordIter, and MXNet's own im2rec.py -> imgclf validate."""

from __future__ import annotations

import json
import os

import pytest

from image_dataset.issues import CollectingSink
from image_dataset.recordio import RecordIOReader, frame, pack, unpack
from image_dataset.recordio_scan import RecordIOScanner
from tests.builders import folder_dataset, jpeg, magic_payload, write_file

pytestmark = pytest.mark.mxnet

WRITE_WITH_MXNET = """
import json, sys
import mxnet as mx
spec = json.load(open(sys.argv[1]))
rec = mx.recordio.MXIndexedRecordIO(sys.argv[2][:-4] + '.idx', sys.argv[2], 'w')
for i, item in enumerate(spec):
    payload = bytes.fromhex(item['payload'])
    header = mx.recordio.IRHeader(0, item['label'], item['id'], 0)
    rec.write_idx(item['id'], mx.recordio.pack(header, payload))
rec.close()
"""


def test_mxnet_writer_to_our_reader_byte_for_byte(tmp_path, in_mxnet, validate_json) -> None:
    spec = []
    for i in range(8):
        image = jpeg(12 + i, 10, (10 * i, 0, 0))
        payload = magic_payload(image) if i % 3 == 0 else image
        label = [1.0, 0.0, 1.0] if i == 7 else float(i % 4)
        spec.append({"payload": payload.hex(), "label": label, "id": 100 + i})
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    rec = str(tmp_path / "mx.rec")
    in_mxnet(WRITE_WITH_MXNET, str(spec_path), rec)

    data = open(rec, "rb").read()
    ours = b"".join(frame(pack(s["label"], bytes.fromhex(s["payload"]), id=s["id"])) for s in spec)
    assert data == ours  # identical bytes, including the split multi-part records
    with open(rec, "rb") as f:
        records = [unpack(r) for _, r in RecordIOReader(f)]
    assert [h.id for h, _ in records] == [s["id"] for s in spec]
    assert [img for _, img in records] == [bytes.fromhex(s["payload"]) for s in spec]
    sink = CollectingSink()
    scanned = list(RecordIOScanner(lambda o, n: data[o : o + n], len(data), "mx.rec", sink, 256).scan())
    assert sink.counts == {} and sum(len(b) for b in scanned) == 8
    idx_lines = open(str(tmp_path / "mx.idx")).read().splitlines()
    assert [int(line.split("\t")[0]) for line in idx_lines] == [s["id"] for s in spec]


def test_mxnet_writer_output_validates(tmp_path, in_mxnet, validate_json) -> None:
    spec = [{"payload": jpeg(32, 32, (i * 20, 50, 50)).hex(), "label": float(i % 3), "id": i} for i in range(9)]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    os.makedirs(tmp_path / "train")
    in_mxnet(WRITE_WITH_MXNET, str(tmp_path / "spec.json"), str(tmp_path / "train" / "d.rec"))
    code, report = validate_json(str(tmp_path / "train" / "d.rec"), "--num-classes", "3", "--image-shape", "3,32,32")
    assert code == 0, report["errors"]
    assert report["channels"]["train"]["class_counts"] == {"0": 3, "1": 3, "2": 3}


READ_WITH_MXNET = """
import json, sys
import mxnet as mx
prefix = sys.argv[1]
rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
by_key = {}
for key in rec.keys:
    header, img = mx.recordio.unpack(rec.read_idx(key))
    label = header.label.tolist() if hasattr(header.label, 'tolist') else header.label
    by_key[key] = {'label': label, 'id': header.id, 'shape': list(mx.image.imdecode(img).shape)}
it = mx.io.ImageRecordIter(path_imgrec=prefix + '.rec', path_imgidx=prefix + '.idx', data_shape=(3, 24, 24),
                           batch_size=1, shuffle=False, label_width=int(sys.argv[2]))
iter_labels = []
for batch in it:
    n = batch.data[0].shape[0] - batch.pad
    iter_labels += batch.label[0].asnumpy()[:n].tolist()
print(json.dumps({'by_key': by_key, 'iter_labels': iter_labels}))
"""


def read_lst(path: str):
    rows = [line.rstrip("\n").split("\t") for line in open(path)]
    return [(int(r[0]), [float(v) for v in r[1:-1]], r[-1]) for r in rows]


def test_our_pack_reads_back_in_mxnet(tmp_path, cli, in_mxnet) -> None:
    root = folder_dataset(str(tmp_path / "d"), {"ant": 4, "bee": 3, "cow": 3}, channels=("train",), size=30)
    prefix = str(tmp_path / "packed")
    code, _, err = cli("pack", os.path.join(root, "train"), prefix, "--resize", "24")
    assert code == 0, err
    out = json.loads(in_mxnet(READ_WITH_MXNET, prefix, "1"))
    lst = read_lst(prefix + ".lst")
    assert {int(k): v["label"] for k, v in out["by_key"].items()} == {i: labels[0] for i, labels, _ in lst}
    assert all(v["id"] == int(k) for k, v in out["by_key"].items())
    assert all(v["shape"][2] == 3 and min(v["shape"][:2]) == 24 for v in out["by_key"].values())
    assert out["iter_labels"] == [labels[0] for _, labels, _ in lst]  # file order = .lst order


def test_our_multi_label_pack_reads_back_in_mxnet(tmp_path, cli, in_mxnet) -> None:
    root = str(tmp_path / "d")
    entries = []
    for i in range(6):
        write_file(os.path.join(root, f"img{i}.jpg"), jpeg(24, 24, (i * 30, 0, 0)))
        entries.append({"path": f"img{i}.jpg", "label": [i % 3, (i + 1) % 3]})
    write_file(os.path.join(root, "annotations.json"), json.dumps({"labels": ["x", "y", "z"], "images": entries}))
    prefix = str(tmp_path / "m")
    assert cli("pack", os.path.join(root, "annotations.json"), prefix, "--no-shuffle")[0] == 0
    out = json.loads(in_mxnet(READ_WITH_MXNET, prefix, "3"))
    expected = [labels for _, labels, _ in read_lst(prefix + ".lst")]
    assert [out["by_key"][str(i)]["label"] for i in range(6)] == expected
    assert out["iter_labels"] == expected


def test_im2rec_output_validates(tmp_path, in_mxnet, cli, validate_json) -> None:
    root = folder_dataset(str(tmp_path / "images"), {"cat": 5, "dog": 5, "eel": 4}, channels=("train",), size=40)
    im2rec = in_mxnet(
        "import mxnet, os; print(os.path.join(os.path.dirname(mxnet.__file__), 'tools', 'im2rec.py'))"
    ).strip()
    prefix = str(tmp_path / "out" / "data")
    os.makedirs(tmp_path / "out")
    image_root = os.path.join(root, "train")
    in_mxnet(
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
        im2rec,
        "--list",
        "--recursive",
        "--train-ratio",
        "0.75",
        prefix,
        image_root,
    )
    for part in ("_train", "_val"):
        in_mxnet(
            "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
            im2rec,
            "--resize",
            "32",
            "--num-thread",
            "1",
            prefix + part,
            image_root,
        )
    # MXNet's own .rec files validate, alone and as channels of a dataset
    for part in ("_train", "_val"):
        code, report = validate_json(prefix + part + ".rec", "--image-shape", "3,32,32", "--num-classes", "3")
        assert code == 0, report["errors"]
    dataset = tmp_path / "dataset"
    for part, channel in (("_train", "train"), ("_val", "validation")):
        os.makedirs(dataset / channel)
        for ext in (".rec", ".idx", ".lst"):
            os.rename(prefix + part + ext, str(dataset / channel / ("data" + ext)))
    code, report = validate_json(str(dataset), "--image-shape", "3,32,32", "--num-classes", "3")
    assert code == 0, report["errors"]
    assert report["channels"]["train"]["samples"] + report["channels"]["validation"]["samples"] == 14
    # im2rec's .lst beside the images is an image channel of its own
    lst_copy = os.path.join(image_root, "train.lst")
    with open(str(dataset / "train" / "data.lst")) as src, open(lst_copy, "w") as dst:
        dst.write(src.read())
    code, report = validate_json(image_root, "--num-classes", "3", "--image-shape", "3,32,32", "--resize", "32")
    assert code == 0, report["errors"]
    assert report["channels"]["train"]["format"] == "lst"
    assert report["channels"]["train"]["samples"] == len(open(lst_copy).read().splitlines())


READ_ALL = """
import sys
import mxnet as mx
it = mx.io.ImageRecordIter(path_imgrec=sys.argv[1], data_shape=(3, 16, 16), resize=16, batch_size=1, round_batch=False)
print(sum(1 for _ in it))
"""


def test_a_false_record_start_is_an_error_because_image_record_iter_stops_on_it(tmp_path, validate_json) -> None:
    """Payloads holding the magic number followed by a zero word (a record start to dmlc's chunk
    reader), unsplit: ImageRecordIter aborts once the file spans its read chunks; the same
    records written as MXNet's writer writes them (split) read whole."""
    import struct
    import subprocess

    from image_dataset.recordio import MAGIC
    from tests.builders import noisy_jpeg
    from tests.interop.conftest import backend_python

    body = b"\0\0" + struct.pack("<II", MAGIC, 0) * 4  # a JPEG comment segment's data
    payloads = []
    for i in range(2000):
        image = noisy_jpeg(64, 64, i)
        image = image[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + image[2:]
        payloads.append(pack(float(i % 3), image, id=i))
    assert all(p.find(struct.pack("<I", MAGIC)) % 4 == 0 for p in payloads)  # aligned: what dmlc finds
    unsplit = b"".join(struct.pack("<II", MAGIC, len(p)) + p + b"\0" * (-len(p) % 4) for p in payloads)
    assert len(unsplit) > 8 << 20  # more than one of the reader's chunks
    write_file(str(tmp_path / "unsplit.rec"), unsplit)
    write_file(str(tmp_path / "split.rec"), b"".join(frame(p) for p in payloads))

    code, report = validate_json(str(tmp_path / "unsplit.rec"))
    assert code == 1 and report["counts"]["REC_FALSE_START"] == 2000
    read = subprocess.run(
        [backend_python(".venv-mxnet"), "-c", READ_ALL, str(tmp_path / "unsplit.rec")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode != 0 and "Invalid RecordIO Format" in read.stderr, read.stdout + read.stderr[-2000:]

    code, report = validate_json(str(tmp_path / "split.rec"))
    assert code == 0 and "REC_FALSE_START" not in report["counts"], report["errors"]
    read = subprocess.run(
        [backend_python(".venv-mxnet"), "-c", READ_ALL, str(tmp_path / "split.rec")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode == 0 and read.stdout.split()[-1] == "2000", read.stderr[-2000:]
