"""Label fidelity: every label form that each list format allows (class ids written as ints or
floats, multi-hot vectors, lists of class ids or names, im2rec's ``--pack-label`` columns)
survives ``imgclf pack`` and reads back unchanged, as float32, with MXNet's own reader
(``mx.recordio.MXIndexedRecordIO`` + ``mx.recordio.unpack`` in .venv-mxnet) -- or is refused
with its issue code and ``file:line``, and nothing is written.

The expected labels are computed here from what the test wrote, not by the code under test.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import tempfile
from typing import Callable, Dict, List, NamedTuple, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli.main import main
from image_dataset.issues import IssueSink
from image_dataset.lst import parse_lst
from image_dataset.recordio import IndexedRecordIO, unpack
from tests.builders import png, write_file
from tests.interop.conftest import runner

IMAGE = png(8, 8)
MAX_INDEX = 2**63 - 1
Expected = Dict[int, Tuple[int, Tuple[float, ...]]]  # key -> (IRHeader flag, labels)


def f32(value: float) -> float:
    """``value`` as the float32 a record stores."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


class Case(NamedTuple):
    name: str
    files: Dict[str, object]  # path relative to the case folder -> bytes or text
    src: str  # what is packed, relative to the case folder
    args: Tuple[str, ...]  # label options
    expected: Dict[str, Expected]  # .rec path relative to the case folder -> its records
    root: bool = False  # a dataset root: packed into the folder out/, else to the prefix out


def run_cli(*args: str) -> Tuple[int, str]:
    """``imgclf ARGS`` in-process; (exit code, stdout + stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue()


def vector(classes: Sequence[int], n: int) -> Tuple[float, ...]:
    return tuple(1.0 if c in classes else 0.0 for c in range(n))


# -- strategies: one dataset of each format, with its expected records ---------------------

ID_TEXTS = [lambda c: str(c), lambda c: f"{c:f}", lambda c: f"{c}.0", lambda c: f"{c}e0", lambda c: f"+{c}"]
BIT_TEXTS = {0: ["0", "0.000000", "0.0", "-0", "0e5"], 1: ["1", "1.000000", "1.0", "1e0", "+1"]}


@st.composite
def lst_single(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 6))
    keys = draw(st.lists(st.integers(0, MAX_INDEX), min_size=n, max_size=n, unique=True))
    classes = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    lines, files = [], {}
    for i, (key, c) in enumerate(zip(keys, classes)):
        text = draw(st.sampled_from(ID_TEXTS))(c)
        lines.append(f"{key}\t{text}\timg {i}.png\n")
        files[f"img {i}.png"] = IMAGE
    files["data.lst"] = draw(st.sampled_from(["", "\ufeff"])) + "".join(lines)
    expected = {k: (0, (float(c),)) for k, c in zip(keys, classes)}
    return Case("lst", files, "data.lst", (), {"out.rec": expected})


@st.composite
def lst_pack_label(draw: st.DrawFn) -> Case:
    """im2rec's --pack-label: several label columns, a multi-hot vector."""
    n, width = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    rows = draw(st.lists(st.lists(st.integers(0, 1), min_size=width, max_size=width), min_size=n, max_size=n))
    lines, files, expected = [], {}, {}
    for i, row in enumerate(rows):
        texts = [draw(st.sampled_from(BIT_TEXTS[b])) for b in row]
        lines.append("{}\t{}\t{}.png\n".format(i * 7, "\t".join(texts), i))
        files[f"{i}.png"] = IMAGE
        expected[i * 7] = (width, tuple(float(b) for b in row))
    files["multi.lst"] = "".join(lines)
    args = draw(st.sampled_from([(), ("--multi-label",), ("--num-classes", str(width))]))
    return Case("pack-label", files, "multi.lst", args, {"out.rec": expected})


@st.composite
def manifest(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 5))
    form = draw(st.sampled_from(["id", "class-ids", "multi-hot"]))
    args: Tuple[str, ...] = ()
    lines, files, expected = [], {}, {}
    if form == "id":
        classes = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
        for i, c in enumerate(classes):
            value = draw(st.sampled_from([c, float(c), str(c)]))
            lines.append({"source-ref": f"i/{i}.png", "class": value})
            expected[i] = (0, (float(c),))
    elif form == "class-ids":
        lists = draw(st.lists(st.lists(st.integers(0, 5), max_size=4, unique=True), min_size=n, max_size=n))
        top = max((max(v) + 1 for v in lists if v), default=0)  # what the data shows
        classes = max(top + draw(st.integers(0, 2)), 2)  # multi-hot vectors need 2 classes
        args = ("--label-format", "class-id") + (("--num-classes", str(classes)) if classes != top else ())
        if draw(st.booleans()):
            args += ("--multi-label",)
        for i, v in enumerate(lists):
            value = draw(st.sampled_from([v, json.dumps(v)]))  # Ground Truth writes lists as strings too
            lines.append({"source-ref": f"i/{i}.png", "class": value})
            expected[i] = (classes, vector(v, classes))
    else:
        width = draw(st.integers(2, 5))
        rows = draw(st.lists(st.lists(st.integers(0, 1), min_size=width, max_size=width), min_size=n, max_size=n))
        args = draw(st.sampled_from([(), ("--label-format", "multi-hot"), ("--num-classes", str(width))]))
        for i, row in enumerate(rows):
            lines.append({"source-ref": f"i/{i}.png", "labels": [draw(st.sampled_from([b, float(b)])) for b in row]})
            expected[i] = (width, tuple(float(b) for b in row))
    for i in range(n):
        files[f"i/{i}.png"] = IMAGE
    bom = draw(st.sampled_from(["", "\ufeff"]))
    files["data.manifest"] = bom + "".join(json.dumps(line) + "\n" for line in lines)
    return Case("manifest-" + form, files, "data.manifest", args, {"out.rec": expected})


@st.composite
def annotations(draw: st.DrawFn) -> Case:
    names = draw(st.lists(st.sampled_from(["cat", "dog", "fox", "owl", "émeu"]), min_size=2, max_size=5, unique=True))
    n = draw(st.integers(1, 5))
    multi = draw(st.booleans())
    entries, files, expected = [], {}, {}
    for i in range(n):
        if multi:
            classes = draw(st.lists(st.integers(0, len(names) - 1), max_size=len(names), unique=True))
            label: object = [draw(st.sampled_from([c, names[c]])) for c in classes]
            expected[i] = (len(names), vector(classes, len(names)))
        else:
            c = draw(st.integers(0, len(names) - 1))
            label = draw(st.sampled_from([c, names[c], float(c)]))
            expected[i] = (0, (float(c),))
        entries.append({"path": f"{i}.png", "label": label})
        files[f"{i}.png"] = IMAGE
    files["annotations.json"] = json.dumps({"labels": names, "images": entries}, ensure_ascii=False)
    return Case("annotations", files, "annotations.json", ("--multi-label",) if multi else (), {"out.rec": expected})


@st.composite
def folders_root(draw: st.DrawFn) -> Case:
    """A dataset root: train and validation packed with the one label map of both channels,
    whatever class one of them lacks."""
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "z"]), min_size=2, max_size=4, unique=True))
    label_map = {name: i for i, name in enumerate(sorted(names))}
    files: Dict[str, object] = {}
    expected: Dict[str, Expected] = {}
    for channel in ("train", "validation"):
        present = draw(st.lists(st.sampled_from(names), min_size=1, unique=True)) if channel == "validation" else names
        for name in present:
            for k in range(draw(st.integers(1, 2))):
                files[f"{channel}/{name}/{k}.png"] = IMAGE
        # the key is the position in the folder walk: class folders, then files, in name order
        paths = sorted(p for p in files if p.startswith(channel + "/"))
        expected[f"out/{channel}/{channel}.rec"] = {
            i: (0, (float(label_map[p.split("/")[1]]),)) for i, p in enumerate(paths)
        }
    return Case("folders-root", files, ".", (), expected, root=True)


ALL_FORMATS = st.tuples(lst_single(), lst_pack_label(), manifest(), annotations(), folders_root())


def pack_cases(base: str, cases: Sequence[Case], shuffle: bool) -> Dict[str, Expected]:
    """Write and pack each case under ``base/<i>``; returns the records expected in each .rec
    (by its path), labels as float32."""
    expected: Dict[str, Expected] = {}
    for i, case in enumerate(cases):
        folder = os.path.join(base, str(i))
        for rel, data in case.files.items():
            write_file(os.path.join(folder, "src", rel), data)  # type: ignore[arg-type]
        src = os.path.join(folder, "src", case.src)
        args = ["pack", src, os.path.join(folder, "out"), "--pass-through", "--workers", "1", *case.args]
        code, output = run_cli(*args, *([] if shuffle else ["--no-shuffle"]))
        assert code == 0 and "Traceback" not in output, f"{case.name}: {args}\n{output}"
        for rec, records in case.expected.items():
            expected[os.path.join(folder, rec)] = {
                k: (flag, tuple(f32(v) for v in labels)) for k, (flag, labels) in records.items()
            }
    return expected


def shown(labels: Sequence[float]) -> List[str]:
    """Exact comparison: repr tells -0.0 from 0.0 and shows every float32 digit."""
    return [repr(v) for v in labels]


@pytest.fixture(scope="module")
def in_mxnet() -> Callable[..., str]:
    return runner(".venv-mxnet")


MXNET_READER = """
import json, sys
import mxnet as mx
out = {}
for rec in json.load(open(sys.argv[1])):
    reader = mx.recordio.MXIndexedRecordIO(rec[:-4] + ".idx", rec, "r")
    records = {}
    for key in reader.keys:
        header, image = mx.recordio.unpack(reader.read_idx(key))
        labels = [float(v) for v in header.label] if header.flag > 0 else [float(header.label)]
        records[str(key)] = [int(header.flag), labels, int(header.id), len(image)]
    reader.close()
    out[rec] = records
print(json.dumps(out))
"""


def check_against(read: Dict[str, Dict[str, list]], expected: Dict[str, Expected]) -> None:
    assert set(read) == set(expected)
    for rec, records in expected.items():
        got = read[rec]
        assert sorted(int(k) for k in got) == sorted(records), rec
        for key, (flag, labels) in records.items():
            got_flag, got_labels, got_id, size = got[str(key)]
            assert (got_flag, shown(got_labels), got_id, size) == (flag, shown(labels), key, len(IMAGE)), (rec, key)


@pytest.mark.mxnet
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches=st.lists(ALL_FORMATS, min_size=3, max_size=3), shuffle=st.booleans())
def test_every_label_form_reads_back_unchanged_with_mxnets_reader(
    batches: List[Tuple[Case, ...]], shuffle: bool, in_mxnet: Callable[..., str]
) -> None:
    """Each example packs 15 datasets and reads them all back in one MXNet process."""
    with tempfile.TemporaryDirectory() as base:
        expected = pack_cases(base, [case for batch in batches for case in batch], shuffle)
        listing = os.path.join(base, "recs.json")
        with open(listing, "w") as f:
            json.dump(sorted(expected), f)
        check_against(json.loads(in_mxnet(MXNET_READER, listing)), expected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=ALL_FORMATS, shuffle=st.booleans())
def test_every_label_form_survives_pack_and_its_lst(cases: Tuple[Case, ...], shuffle: bool) -> None:
    """The same property, many more examples, with this package's reader; the .lst that pack
    writes beside the .rec carries the same labels."""
    with tempfile.TemporaryDirectory() as base:
        expected = pack_cases(base, cases, shuffle)
        read: Dict[str, Dict[str, list]] = {}
        for rec in expected:
            with IndexedRecordIO(rec, rec[:-4] + ".idx") as reader:
                records = {}
                for key in reader.keys:
                    header, image = unpack(reader.read_idx(key))
                    labels = list(header.label) if header.flag else [header.label]
                    records[str(key)] = [header.flag, labels, header.id, len(image)]
                read[rec] = records
            with open(rec[:-4] + ".lst", "rb") as f:
                lst = {s.key: s.labels for s in parse_lst(f.read(), "out.lst", "", IssueSink())}
            assert {k: shown(v) for k, v in lst.items()} == {
                k: shown(labels) for k, (_, labels) in expected[rec].items()
            }
        check_against(read, expected)


# -- refusals: a code and file:line, exit 1, nothing written -------------------------------

BAD_LST = [
    ("-1\t0\tx.png", "LST_BAD_INDEX"),
    (f"{2**63}\t0\tx.png", "LST_BAD_INDEX"),
    (f"{2**70}\t0\tx.png", "LST_BAD_INDEX"),
    ("1.5\t0\tx.png", "LST_BAD_INDEX"),
    ("nan\t0\tx.png", "LST_BAD_INDEX"),
    ("99\t-1\tx.png", "LABEL_INVALID"),
    ("99\t1.5\tx.png", "LABEL_INVALID"),
    ("99\tnan\tx.png", "LABEL_INVALID"),
    ("99\tinf\tx.png", "LABEL_INVALID"),
    ("99\t-inf\tx.png", "LABEL_INVALID"),
    ("99\t1e400\tx.png", "LABEL_INVALID"),
    ("99\tone\tx.png", "LABEL_INVALID"),
    ("99\t1e6\tx.png", "TOO_MANY_CLASSES"),
]
BAD_MANIFEST = [
    ('{"source-ref": "x.png", "class": -1}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": 1.5}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": NaN}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": Infinity}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": -Infinity}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": 1' + "0" * 400 + "}", "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": 1e400}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": true}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": "cat"}', "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": [0, 1' + "0" * 400 + "]}", "LABEL_INVALID"),
    ('{"source-ref": "x.png", "class": 123456789}', "TOO_MANY_CLASSES"),
    ('{"source-ref": "x.png", "class": 7, "class-metadata": {"class-name": "seven"}}', "LABEL_OUT_OF_RANGE"),
]
BAD_ANNOTATIONS = [
    ({"path": "x.png", "label": 9}, "LABEL_OUT_OF_RANGE"),
    ({"path": "x.png", "label": -1}, "LABEL_INVALID"),
    ({"path": "x.png", "label": 0.5}, "LABEL_INVALID"),
    ({"path": "x.png", "label": "wolf"}, "LABEL_UNKNOWN"),
    ({"path": "x.png", "label": 10**400}, "LABEL_INVALID"),
    ({"path": "x.png", "label": None}, "LABEL_INVALID"),
]


def assert_refused(folder: str, src: str, where: str, code: str, *args: str) -> None:
    out = os.path.join(folder, "out")
    for command in (["validate", src, "--workers", "1"], ["pack", src, out, "--workers", "1"]):
        status, output = run_cli(*command, *args)
        assert status == 1 and "Traceback" not in output, output
        assert code in output and where in output, (code, where, output)
    assert not [f for f in os.listdir(folder) if f.startswith("out")]


@pytest.mark.parametrize("bad", BAD_LST)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.integers(0, 3), after=st.integers(0, 2))
def test_bad_lst_labels_and_indexes_are_refused_at_their_line(bad: Tuple[str, str], before: int, after: int) -> None:
    line, code = bad
    with tempfile.TemporaryDirectory() as folder:
        rows = [f"{i}\t{i % 3}\t{i}.png" for i in range(before)] + [line]
        rows += [f"{i + 10}\t0\t{i + 10}.png" for i in range(after)]
        for name in ["x.png"] + [f"{i}.png" for i in range(before)] + [f"{i + 10}.png" for i in range(after)]:
            write_file(os.path.join(folder, "src", name), IMAGE)
        write_file(os.path.join(folder, "src", "t.lst"), "\n".join(rows) + "\n")
        assert_refused(folder, os.path.join(folder, "src", "t.lst"), f"t.lst:line {before + 1}", code)


@pytest.mark.parametrize("bad", BAD_MANIFEST)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.integers(0, 3))
def test_bad_manifest_labels_are_refused_at_their_line(bad: Tuple[str, str], before: int) -> None:
    line, code = bad
    with tempfile.TemporaryDirectory() as folder:
        rows = [json.dumps({"source-ref": f"{i}.png", "class": i % 2}) for i in range(before)] + [line]
        for name in ["x.png"] + [f"{i}.png" for i in range(before)]:
            write_file(os.path.join(folder, "src", name), IMAGE)
        write_file(os.path.join(folder, "src", "m.manifest"), "\n".join(rows) + "\n")
        args = ("--num-classes", "5") if code == "LABEL_OUT_OF_RANGE" else ()
        assert_refused(folder, os.path.join(folder, "src", "m.manifest"), f"m.manifest:line {before + 1}", code, *args)


@pytest.mark.parametrize("bad", BAD_ANNOTATIONS)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.integers(0, 3))
def test_bad_annotation_labels_are_refused_at_their_entry(bad: Tuple[Dict[str, object], str], before: int) -> None:
    entry, code = bad
    with tempfile.TemporaryDirectory() as folder:
        entries = [{"path": f"{i}.png", "label": i % 2} for i in range(before)] + [entry]
        for name in ["x.png"] + [f"{i}.png" for i in range(before)]:
            write_file(os.path.join(folder, "src", name), IMAGE)
        text = (
            "{\n" + '"labels": ["cat", "dog"],\n"images": [\n' + ",\n".join(json.dumps(e) for e in entries) + "\n]}\n"
        )
        write_file(os.path.join(folder, "src", "annotations.json"), text)
        where = f"annotations.json:line {before + 4} images[{before}]"
        assert_refused(folder, os.path.join(folder, "src", "annotations.json"), where, code)


def test_the_issues_multi_hot_manifest_packs_its_vectors(tmp_path) -> None:
    """The reported case: [0, 1, 0] vectors were read as class ids and packed as ``1.0 1.0``."""
    rows = [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 0]]
    for i in range(len(rows)):
        write_file(str(tmp_path / "src" / f"{i}.png"), IMAGE)
    text = "".join(json.dumps({"source-ref": f"{i}.png", "label": row}) + "\n" for i, row in enumerate(rows))
    write_file(str(tmp_path / "src" / "data.manifest"), text)
    code, output = run_cli("validate", str(tmp_path / "src" / "data.manifest"), "--json", "--workers", "1")
    report = json.loads(output)
    assert code == 0 and report["num_classes"] == 3 and report["multi_label"] is True
    assert report["channels"]["train"]["class_counts"] == {"0": 2, "1": 2, "2": 1}
    code, output = run_cli("pack", str(tmp_path / "src" / "data.manifest"), str(tmp_path / "out"), "--no-shuffle")
    assert code == 0, output
    lines = (tmp_path / "out.lst").read_text().splitlines()
    assert [line.split("\t")[1:4] for line in lines] == [[f"{v:f}" for v in row] for row in rows]
    with IndexedRecordIO(str(tmp_path / "out.rec"), str(tmp_path / "out.idx")) as reader:
        assert [unpack(reader.read_idx(k))[0].label for k in range(4)] == [tuple(map(float, r)) for r in rows]


def test_a_class_id_list_with_a_repeated_id_is_refused(tmp_path) -> None:
    """Read as class ids (--label-format class-id), [0, 1, 0] names class 0 twice: refused, not merged."""
    write_file(str(tmp_path / "a.png"), IMAGE)
    write_file(str(tmp_path / "m.manifest"), json.dumps({"source-ref": "a.png", "label": [0, 1, 0]}) + "\n")
    code, output = run_cli("pack", str(tmp_path / "m.manifest"), str(tmp_path / "out"), "--label-format", "class-id")
    assert code == 1 and "LABEL_INVALID" in output and "m.manifest:line 1" in output and "appears twice" in output


def test_pack_takes_the_label_options_of_validate(tmp_path) -> None:
    """--num-classes and --multi-label reach pack's validation and the vector length."""
    write_file(str(tmp_path / "a.png"), IMAGE)
    write_file(str(tmp_path / "m.manifest"), json.dumps({"source-ref": "a.png", "label": [1]}) + "\n")
    out = str(tmp_path / "out")
    code, output = run_cli("pack", str(tmp_path / "m.manifest"), out, "--num-classes", "4", "--multi-label")
    assert code == 0, output
    with IndexedRecordIO(out + ".rec", out + ".idx") as reader:
        header = unpack(reader.read_idx(0))[0]
    assert (header.flag, header.label) == (4, (0.0, 1.0, 0.0, 0.0))
    code, output = run_cli("pack", str(tmp_path / "m.manifest"), out + "2", "--num-classes", "1")
    assert code == 1 and "LABEL_OUT_OF_RANGE" in output and not os.path.exists(out + "2.rec")


def _manifest(folder, rows: List[dict]) -> str:
    for row in rows:
        write_file(os.path.join(folder, row["source-ref"]), IMAGE)
    return write_file(os.path.join(folder, "data.manifest"), "".join(json.dumps(r) + "\n" for r in rows))


def meta(name: str) -> dict:
    return {"class-metadata": {"class-name": name}}


def test_manifest_names_with_gaps_pack_into_a_labels_json_that_validates(tmp_path) -> None:
    """Class 0 has no class-name and class 3 no metadata: they are named by their numbers, and
    the names cover every id used (they became ``["", "dog"]``: a labels.json validate refused)."""
    rows = [
        {"source-ref": "a.png", "class": 1, **meta("dog")},
        {"source-ref": "b.png", "class": 2, **meta("cat")},
        {"source-ref": "c.png", "class": 3},
    ]
    src = _manifest(str(tmp_path / "src"), rows)
    code, output = run_cli("pack", src, str(tmp_path / "out"), "--no-shuffle", "--workers", "1")
    assert code == 0, output
    assert json.loads((tmp_path / "labels.json").read_text()) == ["0", "dog", "cat", "3"]
    code, output = run_cli("validate", str(tmp_path / "out.rec"), "--json", "--workers", "1")
    report = json.loads(output)
    assert code == 0 and report["label_names"] == ["0", "dog", "cat", "3"], report["errors"]


def test_manifest_names_given_twice_are_refused(tmp_path) -> None:
    rows = [{"source-ref": "a.png", "class": 0, **meta("dog")}, {"source-ref": "b.png", "class": 1, **meta("dog")}]
    code, output = run_cli("validate", _manifest(str(tmp_path), rows), "--workers", "1")
    assert code == 1 and "LABEL_NAMES_INVALID" in output and "data.manifest" in output


def test_manifest_channels_that_name_fewer_classes_share_one_label_map(tmp_path) -> None:
    """Validation lacks class 2: its metadata names only 0 and 1, which agree with train's."""
    names = ["ant", "bee", "cow"]
    _manifest(
        str(tmp_path / "d" / "train"), [{"source-ref": f"{i}.png", "class": i, **meta(names[i])} for i in range(3)]
    )
    _manifest(
        str(tmp_path / "d" / "validation"), [{"source-ref": f"{i}.png", "class": i, **meta(names[i])} for i in range(2)]
    )
    code, output = run_cli("pack", str(tmp_path / "d"), str(tmp_path / "out"), "--no-shuffle", "--workers", "1")
    assert code == 0, output
    code, output = run_cli("validate", str(tmp_path / "out"), "--json", "--workers", "1")
    report = json.loads(output)
    assert code == 0 and report["label_names"] == names
    assert report["channels"]["validation"]["class_counts"] == {"0": 1, "1": 1}


@pytest.mark.parametrize("huge", [1e10, 1e19, 3e38])
def test_a_record_class_id_beyond_the_limit_is_an_error_at_that_record_only(tmp_path, huge: float) -> None:
    """A class id too large for an int64 (1e19) was a ValueError from the cast; one that fits
    (1e10) was reported without its record and dropped every good record of the batch."""
    from image_dataset.context import ValidationOptions
    from image_dataset.recordio import frame
    from image_dataset.recordio import pack as pack_record
    from image_dataset.validate import validate_path
    from tests.builders import jpeg, write_rec

    second = len(frame(pack_record(0.0, jpeg(8, 8), id=0)))  # the byte offset of record 1
    for channel in ("train", "validation"):
        write_rec(str(tmp_path / channel / f"{channel}.rec"), [(0, jpeg(8, 8)), (huge, jpeg(8, 8)), (1, jpeg(8, 8))])
    report = validate_path(str(tmp_path), ValidationOptions(workers=1, decode_images=False))
    errors = [(e["code"], e["location"]) for e in report["errors"]]  # type: ignore[index]
    assert errors == [
        ("TOO_MANY_CLASSES", f"train/train.rec#record 1 @byte {second}"),
        ("TOO_MANY_CLASSES", f"validation/validation.rec#record 1 @byte {second}"),
    ]
    message = report["errors"][0]["message"]  # type: ignore[index]
    assert message.startswith("class id ") and message.endswith("is not below the limit of 100000")
    assert report["channels"]["train"]["samples"] == 2 and report["num_classes"] == 2  # type: ignore[index]
