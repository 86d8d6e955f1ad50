"""What a scan of a .rec file yields: the metadata of consecutive records in columns
(:class:`RecordBatch`), gathered from the vector path and the per-record path (:class:`Rows`)."""

from __future__ import annotations

import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .recordio import unpack


class RecordBatch(NamedTuple):
    """Metadata of consecutive records. Row ``i`` describes record ``ordinals[i]``."""

    ordinals: np.ndarray  # int64, record number counted from the scan's start
    offsets: np.ndarray  # int64, byte offset of the record
    flags: np.ndarray  # uint32, IRHeader flag (number of vector labels)
    labels: np.ndarray  # float32, IRHeader scalar label
    ids: np.ndarray  # uint64, IRHeader id
    image_offsets: np.ndarray  # int64, byte offset of the image, -1 if not contiguous
    image_lengths: np.ndarray  # int64
    image_heads: np.ndarray  # uint32, first 4 image bytes little-endian (0 when shorter)
    vectors: Dict[int, Tuple[np.ndarray, np.ndarray]]  # flag -> (rows, float32 labels)
    images: Dict[int, bytes]  # row -> image bytes of records that are not contiguous

    def __len__(self) -> int:
        return len(self.ordinals)


class Rows:
    """Accumulates per-record rows from the vector path and the slow path into batches."""

    def __init__(self) -> None:
        self.parts: List[RecordBatch] = []

    def add(self, batch: RecordBatch) -> None:
        if len(batch):
            self.parts.append(batch)

    def take(self) -> Optional[RecordBatch]:
        parts, self.parts = self.parts, []
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        vectors: Dict[int, Tuple[List[np.ndarray], List[np.ndarray]]] = {}
        images: Dict[int, bytes] = {}
        base = 0
        for p in parts:
            for flag, (rows, vals) in p.vectors.items():
                lists = vectors.setdefault(flag, ([], []))
                lists[0].append(rows + base)
                lists[1].append(vals)
            for row, data in p.images.items():
                images[row + base] = data
            base += len(p)
        columns = [np.concatenate([p[i] for p in parts]) for i in range(8)]
        merged = {k: (np.concatenate(r), np.concatenate(v)) for k, (r, v) in vectors.items()}
        c = columns
        return RecordBatch(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], merged, images)


def one_record(ordinal: int, offset: int, record: bytes, where: str) -> RecordBatch:
    """A batch of one record that was read whole (multi-part records)."""
    header, image = unpack(record, where)
    vectors: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    if header.flag:
        vectors[header.flag] = (
            np.zeros(1, np.int64),
            np.array([header.label], np.float32).reshape(1, header.flag),
        )
    head = struct.unpack("<I", image[:4])[0] if len(image) >= 4 else 0
    return RecordBatch(
        np.array([ordinal], np.int64),
        np.array([offset], np.int64),
        np.array([header.flag], np.uint32),
        np.array([0.0 if header.flag else header.label], np.float32),
        np.array([header.id], np.uint64),
        np.array([-1], np.int64),
        np.array([len(image)], np.int64),
        np.array([head], np.uint32),
        vectors,
        {0: image},
    )
