"""Test data made on the fly: images, datasets and RecordIO files. Nothing is downloaded."""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from PIL import Image

from image_dataset.lst import format_lst_line
from image_dataset.recordio import MAGIC_BYTES, RecordIOWriter, pack

Label = Union[float, Sequence[float]]


def jpeg(width: int = 32, height: int = 32, color: Tuple[int, int, int] = (200, 30, 30), quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def png(width: int = 32, height: int = 32, color: Tuple[int, int, int] = (30, 200, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def noisy_jpeg(width: int, height: int, seed: int) -> bytes:
    """A JPEG with real texture (random pixels), so its size is like a photo's."""
    rng = __import__("random").Random(seed)
    data = bytes(rng.getrandbits(8) for _ in range(width * height * 3))
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), data).save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A small PNG that announces width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\0" + b"\0" * width  # filter byte + grayscale pixels
    raw = b"".join(compressor.compress(row) for _ in range(200)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def magic_payload(image: bytes) -> bytes:
    """An image followed by bytes holding the RecordIO magic at 4-byte-aligned offsets
    (after the 24-byte header), so MXNet's writer must split the record into parts."""
    pad = (-len(image)) % 4
    return image + b"\0" * pad + MAGIC_BYTES + b"abcd" + MAGIC_BYTES + MAGIC_BYTES + b"xy"


def write_rec(
    path: str,
    records: Iterable[Tuple[Label, bytes]],
    with_idx: bool = True,
    ids: Optional[Sequence[int]] = None,
) -> str:
    """Write image records (label, image bytes); id = position unless ``ids`` is given."""
    idx = path[: -len(".rec")] + ".idx" if with_idx else None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with RecordIOWriter(path, idx) as writer:
        for i, (label, image) in enumerate(records):
            rec_id = i if ids is None else ids[i]
            writer.write(pack(label, image, id=rec_id), key=rec_id)
    return path


def write_file(path: str, data: Union[bytes, str]) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def folder_dataset(
    root: str, classes: Dict[str, int], channels: Sequence[str] = ("train", "validation"), size: int = 32
) -> str:
    """``root/<channel>/<class>/<n>.jpg`` with distinct colours per class."""
    for c, channel in enumerate(channels):
        for k, (name, count) in enumerate(sorted(classes.items())):
            for n in range(count if c == 0 else max(1, count // 2)):
                color = ((k * 70) % 256, (n * 13) % 256, 128)
                write_file(os.path.join(root, channel, name, f"{n:03d}.jpg"), jpeg(size, size, color))
    return root


def lst_dataset(
    root: str,
    rows: List[Tuple[int, Sequence[float], str]],
    image_bytes: Optional[bytes] = None,
    separate_channel: bool = False,
) -> str:
    """Images under root/train plus a .lst in train/ (or in train_lst/)."""
    lines = []
    for index, labels, rel in rows:
        lines.append(format_lst_line(index, labels, rel))
        if not rel.startswith("/") and ".." not in rel:
            write_file(os.path.join(root, "train", rel), image_bytes or jpeg())
    lst_dir = "train_lst" if separate_channel else "train"
    write_file(os.path.join(root, lst_dir, "train.lst"), "".join(lines))
    return root


def manifest_lines(rows: Iterable[Dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def tar_gz(files: Dict[str, bytes]) -> bytes:
    """A gzip tarball of ``files`` (member name -> bytes), in order: a model.tar.gz or a
    training job's output.tar.gz."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


# a serving answer with every field the verbose answer has (docs/API.md), for the batch tests
VERBOSE_ANSWER: Dict[str, Any] = {
    "probabilities": [0.7, 0.2, 0.1],
    "labels": ["cat", "dog", "fox"],
    "predicted_label": "cat",
    "top_k": [{"label": "cat", "probability": 0.7}, {"label": "dog", "probability": 0.2}],
}
