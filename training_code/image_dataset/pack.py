"""Packing images into RecordIO (.rec + .idx + .lst), as MXNet's im2rec does, on every core.

Output is written to temporary files and renamed at the end, so a failed run leaves nothing
half-written. Records are ``IRHeader(flag, label, index, 0)`` + the encoded image; the .idx key
and the header id are the sample's .lst index, as im2rec writes them.
"""

from __future__ import annotations

import io
import json
import os
import random
from multiprocessing import Pool
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from PIL import Image

from .issues import DatasetError
from .layout import LABELS_FILE
from .lst import format_lst_line
from .recordio import RecordIOWriter, pack
from .samples import CLASS_ID, Sample, multi_hot

if TYPE_CHECKING:
    from .validate import DatasetIndex

BILINEAR = getattr(Image, "Resampling", Image).BILINEAR  # Pillow < 9.1 has no Resampling


class PackOptions(NamedTuple):
    resize: int = 0  # shorter side in pixels; 0 keeps the size
    quality: int = 95  # JPEG quality, or PNG compression level when <= 9
    encoding: str = ".jpg"
    pass_through: bool = False  # store the file's bytes unchanged
    shuffle: bool = True
    train_ratio: float = 1.0
    seed: int = 100  # im2rec's seed


class PackJob(NamedTuple):
    key: int
    path: str  # local file path
    labels: Tuple[float, ...]


def encode_image(data: bytes, options: PackOptions) -> bytes:
    """Decode, convert to RGB, resize the shorter side to ``options.resize``, encode."""
    if options.pass_through:
        return data
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if options.resize:
        width, height = image.size
        if height > width:
            size = (options.resize, height * options.resize // width)
        else:
            size = (width * options.resize // height, options.resize)
        image = image.resize(size, BILINEAR)
    out = io.BytesIO()
    if options.encoding == ".png":
        image.save(out, format="PNG", compress_level=options.quality if options.quality <= 9 else 3)
    else:
        image.save(out, format="JPEG", quality=options.quality)
    return out.getvalue()


def _encode_job(args: Tuple[PackJob, PackOptions]) -> Tuple[int, Optional[bytes], str]:
    job, options = args
    try:
        with open(job.path, "rb") as f:
            data = f.read()
        image = encode_image(data, options)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return job.key, None, f"{job.path}: {err}"
    label: object = job.labels[0] if len(job.labels) == 1 else list(job.labels)
    return job.key, pack(label, image, id=job.key), ""  # type: ignore[arg-type]


class PackResult(NamedTuple):
    prefix: str
    records: int


def _labels(sample: Sample, num_classes: int) -> Tuple[float, ...]:
    if sample.kind == CLASS_ID:
        return sample.labels
    return tuple(multi_hot(sample, num_classes))


def plan(
    samples: Sequence[Sample], num_classes: int, options: PackOptions
) -> List[Tuple[int, Sample, Tuple[float, ...]]]:
    """(index, sample, labels) in output order: indices in input order, then shuffled."""
    items = [(s.key if s.key is not None else i, s, _labels(s, num_classes)) for i, s in enumerate(samples)]
    if options.shuffle:
        random.Random(options.seed).shuffle(items)
    return items


def split(
    items: List[Tuple[int, Sample, Tuple[float, ...]]], prefix: str, train_ratio: float
) -> List[Tuple[str, list]]:
    if train_ratio >= 1.0:
        return [(prefix, items)]
    sep = int(len(items) * train_ratio)
    return [(prefix + "_train", items[:sep]), (prefix + "_val", items[sep:])]


def write_pack(
    prefix: str,
    items: List[Tuple[int, Sample, Tuple[float, ...]]],
    local_path: Callable[[str], str],
    lst_path: Callable[[Sample], str],
    options: PackOptions,
    workers: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> PackResult:
    """Write ``prefix.rec``, ``.idx`` and ``.lst`` for ``items``; all or nothing."""
    finals = [prefix + ext for ext in (".rec", ".idx", ".lst")]
    temps = [f + ".partial" for f in finals]
    jobs = [(PackJob(index, local_path(s.path), labels), options) for index, s, labels in items]
    done = 0
    try:
        with RecordIOWriter(temps[0], temps[1]) as writer, open(temps[2], "w", encoding="utf-8") as lst:
            for (index, sample, labels), (_, record, error) in zip(items, _encoded(jobs, workers)):
                if record is None:
                    raise DatasetError("IMG_CORRUPT", "cannot pack the image: " + error, sample.location)
                writer.write(record, key=index)
                lst.write(format_lst_line(index, labels, lst_path(sample)))
                done += 1
                if progress:
                    progress(done, len(items))
        for temp, final in zip(temps, finals):
            os.replace(temp, final)
    finally:
        for temp in temps:
            if os.path.exists(temp):
                os.remove(temp)
    return PackResult(prefix, len(items))


def _encoded(jobs: list, workers: Optional[int]) -> Iterator[Tuple[int, Optional[bytes], str]]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) < 32:
        for job in jobs:
            yield _encode_job(job)
        return
    with Pool(workers) as pool:
        yield from pool.imap(_encode_job, jobs, chunksize=16)


def pack_channel(
    samples: Sequence[Sample],
    num_classes: int,
    prefix: str,
    root: str,
    shuffle: bool,
    progress: Optional[Callable[[int, int], None]] = None,
) -> PackResult:
    """A channel's images, stored unchanged, as ``prefix.rec/.idx/.lst`` (paths relative to
    ``root``): what training reads when a channel is not RecordIO already."""
    items = plan(samples, num_classes, PackOptions(shuffle=shuffle))
    return write_pack(
        prefix,
        items,
        lambda p: os.path.join(root, p),
        lambda s: s.path,
        PackOptions(pass_through=True),
        progress=progress,
    )


def pack_channels(
    index: DatasetIndex, output: str, progress: Optional[Callable[[str, int, int], None]] = None
) -> Dict[str, PackResult]:
    """Every image channel of a validated dataset as ``output/<channel>/<channel>.rec/.idx/.lst``
    plus ``labels.json`` (a RecordIO channel folder); RecordIO channels are left out. Training
    shuffles: the train channel is shuffled as im2rec does."""
    root = index.store.local_path("")
    if root is None:
        raise ValueError("packing needs the dataset on a local disk")
    packed: Dict[str, PackResult] = {}
    for name, (_, samples) in sorted(index.channels.items()):
        folder = os.path.join(output, name)
        os.makedirs(folder, exist_ok=True)
        report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
        packed[name] = pack_channel(
            samples, index.num_classes or 0, os.path.join(folder, name), root, name == "train", report
        )
        if index.label_names:
            write_label_names(folder, index.label_names)
    return packed


def write_label_names(folder: str, names: Sequence[str]) -> str:
    """``labels.json`` in the folder of packed .rec files: the class names (index = class id),
    which RecordIO records cannot carry. The validator and the training jobs read it."""
    path = os.path.join(folder, LABELS_FILE)
    with open(path + ".partial", "w", encoding="utf-8") as f:
        json.dump(list(names), f, ensure_ascii=False, indent=1)
    os.replace(path + ".partial", path)
    return path
