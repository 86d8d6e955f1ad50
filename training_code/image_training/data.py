"""The training job's pre-flight and input: validate the channels with the shared dataset core,
then hand the backend one RecordIO file (+ .idx) per channel. Channels that hold images are
packed here (the cloud workflow packs them before training); several .rec files are joined."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple

from image_dataset.pack import pack_channels
from image_dataset.recordio import RecordIOReader
from image_dataset.validate import ValidationOptions, load_index

from .errors import ClientError
from .job import TrainingJob


class ChannelData(NamedTuple):
    rec: str
    idx: str
    samples: int


class PreparedData(NamedTuple):
    train: ChannelData
    validation: ChannelData
    num_classes: int
    label_names: Optional[List[str]]
    multi_label: bool
    report: Dict[str, Any]


CHANNELS = ("train", "validation")


def spool_pipe(fifo: str, target: str) -> int:
    """Copy the first epoch's stream of a Pipe-mode channel to a file; returns its size.
    Later epochs read the copy, so the training input stays one seekable RecordIO file."""
    if not os.path.exists(fifo):
        raise ClientError(f"the Pipe-mode channel's stream {fifo} does not exist")
    size = 0
    with open(fifo, "rb") as stream, open(target + ".partial", "wb") as out:
        while True:
            chunk = stream.read(8 << 20)
            if not chunk:
                break
            out.write(chunk)
            size += len(chunk)
    os.replace(target + ".partial", target)
    return size


def dataset_root(job: TrainingJob, work_dir: str, required: Tuple[str, ...] = CHANNELS) -> str:
    """A folder whose train/ and validation/ are the job's channels. File and FastFile channels
    are used where they are; Pipe-mode channels (RecordIO streams) are spooled first."""
    for name in required:
        if name not in job.channels:
            needed = " and ".join(required)
            raise ClientError(f"the {name} channel is missing: the job needs {needed} channels")
    present = [name for name in CHANNELS if name in job.channels]
    piped = [name for name in present if job.input_modes.get(name) == "Pipe"]
    roots = {os.path.dirname(os.path.abspath(job.channels[name])) for name in present}
    if not piped and len(roots) == 1:
        return roots.pop()
    root = os.path.join(work_dir, "channels")
    for name in present:
        folder = os.path.join(root, name)
        if name in piped:
            os.makedirs(folder, exist_ok=True)
            spool_pipe(job.channels[name] + "_0", os.path.join(folder, name + ".rec"))
        else:
            os.makedirs(root, exist_ok=True)
            os.symlink(os.path.abspath(job.channels[name]), folder)
    return root


def raise_if_invalid(report: Dict[str, Any]) -> None:
    """ClientError naming the first errors of an invalid validation report."""
    if report["valid"]:
        return
    shown = "; ".join("{} {}: {}".format(e["code"], e["location"], e["message"]) for e in report["errors"][:5])
    more = sum(report["counts"].values()) - min(5, len(report["errors"])) - len(report["warnings"])
    raise ClientError("the dataset is invalid: {}{}".format(shown, f" (and {more} more)" if more > 0 else ""))


def _copy_records(files: List[str], outputs: Dict[str, str], route: Callable[[int], str]) -> Dict[str, int]:
    """Copy the records of ``files``, unchanged, into ``outputs`` (key -> path prefix), record
    ``i`` going to ``route(i)``; each output gets a fresh .idx. Returns the count per output."""
    counts = {key: 0 for key in outputs}
    with contextlib.ExitStack() as stack:
        recs = {key: stack.enter_context(open(prefix + ".rec.partial", "wb")) for key, prefix in outputs.items()}
        idxs = {key: stack.enter_context(open(prefix + ".idx.partial", "w")) for key, prefix in outputs.items()}
        number = 0
        for path in files:
            with open(path, "rb") as f:
                reader = RecordIOReader(f, os.path.basename(path))
                start = 0
                while reader.read() is not None:
                    end = reader.offset
                    key = route(number)
                    f.seek(start)
                    idxs[key].write(f"{counts[key]}\t{recs[key].tell()}\n")
                    recs[key].write(f.read(end - start))
                    f.seek(end)
                    start = end
                    counts[key] += 1
                    number += 1
    for prefix in outputs.values():
        for suffix in (".rec", ".idx"):
            os.replace(prefix + suffix + ".partial", prefix + suffix)
    return counts


def held_out(samples: int, ratio: float) -> Set[int]:
    """The numbers of the train records (in file order) that a job without a validation channel
    holds out: ``ratio`` of them, a seeded random choice, the same on every run and every host.
    ClientError when that leaves no record for one side."""
    held_count = round(samples * ratio)
    if not 1 <= held_count < samples:
        raise ClientError(
            f"there is no validation channel and validation_split_ratio={ratio:g} of {samples} training "
            "records leaves no record for one side: add a validation channel or change the ratio"
        )
    return set(random.Random(0).sample(range(samples), held_count))


def split_channel(train: ChannelData, ratio: float, work_dir: str) -> Tuple[ChannelData, ChannelData]:
    """Hold out ``ratio`` of the train records (:func:`held_out`) as the validation channel,
    for jobs that have none."""
    held = held_out(train.samples, ratio)
    prefixes = {name: os.path.join(work_dir, f"split-{name}") for name in CHANNELS}
    counts = _copy_records([train.rec], prefixes, lambda i: "validation" if i in held else "train")
    train_part, validation_part = (
        ChannelData(prefixes[name] + ".rec", prefixes[name] + ".idx", counts[name]) for name in CHANNELS
    )
    return train_part, validation_part


def _recordio_channel(files: List[str], work_dir: str, name: str) -> ChannelData:
    rec = files[0]
    idx = rec[: -len(".rec")] + ".idx"
    if len(files) == 1 and os.path.exists(idx):
        with open(idx) as f:
            samples = sum(1 for line in f if line.strip())
        return ChannelData(rec, idx, samples)
    prefix = os.path.join(work_dir, name)
    count = _copy_records(files, {name: prefix}, lambda _: name)[name]
    return ChannelData(prefix + ".rec", prefix + ".idx", count)


def prepare(job: TrainingJob, options: ValidationOptions, work_dir: str, validation_split: float = 0.0) -> PreparedData:
    """Validate the channels (the report is kept in output/data), then make one RecordIO file
    per channel. With ``validation_split`` > 0 the validation channel may be missing: that share
    of train is held out instead."""
    os.makedirs(work_dir, exist_ok=True)
    root = dataset_root(job, work_dir, ("train",) if validation_split > 0 else CHANNELS)
    index = load_index(root, options)
    os.makedirs(job.output_data_dir, exist_ok=True)
    with open(os.path.join(job.output_data_dir, "validation-report.json"), "w") as f:
        json.dump(index.report, f, indent=2)
    raise_if_invalid(index.report)
    channels: Dict[str, ChannelData] = {}
    num_classes = options.num_classes or index.num_classes or 0
    # image channels: train shuffled as im2rec does (readers shard and shuffle in chunks of the file)
    packed = pack_channels(index, os.path.join(work_dir, "packed"))
    for name in CHANNELS:
        if name in packed:
            prefix = packed[name].prefix
            channels[name] = ChannelData(prefix + ".rec", prefix + ".idx", packed[name].records)
        elif name in index.report["channels"]:
            files = sorted(os.path.join(root, f) for f in index.report["channels"][name]["files"])
            channels[name] = _recordio_channel(files, work_dir, name)
    if "validation" not in channels:
        channels["train"], channels["validation"] = split_channel(channels["train"], validation_split, work_dir)
    report = index.report
    return PreparedData(
        channels["train"], channels["validation"], num_classes, index.label_names, bool(report["multi_label"]), report
    )


def clean(work_dir: str) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)
