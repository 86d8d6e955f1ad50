"""The training job's pre-flight and input: validate the channels with the shared dataset core,
then hand the backend one RecordIO file (+ .idx) per channel. Channels that hold images are
packed here (the cloud workflow packs them before training); several .rec files are joined."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, List, NamedTuple, Optional

from image_dataset.pack import pack_channel
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


def dataset_root(job: TrainingJob, work_dir: str) -> str:
    """A folder whose train/ and validation/ are the job's channels. File and FastFile channels
    are used where they are; Pipe-mode channels (RecordIO streams) are spooled first."""
    for name in CHANNELS:
        if name not in job.channels:
            raise ClientError(f"the {name} channel is missing: the job needs train and validation channels")
    piped = [name for name in CHANNELS if job.input_modes.get(name) == "Pipe"]
    roots = {os.path.dirname(os.path.abspath(job.channels[name])) for name in CHANNELS}
    if not piped and len(roots) == 1:
        return roots.pop()
    root = os.path.join(work_dir, "channels")
    for name in CHANNELS:
        folder = os.path.join(root, name)
        if name in piped:
            os.makedirs(folder, exist_ok=True)
            spool_pipe(job.channels[name] + "_0", os.path.join(folder, name + ".rec"))
        else:
            os.makedirs(root, exist_ok=True)
            os.symlink(os.path.abspath(job.channels[name]), folder)
    return root


def _raise_if_invalid(report: Dict[str, Any]) -> None:
    if report["valid"]:
        return
    shown = "; ".join("{} {}: {}".format(e["code"], e["location"], e["message"]) for e in report["errors"][:5])
    more = sum(report["counts"].values()) - min(5, len(report["errors"])) - len(report["warnings"])
    raise ClientError("the dataset is invalid: {}{}".format(shown, f" (and {more} more)" if more > 0 else ""))


def _join_recordio(files: List[str], out_rec: str, out_idx: str) -> int:
    """Copy the records of ``files`` into one .rec with a fresh .idx; returns the count."""
    count = 0
    with open(out_rec + ".partial", "wb") as rec, open(out_idx + ".partial", "w") as idx:
        for path in files:
            with open(path, "rb") as f:
                reader = RecordIOReader(f, os.path.basename(path))
                start = 0
                while True:
                    item = reader.read()
                    if item is None:
                        break
                    end = reader.offset
                    f.seek(start)
                    idx.write(f"{count}\t{rec.tell()}\n")
                    rec.write(f.read(end - start))
                    f.seek(end)
                    start = end
                    count += 1
    os.replace(out_rec + ".partial", out_rec)
    os.replace(out_idx + ".partial", out_idx)
    return count


def _recordio_channel(files: List[str], work_dir: str, name: str) -> ChannelData:
    rec = files[0]
    idx = rec[: -len(".rec")] + ".idx"
    if len(files) == 1 and os.path.exists(idx):
        with open(idx) as f:
            samples = sum(1 for line in f if line.strip())
        return ChannelData(rec, idx, samples)
    out_rec, out_idx = os.path.join(work_dir, name + ".rec"), os.path.join(work_dir, name + ".idx")
    return ChannelData(out_rec, out_idx, _join_recordio(files, out_rec, out_idx))


def prepare(job: TrainingJob, options: ValidationOptions, work_dir: str) -> PreparedData:
    """Validate the channels (the report is kept in output/data), then make one RecordIO file
    per channel."""
    os.makedirs(work_dir, exist_ok=True)
    root = dataset_root(job, work_dir)
    index = load_index(root, options)
    os.makedirs(job.output_data_dir, exist_ok=True)
    with open(os.path.join(job.output_data_dir, "validation-report.json"), "w") as f:
        json.dump(index.report, f, indent=2)
    _raise_if_invalid(index.report)
    channels: Dict[str, ChannelData] = {}
    num_classes = options.num_classes or index.num_classes or 0
    for name in ("train", "validation"):
        if name in index.channels:
            prefix = os.path.join(work_dir, name)
            # shuffled as im2rec does: readers shard and shuffle in chunks of the file
            packed = pack_channel(index.channels[name][1], num_classes, prefix, root, shuffle=name == "train")
            channels[name] = ChannelData(prefix + ".rec", prefix + ".idx", packed.records)
        else:
            files = sorted(os.path.join(root, f) for f in index.report["channels"][name]["files"])
            channels[name] = _recordio_channel(files, work_dir, name)
    report = index.report
    return PreparedData(
        channels["train"], channels["validation"], num_classes, index.label_names, bool(report["multi_label"]), report
    )


def clean(work_dir: str) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)
