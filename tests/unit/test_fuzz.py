"""Property-based fuzzing: for any input, a parser yields samples or raises DatasetError,
and a collecting sink never lets anything escape."""

from __future__ import annotations

import contextlib
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_dataset.annotations import AnnotationsFile
from image_dataset.images import check_image
from image_dataset.issues import CollectingSink, DatasetError, IssueSink
from image_dataset.lst import parse_lst
from image_dataset.manifest import ManifestReader
from image_dataset.recordio import MAGIC_BYTES, RecordIOReader, frame, pack, parse_idx, parse_idx_fast, unpack
from image_dataset.recordio_scan import RecordIOScanner
from tests.builders import jpeg

FUZZ = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# bytes that look like the formats often enough to get past the first check
text_fields = st.text(alphabet=st.sampled_from(list("0123456789.-\t /ab\\:e\n\r")), max_size=60)
fuzz_text = st.one_of(st.binary(max_size=300), text_fields.map(lambda t: t.encode()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["path", "label", "labels", "images", "source-ref", "class", "class-metadata"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def strict(gen) -> None:
    with contextlib.suppress(DatasetError):
        list(gen)


@FUZZ
@given(fuzz_text)
def test_lst_parser(data: bytes) -> None:
    strict(parse_lst(data, "t.lst", "train", IssueSink()))
    list(parse_lst(data, "t.lst", "train", CollectingSink()))


@FUZZ
@given(
    st.one_of(fuzz_text, st.lists(json_values, max_size=5).map(lambda v: "\n".join(json.dumps(x) for x in v).encode()))
)
def test_manifest_parser(data: bytes) -> None:
    strict(ManifestReader("m", "", IssueSink(), allowed_buckets=("b",)).parse(data))
    list(ManifestReader("m", "", CollectingSink(), num_classes=3).parse(data))


@FUZZ
@given(st.one_of(fuzz_text, json_values.map(lambda v: json.dumps(v).encode())))
def test_annotations_parser(data: bytes) -> None:
    with contextlib.suppress(DatasetError):
        strict(AnnotationsFile(data, "a.json", "", IssueSink()).samples())
    list(AnnotationsFile(data, "a.json", "", CollectingSink()).samples())


@FUZZ
@given(fuzz_text)
def test_idx_parser(data: bytes) -> None:
    with contextlib.suppress(DatasetError):
        parse_idx(data, "x.idx", IssueSink())
    parse_idx(data, "x.idx", CollectingSink())


def recordio_bytes() -> st.SearchStrategy[bytes]:
    """Valid files of a few records, then damaged: bytes flipped, cut, or inserted."""
    records = st.lists(st.tuples(st.integers(0, 5), st.binary(max_size=40), st.booleans()), min_size=1, max_size=6).map(
        lambda rs: b"".join(
            frame(pack(label, (MAGIC_BYTES * 2 if magic else b"") + payload)) for label, payload, magic in rs
        )
    )
    edits = st.lists(
        st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=8), st.sampled_from(["set", "cut", "ins"])),
        max_size=3,
    )

    def damage(args) -> bytes:
        data, changes = args
        out = bytearray(data)
        for pos, blob, kind in changes:
            pos %= len(out) + 1
            if kind == "set":
                out[pos : pos + len(blob)] = blob
            elif kind == "cut":
                del out[pos : pos + len(blob)]
            else:
                out[pos:pos] = blob
        return bytes(out)

    return st.one_of(st.binary(max_size=200), st.tuples(records, edits).map(damage))


@FUZZ
@given(recordio_bytes(), st.sampled_from([64, 68, 128, 4096]))
def test_recordio_reader_and_scanner(data: bytes, chunk: int) -> None:
    try:
        for _, record in RecordIOReader(io.BytesIO(data), "x.rec"):
            unpack(record)
    except DatasetError:
        pass
    read = lambda o, n: data[o : o + n]  # noqa: E731
    try:
        for _ in RecordIOScanner(read, len(data), "x.rec", IssueSink(), chunk).scan():
            pass
    except DatasetError:
        pass
    sink = CollectingSink()
    total = sum(len(b) for b in RecordIOScanner(read, len(data), "x.rec", sink, chunk).scan())
    assert total <= len(data) // 32 + 1


@FUZZ
@given(st.binary(max_size=400), st.integers(0, 600), st.binary(max_size=30))
def test_image_check_never_raises(noise: bytes, pos: int, blob: bytes) -> None:
    data = bytearray(jpeg(16, 16))
    data[pos % len(data) : pos % len(data) + len(blob)] = blob
    for sample in (bytes(data), noise, b"\x89PNG\r\n\x1a\n" + noise):
        result = check_image(0, sample, 10_000_000)
        assert result.code is None or result.message


@FUZZ
@given(
    st.one_of(
        fuzz_text,
        st.lists(st.tuples(st.integers(-3, 10**12), st.integers(-3, 10**12)), max_size=8).map(
            lambda rows: "".join(f"{k}\t{o}\n" for k, o in rows).encode()
        ),
    )
)
def test_fast_idx_parse_agrees_with_the_line_parser(data: bytes) -> None:
    fast = parse_idx_fast(data)
    if fast is None:
        return
    sink = CollectingSink()
    entries = parse_idx(data, "x.idx", sink)
    assert sink.counts == {}
    assert fast[0].tolist() == [e.key for e in entries]
    assert fast[1].tolist() == [e.offset for e in entries]
