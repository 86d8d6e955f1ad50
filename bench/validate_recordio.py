"""Benchmark: validating RecordIO, against raw reads, MXNet's own reader and a Pillow loop.

Builds (once, cached under .bench/) two .rec files of real encoded JPEGs:
  large: 256x256 photos-like JPEGs, >= 1 GB;   small: 32x32 JPEGs, >= 200,000 records.
Then times, page cache warm, in rounds that take turns (a, b, c, d, p, a, b, ...: the noise of
a shared machine hits every side alike), and keeps each side's median:
  (a) raw sequential reads of the file               (peer of c on the large file)
  (b) mxnet.recordio.MXRecordIO read() + unpack loop (peer of c on the small file; .venv-mxnet)
  (c) imgclf validate, structural checks only (--no-decode), with its peak RSS
      (validation timed in-process, like the MXNet loop, without interpreter start-up)
  (d) imgclf validate with the full image decode on all cores
  (p) a single-thread Pillow decode loop over the same images (peer of d)
and prints MB/s, records/s and the ratios of the medians against the targets of issue 2.

    .venv/bin/python bench/validate_recordio.py [--runs 5] [--large-mb 1024] [--small-records 200000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
from alternate import RUNS, alternate, median, spread, verdict
from PIL import Image, ImageFilter

from image_dataset.recordio import RecordIOReader, RecordIOWriter, pack, unpack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".bench")
MXNET_PYTHON = os.path.join(ROOT, ".venv-mxnet", "bin", "python")


def photo_like(side: int, seed: int) -> bytes:
    """A JPEG with smooth shapes and fine noise, so it compresses like a photo."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((side, side), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 18, (side, side, 3))
    pixels = np.clip(np.asarray(image, np.float64) + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def build(path: str, side: int, target_bytes: int, target_records: int, distinct: int) -> None:
    if os.path.exists(path):
        return
    print(f"building {path} ...", flush=True)
    pool = [photo_like(side, seed) for seed in range(distinct)]
    written, records = 0, 0
    with RecordIOWriter(path + ".partial", path[:-4] + ".idx") as writer:
        while written < target_bytes or records < target_records:
            image = pool[records % distinct]
            record = pack(float(records % 10), image, id=records)
            writer.write(record, key=records)
            written += len(record) + 8
            records += 1
    os.replace(path + ".partial", path)


def warm(path: str) -> float:
    """Read the whole file (a): returns seconds for a raw sequential read with readinto."""
    buffer = bytearray(8 << 20)
    view = memoryview(buffer)
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.readinto(view):
            pass
    return time.perf_counter() - start


MXNET_LOOP = """
import sys, time
import mxnet as mx
rec = mx.recordio.MXRecordIO(sys.argv[1], 'r')
n = 0
start = time.perf_counter()
while True:
    item = rec.read()
    if item is None:
        break
    header, image = mx.recordio.unpack(item)
    n += 1
print(n, time.perf_counter() - start)
"""


def mxnet_loop(path: str) -> Tuple[int, float]:
    out = subprocess.run([MXNET_PYTHON, "-c", MXNET_LOOP, path], capture_output=True, text=True, check=True)
    n, seconds = out.stdout.split()
    return int(n), float(seconds)


VALIDATE = """
import json, sys, time
from image_dataset.validate import ValidationOptions, validate_path
options = ValidationOptions(decode_images=sys.argv[2] == "decode")
start = time.perf_counter()
report = validate_path(sys.argv[1], options)
print(json.dumps({"seconds": time.perf_counter() - start, "report": report}))
"""


def imgclf_validate(path: str, mode: str) -> Tuple[Dict[str, Any], float, float]:
    """Run ``validate_path`` (what ``imgclf validate`` runs) in a child process, timing the
    validation alone, as the MXNet loop is timed; returns (report, seconds, peak RSS in MB)."""
    proc = subprocess.Popen([sys.executable, "-c", VALIDATE, path, mode], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = json.loads(proc.stdout.read())
    _, _, usage = os.wait4(proc.pid, 0)
    assert out["report"]["valid"], out["report"]["errors"]
    return out["report"], out["seconds"], usage.ru_maxrss / 1024


def pillow_loop(path: str, limit: int) -> Tuple[int, float]:
    """(p): read records with a plain reader and fully decode each image on one thread."""
    n = 0
    start = time.perf_counter()
    with open(path, "rb") as f:
        for _, record in RecordIOReader(f):
            _, image = unpack(record)
            Image.open(io.BytesIO(image)).load()
            n += 1
            if n >= limit:
                break
    return n, time.perf_counter() - start


def row(name: str, mb: float, records: int, seconds: float, extra: str = "") -> None:
    print(f"  {name:<44} {mb / seconds:>9.0f} MB/s {records / seconds:>11,.0f} rec/s {seconds:>8.2f} s  {extra}")


def bench_file(path: str, decode_limit: int, runs: int) -> Dict[str, Any]:
    """The five sides on one file, alternated: each side's seconds per run, records and RSS."""
    warm(path)
    seen: Dict[str, Any] = {"rss": 0.0}

    def mxnet() -> float:
        seen["mxnet_records"], seconds = mxnet_loop(path)
        return seconds

    def validate(mode: str) -> Callable[[], float]:
        def run() -> float:
            report, seconds, rss = imgclf_validate(path, mode)
            seen["records"] = int(report["channels"]["train"]["samples"])
            if mode == "structure":
                seen["rss"] = max(seen["rss"], rss)
            return seconds

        return run

    def pillow() -> float:
        seen["pillow_images"], seconds = pillow_loop(path, decode_limit)
        return seconds

    sides = {"a": lambda: warm(path), "b": mxnet, "c": validate("structure"), "d": validate("decode"), "p": pillow}
    seconds = alternate(sides, runs, warm=False)
    assert seen["records"] == seen["mxnet_records"]
    seen.update(seconds)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--small-records", type=int, default=200_000)
    parser.add_argument("--decode-limit", type=int, default=20_000, help="images for the Pillow peer loop")
    parser.add_argument("--runs", type=int, default=RUNS, help="alternated runs of each side (>= 5)")
    parser.add_argument("--only", choices=("large", "small"), help="benchmark one of the two files")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    os.makedirs(WORK, exist_ok=True)
    large = os.path.join(WORK, f"large-{args.large_mb}mb.rec")
    small = os.path.join(WORK, f"small-{args.small_records}.rec")
    build(large, 256, args.large_mb << 20, 0, 400)
    build(small, 32, 0, args.small_records, 2000)
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    results: List[str] = []
    for name, path in (("large", large), ("small", small)):
        if args.only not in (None, name):
            continue
        size_mb = os.path.getsize(path) / 1e6
        got = bench_file(path, args.decode_limit, args.runs)
        records, n_pil = got["records"], got["pillow_images"]
        raw, mx, structural, decode, pil = (median(got[k]) for k in "abcdp")
        print(f"\n{name} file: {size_mb:,.0f} MB, {records:,} records, {size_mb * 1000 / records:.1f} KB per record")
        print(f"  medians of {args.runs} alternated runs; each run's seconds in brackets")
        row("(a) raw sequential read", size_mb, records, raw, spread(got["a"], "{:.2f}"))
        row("(b) MXRecordIO read + unpack", size_mb, records, mx, spread(got["b"], "{:.2f}"))
        row("(c) imgclf validate --no-decode", size_mb, records, structural, spread(got["c"], "{:.2f}"))
        print(f"  {'':<44} peak RSS {got['rss']:.0f} MB")
        row("(d) imgclf validate (full decode, all cores)", size_mb, records, decode, spread(got["d"], "{:.2f}"))
        row("(p) Pillow decode loop, 1 thread", size_mb * n_pil / records, n_pil, pil, spread(got["p"], "{:.2f}"))
        if name == "large":
            results.append(verdict("large: (c) MB/s vs (a) raw read", raw / structural, 0.5))
        else:
            results.append(verdict("small: (c) records/s vs (b) MXRecordIO loop", mx / structural, 2.0))
        decode_ratio = (records / decode) / (n_pil / pil)
        results.append(verdict(f"{name}: (d) images/s vs (p) single-thread Pillow", decode_ratio, 1.6))
        results.append(
            "{:<58} {:6.0f} MB  (target < 200 MB: {})".format(
                name + ": (c) peak RSS", got["rss"], "met" if got["rss"] < 200 else "NOT MET"
            )
        )
    print(f"\nratios of the medians (cores: {os.cpu_count()}, load average at the end: {os.getloadavg()[0]:.2f})")
    for line in results:
        print("  " + line)


if __name__ == "__main__":
    main()
