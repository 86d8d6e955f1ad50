"""Validation of a dataset too large for one process, in three steps that other machines may
run (the workflow runs them as Lambdas under a Distributed Map):

1. :func:`plan` reads what is cheap to read in one place (the layout, the list files, the
   labels, every .rec's size), checks it, and cuts the expensive work into shards: byte ranges
   of each .rec, split at record starts, and chunks of the image files the lists name.
2. :func:`run_shard` checks one shard: the records in its byte range (framing, labels, images)
   or the images of its chunk. Its :class:`ShardResult` is JSON plus, for records, three
   numbers per record (:class:`~image_dataset.validate.Records`).
3. :func:`merge` adds the shards up in file order, renumbers the records, runs the checks over
   whole files (.idx, duplicate ids) and channels, and returns the same report as
   :meth:`Validator.run <image_dataset.validate.Validator.run>` gives for the same dataset.

A shard boundary is the first aligned magic number at or after a multiple of the shard size.
When a record's payload holds an unsplit magic number there (``REC_UNESCAPED_MAGIC``), the
boundary falls inside that record: the previous shard's scan then ends past the next shard's
start, and :func:`merge` scans the rest of that shard again from where the record really ends.
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np

from .channel_stats import LabelShape
from .layout import Channel
from .recordio_scan import REPEATED, find_record_start
from .store import Store
from .validate import Records, ValidationOptions, Validator

RECORDS = "records"
IMAGES = "images"
DEFAULT_SHARD_BYTES = 1 << 30
DEFAULT_SHARD_IMAGES = 5000


class Plan(NamedTuple):
    """The plan step's result: the validator's state, the shards, and each image shard's files."""

    state: Dict[str, Any]
    shards: List[Dict[str, Any]]
    images: Dict[int, List[Tuple[str, str]]]  # shard index -> (location, path)


class ShardResult(NamedTuple):
    partial: Dict[str, Any]  # JSON-ready: what the shard found (stats, problems, scan position)
    records: Optional[Records]  # the good records of a records shard


def dataset_size(store: Store) -> Tuple[int, int]:
    """(bytes, files) of everything in the store: what decides whether to shard."""
    total = files = 0
    try:
        for path in store.walk_files(""):
            files += 1
            with contextlib.suppress(OSError):  # the validation reports what cannot be read
                total += store.size(path)
    except OSError:
        pass  # a folder that cannot be listed: the validation reports it
    return total, files


def needs_shards(store: Store, shard_bytes: int, shard_images: int) -> bool:
    """Whether the dataset is more than one shard's work."""
    total, files = dataset_size(store)
    return total > shard_bytes or files > shard_images


def byte_ranges(store: Store, rec: str, size: int, shard_bytes: int) -> List[Tuple[int, int]]:
    """``[start, end)`` ranges of about ``shard_bytes`` that cover a .rec, each starting at a
    record start (an aligned magic number whose flag begins a record)."""

    def read_at(offset: int, length: int) -> bytes:
        return store.read_at(rec, offset, length)

    starts = [0]
    for cut in range(shard_bytes, size, shard_bytes):
        start = find_record_start(read_at, size, max(cut, starts[-1] + 4))
        if start >= size:
            break
        if start > starts[-1]:
            starts.append(start)
    return list(zip(starts, starts[1:] + [size]))


def plan(
    store: Store,
    options: ValidationOptions,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    shard_images: int = DEFAULT_SHARD_IMAGES,
    display_name: str = ".",
) -> Plan:
    """Step 1: check the layout and the lists, and cut the rest into shards."""
    validator = Validator(store, options, display_name=display_name)
    shards: List[Dict[str, Any]] = []
    images: Dict[int, List[Tuple[str, str]]] = {}

    def cut(rec: str, size: int) -> List[Tuple[int, int]]:
        return byte_ranges(store, rec, size, shard_bytes)

    for channel in validator.channels():
        planned = validator.plan_channel(channel, cut)
        for rec, start, end in planned.ranges:
            shards.append(dict(index=len(shards), kind=RECORDS, channel=channel.name, file=rec, start=start, end=end))
        files = planned.images
        for first in range(0, len(files), shard_images):
            images[len(shards)] = files[first : first + shard_images]
            shards.append(dict(index=len(shards), kind=IMAGES, channel=channel.name, count=len(images[len(shards)])))
    return Plan(validator.to_state(), shards, images)


def run_shard(
    store: Store,
    options: ValidationOptions,
    shard: Mapping[str, Any],
    images: Optional[List[Tuple[str, str]]] = None,
    start: Optional[int] = None,
    shape: Optional[LabelShape] = None,
) -> ShardResult:
    """Step 2: check one shard (``start`` overrides a records shard's first byte; ``shape`` is
    the label shape the records before it set, for a shard checked again at the merge)."""
    validator = Validator(store, options)
    channel = Channel(shard["channel"], shard["kind"], "", ())  # all a shard knows of its channel
    if shard["kind"] == IMAGES:
        return ShardResult(validator.check_images(channel, images or []), None)
    begin = shard["start"] if start is None else start
    partial, records = validator.check_records(channel, shard["file"], begin, shard["end"], shape)
    return ShardResult(partial, records)


def _renumber(rec: str, base: int) -> Callable[[str], str]:
    """Rewrites ``rec#record N`` locations of a shard to the record's number in the file."""
    pattern = re.compile("^" + re.escape(rec) + r"#record (\d+)")
    return lambda where: pattern.sub(lambda m: f"{rec}#record {int(m.group(1)) + base}", where, count=1)


def merge(
    store: Store,
    options: ValidationOptions,
    planned: Plan,
    results: Callable[[int], ShardResult],
) -> Dict[str, Any]:
    """Step 3: add up the shard results (``results(index)``) and return the report."""
    validator = Validator.from_state(store, options, planned.state)
    for shard in planned.shards:
        if shard["kind"] == IMAGES:
            validator.merge(shard["channel"], results(shard["index"]).partial)
    for rec, file_shards in _by_file(planned.shards):
        _merge_file(validator, store, options, rec, file_shards, results)
    return validator.finish()


def _by_file(shards: List[Dict[str, Any]]) -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
    files: Dict[str, List[Dict[str, Any]]] = {}
    for shard in shards:
        if shard["kind"] == RECORDS:
            files.setdefault(shard["file"], []).append(shard)
    yield from files.items()


def _merge_file(
    validator: Validator,
    store: Store,
    options: ValidationOptions,
    rec: str,
    shards: List[Dict[str, Any]],
    results: Callable[[int], ShardResult],
) -> None:
    """Merge the shards of one .rec in file order, numbering their records from the file's
    start, then run the checks over the whole file."""
    records: List[Records] = []
    base = 0
    expected = 0  # where the previous shard's scan stopped: the next record starts there
    repeated = [0, 0]
    for shard in shards:
        if expected >= shard["end"]:
            continue  # a record of the previous shard reaches past this whole shard
        result = results(shard["index"])
        if result.partial["start"] != expected:  # the cut fell inside a record: scan from its end
            result = run_shard(store, options, shard, start=expected)
        stats = validator.stats[shard["channel"]]
        part = result.partial["stats"]
        if stats.refuses((part["multi_label"], part["vector_length"])):
            # its labels differ in shape from the records before it: checked again knowing that
            # shape, its records of the other shape are refused (and not counted) where one scan
            # refuses them, each with its record's location
            result = run_shard(store, options, shard, start=expected, shape=stats.shape)
        partial = result.partial
        skip = [code for code, seen in zip(REPEATED, repeated) if seen]  # each file reports its first case once
        validator.merge(shard["channel"], partial, rec, _renumber(rec, base), skip)
        assert result.records is not None
        ordinals, offsets, ids = result.records
        records.append(Records(ordinals + base, offsets, ids))
        base += partial["count"]
        expected = partial["stopped_at"]
        repeated = [a + b for a, b in zip(repeated, partial["repeated"])]
    validator.merge_file(rec, Records(*(np.concatenate(column) for column in zip(*records))), repeated)


def records_to_bytes(records: Records) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, ordinals=records.ordinals, offsets=records.offsets, ids=records.ids)
    return buffer.getvalue()


def records_from_bytes(data: bytes) -> Records:
    with np.load(io.BytesIO(data)) as arrays:
        return Records(arrays["ordinals"], arrays["offsets"], arrays["ids"])


def validate_in_shards(
    store: Store,
    options: ValidationOptions,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    shard_images: int = DEFAULT_SHARD_IMAGES,
    display_name: str = ".",
) -> Dict[str, Any]:
    """The three steps in this process, one shard after another (for tests and local runs)."""
    planned = plan(store, options, shard_bytes, shard_images, display_name)
    done = {s["index"]: run_shard(store, options, s, planned.images.get(s["index"])) for s in planned.shards}
    return merge(store, options, planned, done.__getitem__)
