"""The dataset files of a local pipeline run: its version fingerprint, and records read back
from RecordIO (the held-out images the run classifies)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Set, Tuple

from image_dataset.layout import LABELS_FILE, RECORDIO, format_of_file
from image_dataset.recordio import RecordIOReader, unpack


def dataset_version(root: Path) -> str:
    """A fingerprint of the dataset's files (paths, sizes, modification times). A .rec file
    comes with its .idx and labels.json; a list file (.lst, manifest) with its folder, where
    its images are."""
    digest = hashlib.sha256()
    files: Iterator[Path] = root.rglob("*")
    if root.is_file():
        digest.update(f"{root.name}\n".encode())
        files = root.parent.rglob("*")
        if format_of_file(root.name) == RECORDIO:
            files = iter((root, root.with_suffix(".idx"), root.with_name(LABELS_FILE)))
        root = root.parent
    for path in sorted(p for p in files if p.is_file()):
        try:
            stat = path.stat()
            line = f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
        except OSError as err:  # vanished since the listing: validation reports what it finds
            line = f"{path.relative_to(root).as_posix()}\0{err.errno}\n"
        digest.update(line.encode(errors="surrogateescape"))
    return digest.hexdigest()


def _records(
    files: Sequence[Path], numbers: Optional[Set[int]], count: int, labels: Optional[List[str]]
) -> Iterator[Tuple[str, bytes, str, Optional[str]]]:
    """(name, image bytes, content type, true label) of up to ``count`` records of ``files``,
    numbered across the files in order; only those in ``numbers`` when given."""
    number = 0
    found = 0
    for rec in files:
        with open(rec, "rb") as f:
            for position, (_, record) in enumerate(RecordIOReader(f)):
                if numbers is None or number in numbers:
                    header, image = unpack(record)
                    label = header.label if isinstance(header.label, float) else None
                    truth = None
                    if label is not None:
                        truth = labels[int(label)] if labels and 0 <= int(label) < len(labels) else str(int(label))
                    yield f"{rec.name}#{position}", image, "application/x-image", truth
                    found += 1
                    if found >= count:
                        return
                number += 1


def spread(total: int, count: int) -> List[int]:
    """Up to ``count`` of the positions 0..total-1, evenly spread, in order."""
    return sorted({i * total // count for i in range(count)}) if count < total else list(range(total))
