"""Property-based fuzzing of the CLI: random datasets (folders, .lst, manifests, RecordIO), valid
or damaged (truncated or byte-flipped images, missing files, bad labels, a damaged .rec), go
through ``imgclf validate`` and ``imgclf pack`` in-process, and what pack writes is read back with
the project's RecordIO reader. For any input: no traceback, exit code 0, 1 or 2, nothing written
when pack fails, and never exit 0 with changed content: every sample is in the output once, with
its label and its image (the file's bytes with --pass-through, its pixels with --encoding .png)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.cli.main import main
from image_dataset.recordio import RecordIOReader, unpack
from tests.builders import jpeg, manifest_lines, png, write_file, write_rec

CLI_FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_CLI_EXAMPLES", "4")),  # per format and damage
    deadline=None,  # a loaded machine: one example packs and reads back several files
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run: a failure here is reproducible
)

CLASSES = ("ant", "bee", "cat")
BAD_LABELS = ("abc", "-1", "nan", "1e400", str(2**70), "")


class Sample(NamedTuple):
    path: str  # relative to the dataset's folder of images
    label: int
    image: bytes


class Dataset(NamedTuple):
    fmt: str
    samples: List[Sample]
    damage: str
    target: int  # the sample the damage is done to
    where: int  # a byte position (truncation, flip), reduced modulo the file's length
    bad_label: str


def image_bytes(kind: str, width: int, height: int, colour: Tuple[int, int, int]) -> bytes:
    return png(width, height, colour) if kind == "png" else jpeg(width, height, colour)


IMAGE_DAMAGES = ("none", "truncate", "flip", "missing")
CASES = [
    *(("folder", damage) for damage in IMAGE_DAMAGES),
    *(("lst", damage) for damage in (*IMAGE_DAMAGES, "bad_label")),
    *(("manifest", damage) for damage in (*IMAGE_DAMAGES, "bad_label")),
    *(("recordio", damage) for damage in ("none", "truncate", "rec_truncate", "rec_flip")),
]


@st.composite
def datasets(draw: st.DrawFn, fmt: str, damage: str) -> Dataset:
    count = draw(st.integers(1, 6))
    samples = []
    for n in range(count):
        kind = draw(st.sampled_from(["png", "jpeg"]))
        width, height = draw(st.integers(1, 24)), draw(st.integers(1, 24))
        colour = draw(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)))
        label = draw(st.integers(0, len(CLASSES) - 1))
        name = f"{CLASSES[label]}/{n:02d}.{'png' if kind == 'png' else 'jpg'}"
        samples.append(Sample(name, label, image_bytes(kind, width, height, colour)))
    return Dataset(
        fmt,
        samples,
        damage,
        draw(st.integers(0, count - 1)),
        draw(st.integers(0, 1 << 16)),
        draw(st.sampled_from(BAD_LABELS)),
    )


def damaged(data: bytes, how: str, where: int) -> bytes:
    if how in ("truncate", "rec_truncate"):
        return data[: where % max(1, len(data))]
    at = where % len(data)
    return data[:at] + bytes([data[at] ^ (1 << (where % 8))]) + data[at + 1 :]


def write_dataset(root: str, ds: Dataset) -> Tuple[str, Dict[str, Sample]]:
    """Write ``ds`` under ``root``; returns (what to validate/pack, the samples by path as written)."""
    written: Dict[str, Sample] = {}
    for i, sample in enumerate(ds.samples):
        image = sample.image
        if i == ds.target and ds.damage in ("truncate", "flip"):
            image = damaged(image, ds.damage, ds.where)
        written[sample.path] = sample._replace(image=image)
    if ds.fmt == "recordio":
        path = write_rec(
            os.path.join(root, "train", "train.rec"), [(s.label, s.image) for s in written.values()], with_idx=True
        )
        if ds.damage in ("rec_truncate", "rec_flip"):
            with open(path, "rb") as f:
                data = f.read()
            write_file(path, damaged(data, ds.damage, ds.where))
        return path, written
    images = os.path.join(root, "train")
    for sample in written.values():
        if not (ds.damage == "missing" and sample is written[ds.samples[ds.target].path]):
            write_file(os.path.join(images, sample.path), sample.image)
    labels = [str(s.label) for s in written.values()]
    if ds.damage == "bad_label":
        labels[ds.target] = ds.bad_label
    if ds.fmt == "folder":  # nothing refers to a missing file, and the folders are the labels
        if ds.damage == "missing":
            del written[ds.samples[ds.target].path]
        return images, written
    if ds.fmt == "lst":
        lines = "".join(f"{i}\t{label}\t{s.path}\n" for i, (label, s) in enumerate(zip(labels, written.values())))
        return write_file(os.path.join(images, "train.lst"), lines), written
    rows = []
    for label, s in zip(labels, written.values()):
        try:
            value: object = json.loads(label)
        except ValueError:
            value = label
        rows.append({"source-ref": s.path, "class": value})
    return write_file(os.path.join(images, "train.manifest"), manifest_lines(rows)), written


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str]:
    """``imgclf ARGS`` in-process: (exit code, stdout + stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    out, err = capsys.readouterr()
    return code, out + err


def read_back(prefix: str) -> List[Tuple[str, float, bytes]]:
    """(source path from the .lst, label, image bytes) of every record pack wrote, in order."""
    lst = {}
    with open(prefix + ".lst", encoding="utf-8") as f:
        for line in f:
            index, *labels, path = line.rstrip("\n").split("\t")
            lst[int(index)] = (path, [float(v) for v in labels])
    records = []
    with open(prefix + ".rec", "rb") as stream:
        for _, record in RecordIOReader(stream, "packed.rec"):
            header, image = unpack(record)
            path, labels = lst[header.id]
            assert [float(header.label)] == labels, (path, header.label, labels)
            records.append((path, float(header.label), image))
    return records


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def check_no_crash(code: int, output: str, what: str) -> None:
    assert "Traceback" not in output, f"{what}:\n{output}"
    assert code in (0, 1, 2), f"{what} exited {code}:\n{output}"


@pytest.mark.parametrize(("fmt", "damage"), CASES)
def test_validate_and_pack_never_crash_nor_change_content(
    capsys: pytest.CaptureFixture[str], fmt: str, damage: str
) -> None:
    @CLI_FUZZ
    @given(ds=datasets(fmt, damage), pass_through=st.booleans())
    def run(ds: Dataset, pass_through: bool) -> None:
        check_validate_and_pack(capsys, ds, pass_through)

    run()


def check_validate_and_pack(capsys: pytest.CaptureFixture[str], ds: Dataset, pass_through: bool) -> None:
    # a folder names its classes; the other formats' ids may leave a class without samples
    classes = [] if ds.fmt == "folder" else ["--num-classes", str(len(CLASSES))]
    with tempfile.TemporaryDirectory() as root:
        source, written = write_dataset(root, ds)
        code, output = run_cli(capsys, "validate", source, "--workers", "1", *classes)
        check_no_crash(code, output, "validate")
        valid = code == 0
        out_dir = os.path.join(root, "out")
        os.makedirs(out_dir)
        prefix = os.path.join(out_dir, "packed")
        options = ["--pass-through"] if pass_through else ["--encoding", ".png"]
        pcode, output = run_cli(
            capsys, "pack", source, prefix, "--no-shuffle", "--workers", "1", *classes, *options,
        )  # fmt: skip
        check_no_crash(pcode, output, "pack")
        event(f"{ds.fmt}, damage {ds.damage}: validate {code}, pack {pcode}")  # --hypothesis-show-statistics
        if ds.fmt == "recordio":
            assert pcode != 0, "a .rec is packed already"
        if pcode != 0:
            assert not os.path.exists(prefix + ".rec"), f"pack failed but wrote output:\n{output}"
            return
        assert valid, f"pack exited 0 on a dataset that validate refused:\n{output}"
        if ds.fmt != "folder":
            assert ds.damage not in ("missing", "bad_label"), f"pack exited 0 with damage {ds.damage}:\n{output}"
        records = read_back(prefix)
        assert sorted(path for path, _, _ in records) == sorted(written), "a sample was dropped or repeated"
        names: Optional[List[str]] = None
        if ds.fmt == "folder":  # labels are class ids in the order of labels.json
            with open(os.path.join(out_dir, "labels.json"), encoding="utf-8") as f:
                names = json.load(f)
        for path, label, image in records:
            sample = written[path]
            if names is not None:
                assert names[int(label)] == CLASSES[sample.label], (path, label, names)
            else:
                assert label == float(sample.label), (path, label, sample.label)
            if pass_through:
                assert image == sample.image, f"{path}: the packed bytes differ from the file's"
            else:
                source_pixels, packed_pixels = pixels(sample.image), pixels(image)
                assert source_pixels.shape == packed_pixels.shape, path
                assert int(np.abs(source_pixels - packed_pixels).max()) == 0, f"{path}: pixels changed"


@CLI_FUZZ
@given(ds=datasets("recordio", "rec_truncate") | datasets("recordio", "rec_flip"))
def test_validate_of_a_damaged_recordio_names_the_damage(capsys: pytest.CaptureFixture[str], ds: Dataset) -> None:
    """A .rec cut short or with a flipped byte: validate exits 1 with a coded issue, or 0 when the
    flip left a valid file (a byte inside an image), and never crashes."""
    with tempfile.TemporaryDirectory() as root:
        source, _ = write_dataset(root, ds)
        code, output = run_cli(capsys, "validate", source, "--workers", "1", "--json")
        check_no_crash(code, output, "validate")
        assert code in (0, 1)
        with contextlib.suppress(ValueError):
            report = json.loads(output)
            if code == 1:
                assert report["errors"] and all(issue["code"] for issue in report["errors"])
