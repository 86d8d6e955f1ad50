"""Packing images into RecordIO (.rec + .idx + .lst), as MXNet's im2rec does, on every core.

Output is written to temporary files and renamed at the end, so a failed run leaves nothing
half-written. Records are ``IRHeader(flag, label, index, 0)`` + the encoded image; the .idx key
and the header id are the sample's .lst index, as im2rec writes them.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
from multiprocessing import Pool
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from PIL import Image

from . import json_text
from .images import DEFAULT_MAX_PIXELS, default_signals, resized
from .issues import DatasetError
from .layout import LABELS_FILE
from .lst import format_lst_line
from .pixels import PixelError, decode_opened, open_image, portable, resize_linear
from .recordio import RecordIOWriter, pack
from .samples import CLASS_ID, Sample, record_labels
from .store import access_problem, open_file

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
    max_pixels: int = DEFAULT_MAX_PIXELS  # the decompression-bomb cap validation applied


class PackJob(NamedTuple):
    key: int
    path: str  # local file path
    labels: Tuple[float, ...]
    multi_label: bool = False  # labels are a vector (IRHeader flag = its length), even of one value


class PackError(ValueError):
    """Options that cannot pack this data (an empty channel): a usage error."""


def encode_image(data: bytes, options: PackOptions) -> bytes:
    """Decode as im2rec does (OpenCV's imread: image_dataset.pixels), resize the shorter side to
    ``options.resize`` with OpenCV's bilinear interpolation, encode. ``pass_through`` keeps the
    file's bytes, except where decoders other than OpenCV 4 (TensorFlow's, MXNet's built-in
    OpenCV) would see other pixels or none (:func:`pixels.portable`): re-encoded upright."""
    image = open_image(data, options.max_pixels)
    if options.pass_through and portable(image, data):
        return data
    pixels = decode_opened(image, data, 3).pixels
    if options.resize:
        height, width = pixels.shape[:2]
        size = resized(width, height, options.resize)
        if size[0] * size[1] > options.max_pixels:  # --resize 100000 would need terabytes
            raise PixelError(
                "IMG_TOO_LARGE",
                f"resized to {size[0]}x{size[1]} = {size[0] * size[1]} pixels, over the cap of {options.max_pixels}",
            )
        pixels = resize_linear(pixels, *size)
    image = Image.fromarray(pixels)
    out = io.BytesIO()
    if options.encoding == ".png":
        image.save(out, format="PNG", compress_level=options.quality if options.quality <= 9 else 3)
    else:
        image.save(out, format="JPEG", quality=options.quality)
    return out.getvalue()


def _encode_job(args: Tuple[PackJob, PackOptions]) -> Tuple[int, Optional[bytes], str, str]:
    """(key, the record or None, issue code, message) for one image."""
    job, options = args
    try:
        with open_file(job.path) as f:
            data = f.read()
    except OSError as err:  # gone or unreadable since validation read it
        code, message = access_problem(err, "image")
        return job.key, None, code, message
    try:
        image = encode_image(data, options)
    except PixelError as err:
        return job.key, None, err.code, f"cannot pack the image: {err}"
    except (OSError, ValueError, SyntaxError) as err:
        return job.key, None, "IMG_CORRUPT", f"cannot pack the image: {err}"
    label: object = list(job.labels) if job.multi_label else job.labels[0]
    return job.key, pack(label, image, id=job.key), "", ""  # type: ignore[arg-type]


class PackResult(NamedTuple):
    prefix: str
    records: int


def plan(
    samples: Sequence[Sample], num_classes: int, options: PackOptions
) -> List[Tuple[int, Sample, Tuple[float, ...]]]:
    """(index, sample, labels) in output order: indices in input order, then shuffled. The
    labels are what the record carries (:func:`samples.record_labels`)."""
    items = [(s.key if s.key is not None else i, s, record_labels(s, num_classes)) for i, s in enumerate(samples)]
    if options.shuffle:
        random.Random(options.seed).shuffle(items)
    return items


def split(
    items: List[Tuple[int, Sample, Tuple[float, ...]]], prefix: str, train_ratio: float
) -> List[Tuple[str, list]]:
    """``prefix`` with every item, or ``prefix_train`` and ``prefix_val`` cut at ``train_ratio``;
    :class:`PackError` when a part would be empty."""
    if train_ratio >= 1.0:
        return [(prefix, items)]
    sep = int(len(items) * train_ratio)
    if len(items) < 2:
        raise PackError(
            f"--train-ratio {train_ratio:g}: {len(items)} sample(s) cannot be split into train and validation"
        )
    if sep == 0 or sep == len(items):
        raise PackError(
            "--train-ratio {:g} of {} samples leaves the {} part empty; it must be at least {:.4g}".format(
                train_ratio, len(items), "train" if sep == 0 else "validation", 1 / len(items)
            )
        )
    return [(prefix + "_train", items[:sep]), (prefix + "_val", items[sep:])]


Item = Tuple[int, Sample, Tuple[float, ...]]


class Outputs:
    """Files written under ``<final>.partial`` and moved onto their final names together: all or
    nothing. A final name held by a folder is refused before anything is written; a stale
    ``.partial`` (a crashed run's, or a named pipe that would block the open) is removed first;
    a move that fails puts back every file already moved, and the files they replaced."""

    def __init__(self) -> None:
        self.pairs: List[Tuple[str, str]] = []

    def temp(self, final: str) -> str:
        """The name to write ``final`` under until :meth:`publish`."""
        if os.path.isdir(final):
            raise OSError(errno.EISDIR, "a folder has the name of a file to write; nothing was written", final)
        temp = final + ".partial"
        if os.path.lexists(temp):
            os.remove(temp)
        self.pairs.append((temp, final))
        return temp

    def publish(self) -> None:
        moved: List[Tuple[str, str, Optional[str]]] = []  # (temp, final, where the old final went)
        try:
            for temp, final in self.pairs:
                previous = None
                if os.path.lexists(final):
                    previous = final + ".previous"
                    os.replace(final, previous)
                moved.append((temp, final, previous))
                os.replace(temp, final)
        except OSError:
            for temp, final, previous in reversed(moved):
                if os.path.lexists(final) and not os.path.lexists(temp):
                    os.replace(final, temp)
                if previous is not None and os.path.lexists(previous):
                    os.replace(previous, final)
            raise
        for _, _, previous in moved:
            if previous is not None:
                os.remove(previous)

    def discard(self) -> None:
        """Remove what was written and not published."""
        for temp, _ in self.pairs:
            if os.path.lexists(temp):
                os.remove(temp)


def path_in_channel(path: str, root: str) -> str:
    """A sample's store path as a .lst line gives it: relative to its channel's image root
    (what im2rec's root argument and the .lst readers join it onto), or as it is outside it."""
    return path[len(root) + 1 :] if root and path.startswith(root + "/") else path


def write_packs(
    parts: Sequence[Tuple[str, List[Item]]],
    local_path: Callable[[str], str],
    lst_path: Callable[[str, Sample], str],
    options: PackOptions,
    workers: Optional[int] = None,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> List[PackResult]:
    """Write ``prefix.rec``, ``.idx`` and ``.lst`` for each (prefix, items) part; all parts or
    nothing (:class:`Outputs`). ``lst_path(prefix, sample)`` is the sample's path on the part's
    .lst lines; ``progress(prefix, done, total)`` after each record."""
    outputs = Outputs()
    try:
        temps = [[outputs.temp(prefix + ext) for ext in (".rec", ".idx", ".lst")] for prefix, _ in parts]
        for (prefix, items), (rec, idx, lst_file) in zip(parts, temps):
            jobs = [(PackJob(i, local_path(s.path), labels, s.kind != CLASS_ID), options) for i, s, labels in items]
            with RecordIOWriter(rec, idx) as writer, open(lst_file, "w", encoding="utf-8") as lst:
                for done, ((index, sample, labels), (_, record, code, message)) in enumerate(
                    zip(items, _encoded(jobs, workers)), start=1
                ):
                    if record is None:
                        raise DatasetError(code, message, sample.location)
                    writer.write(record, key=index)
                    lst.write(format_lst_line(index, labels, lst_path(prefix, sample)))
                    if progress:
                        progress(prefix, done, len(items))
        outputs.publish()
    finally:
        outputs.discard()
    return [PackResult(prefix, len(items)) for prefix, items in parts]


def write_pack(
    prefix: str,
    items: List[Item],
    local_path: Callable[[str], str],
    lst_path: Callable[[Sample], str],
    options: PackOptions,
    workers: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> PackResult:
    """Write ``prefix.rec``, ``.idx`` and ``.lst`` for ``items``; all or nothing."""
    report = (lambda _, done, total: progress(done, total)) if progress else None
    return write_packs([(prefix, items)], local_path, lambda _, s: lst_path(s), options, workers, report)[0]


def _encoded(jobs: list, workers: Optional[int]) -> Iterator[Tuple[int, Optional[bytes], str, str]]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) < 32:
        for job in jobs:
            yield _encode_job(job)
        return
    with Pool(workers, initializer=default_signals) as pool:
        yield from pool.imap(_encode_job, jobs, chunksize=16)


def pack_channel(
    samples: Sequence[Sample],
    num_classes: int,
    prefix: str,
    root: str,
    shuffle: bool,
    progress: Optional[Callable[[int, int], None]] = None,
    options: Optional[PackOptions] = None,
    workers: Optional[int] = None,
) -> PackResult:
    """A channel's images as ``prefix.rec/.idx/.lst`` (paths relative to ``root``), stored
    unchanged unless ``options`` say otherwise: what training reads when a channel is not
    RecordIO already."""
    options = (options or PackOptions(pass_through=True))._replace(shuffle=shuffle)
    items = plan(samples, num_classes, options)
    return write_pack(prefix, items, lambda p: os.path.join(root, p), lambda s: s.path, options, workers, progress)


def pack_channels(
    index: DatasetIndex,
    output: str,
    progress: Optional[Callable[[str, int, int], None]] = None,
    options: Optional[PackOptions] = None,
    workers: Optional[int] = None,
) -> Dict[str, PackResult]:
    """Every image channel of a validated dataset as ``output/<channel>/<channel>.rec/.idx/.lst``
    plus ``labels.json`` (a RecordIO channel folder); RecordIO channels are left out. The .lst
    paths are relative to the channel's image root, as in a dataset's own lists. All
    channels use the dataset's one label map (``index.num_classes``, ``index.label_names``).
    Training shuffles: the train channel is shuffled as im2rec does (when ``options.shuffle``).
    A ``labels.json`` already there with other names stops the run before anything is written;
    the records of all channels are written together, all or nothing (:func:`write_packs`)."""
    options = options or PackOptions(pass_through=True)
    root = index.store.local_path("")
    if root is None:
        raise ValueError("packing needs the dataset on a local disk")
    folders = {name: os.path.join(output, name) for name in index.channels}
    if index.label_names:
        for folder in folders.values():
            check_label_names(folder, index.label_names)
    parts, channel_of, roots = [], {}, {}
    for name, (channel, samples) in sorted(index.channels.items()):
        os.makedirs(folders[name], exist_ok=True)
        prefix = os.path.join(folders[name], name)
        channel_of[prefix], roots[prefix] = name, channel.root
        channel_options = options._replace(shuffle=options.shuffle and name == "train")
        parts.append((prefix, plan(samples, index.num_classes or 0, channel_options)))
    report = (lambda prefix, done, total: progress(channel_of[prefix], done, total)) if progress else None
    results = write_packs(
        parts,
        lambda p: os.path.join(root, p),
        lambda prefix, s: path_in_channel(s.path, roots[prefix]),
        options,
        workers,
        report,
    )
    if index.label_names:
        for folder in folders.values():
            write_label_names(folder, index.label_names)
    return dict(zip(sorted(index.channels), results))


def check_label_names(folder: str, names: Sequence[str]) -> None:
    """Raise ``LABEL_NAMES_INVALID`` when ``folder`` holds a ``labels.json`` that is not the
    list ``names``: packed records beside it would be named wrongly, and it is never
    overwritten silently. The same list is fine."""
    path = os.path.join(folder, LABELS_FILE)
    if not os.path.lexists(path):
        return
    try:
        with open_file(path) as f:  # not a named pipe, which would wait for a writer
            existing = json_text.loads(f.read().decode("utf-8-sig"))
    except (OSError, ValueError) as err:
        raise DatasetError(
            "LABEL_NAMES_INVALID", f"already exists and cannot be read as a list of names ({err}); not replaced", path
        ) from None
    if existing != list(names):
        shown = existing[:10] if isinstance(existing, list) else existing
        raise DatasetError(
            "LABEL_NAMES_INVALID",
            f"already exists with other class names ({json.dumps(shown, ensure_ascii=False)[:200]}) than this "
            f"dataset's ({json.dumps(list(names[:10]), ensure_ascii=False)[:200]}); records packed beside it would be "
            "named wrongly, so it is not replaced: pack into another folder or remove it",
            path,
        )


def write_label_names(folder: str, names: Sequence[str]) -> str:
    """``labels.json`` in the folder of packed .rec files: the class names (index = class id),
    which RecordIO records cannot carry. The validator and the training jobs read it. One that
    is there already must hold the same names (:func:`check_label_names`)."""
    check_label_names(folder, names)
    path = os.path.join(folder, LABELS_FILE)
    outputs = Outputs()
    try:
        with open(outputs.temp(path), "w", encoding="utf-8") as f:
            json.dump(list(names), f, ensure_ascii=False, indent=1)
        outputs.publish()
    finally:
        outputs.discard()
    return path
