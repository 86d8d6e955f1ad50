""".lst files as MXNet's im2rec reads and writes them: ``index<TAB>label[<TAB>label...]<TAB>path``.

One label column is a class id; several columns are a multi-hot vector (SageMaker's multi-label
.lst). Paths are relative to the image channel's root. The index becomes the RecordIO header id
(``uint64``) and the .idx key, which the validator's .idx reader holds as a signed 64-bit
integer (numpy ``int64``): it must be in ``0..MAX_INDEX``. A UTF-8 byte order mark at the start is skipped.
"""

from __future__ import annotations

import codecs
from typing import Iterator, Optional, Sequence

from .issues import IssueSink
from .samples import CLASS_ID, MULTI_HOT, Sample, resolve_path

MAX_INDEX = 2**63 - 1  # the largest id that both the IRHeader (u64) and a .idx key (i64) hold


def parse_lst(data: bytes, name: str, image_root: str, sink: IssueSink) -> Iterator[Sample]:
    """Samples of a .lst. ``name`` is the file's dataset-relative path (for locations);
    ``image_root`` the store path the image paths are relative to."""
    columns: Optional[int] = None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    for number, raw in enumerate(data.splitlines(), start=1):
        where = f"{name}:line {number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            sink.report("TEXT_ENCODING", f"byte {err.start} of the line is not UTF-8", where)
            continue
        if not line.strip():
            continue
        fields = [f.strip() for f in line.strip().split("\t")]  # as im2rec's read_list: tabs at the ends go too
        if len(fields) < 3:
            sink.report(
                "LST_SYNTAX",
                f"expected index, label(s) and path separated by tabs, found {len(fields)} field(s)",
                where,
            )
            continue
        try:
            index = int(fields[0])
            if not 0 <= index <= MAX_INDEX:
                raise ValueError
        except ValueError:
            shown = fields[0] if len(fields[0]) <= 40 else fields[0][:37] + "..."
            sink.report(
                "LST_BAD_INDEX",
                f"index {shown!r} is not an integer from 0 to {MAX_INDEX} (2**63 - 1, the largest RecordIO id "
                "that a .idx key holds)",
                where,
            )
            continue
        try:
            labels = tuple(float(v) for v in fields[1:-1])
        except ValueError:
            sink.report("LABEL_INVALID", f"labels {fields[1:-1]!r} are not numbers", where)
            continue
        if columns is None:
            columns = len(labels)
        elif len(labels) != columns:
            sink.report(
                "LST_COLUMNS",
                f"{len(labels)} label columns, earlier lines have {columns}",
                where,
            )
            continue
        path = resolve_path(image_root, fields[-1], where, sink)
        if path is None:
            continue
        yield Sample(path, labels, CLASS_ID if len(labels) == 1 else MULTI_HOT, where, index)


def format_lst_line(index: int, labels: Sequence[float], path: str) -> str:
    """One line as im2rec writes it (labels with ``%f``)."""
    return "{}\t{}\t{}\n".format(index, "\t".join(f"{v:f}" for v in labels), path)
