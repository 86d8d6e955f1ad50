"""Benchmark: validating RecordIO, against raw reads, MXNet's own reader and a Pillow loop.

Builds (once, cached under .bench/) two .rec files of real encoded JPEGs:
  large: 256x256 photos-like JPEGs, >= 1 GB;   small: 32x32 JPEGs, >= 200,000 records.
Then times, in the same run, page cache warm:
  (a) raw sequential reads of the file               (peer of c on the large file)
  (b) mxnet.recordio.MXRecordIO read() + unpack loop (peer of c on the small file; .venv-mxnet)
  (c) imgclf validate, structural checks only (--no-decode), with its peak RSS
      (validation timed in-process, like the MXNet loop, without interpreter start-up)
  (d) imgclf validate with the full image decode on all cores
  (p) a single-thread Pillow decode loop over the same images (peer of d)
and prints MB/s, records/s and the ratios against the targets of issue 2.

    .venv/bin/python bench/validate_recordio.py [--large-mb 1024] [--small-records 200000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import numpy as np
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
best = float("inf")
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    report = validate_path(sys.argv[1], options)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best, "report": report}))
"""


def imgclf_validate(path: str, mode: str, repeat: int) -> Tuple[Dict[str, object], float, float]:
    """Run ``validate_path`` (what ``imgclf validate`` runs) in a child process, timing the
    validation alone as the MXNet loop is timed (best of ``repeat``, as the raw read is);
    returns (report, seconds, peak RSS in MB)."""
    proc = subprocess.Popen([sys.executable, "-c", VALIDATE, path, mode, str(repeat)], stdout=subprocess.PIPE)
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


def verdict(label: str, ratio: float, target: float) -> str:
    return "{:<58} {:6.2f}x  (target >= {}x: {})".format(label, ratio, target, "met" if ratio >= target else "NOT MET")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--small-records", type=int, default=200_000)
    parser.add_argument("--decode-limit", type=int, default=20_000, help="images for the Pillow peer loop")
    args = parser.parse_args()
    os.makedirs(WORK, exist_ok=True)
    large = os.path.join(WORK, f"large-{args.large_mb}mb.rec")
    small = os.path.join(WORK, f"small-{args.small_records}.rec")
    build(large, 256, args.large_mb << 20, 0, 400)
    build(small, 32, 0, args.small_records, 2000)
    results: List[str] = []
    for name, path in (("large", large), ("small", small)):
        size_mb = os.path.getsize(path) / 1e6
        warm(path)
        raw = min(warm(path) for _ in range(3))
        n_mx, mx_seconds = mxnet_loop(path)
        report, structural, rss = imgclf_validate(path, "structure", 3)
        records = int(report["channels"]["train"]["samples"])  # type: ignore[index]
        assert records == n_mx
        _, decode_seconds, _ = imgclf_validate(path, "decode", 1)
        n_pil, pil_seconds = pillow_loop(path, args.decode_limit)
        print(f"\n{name} file: {size_mb:,.0f} MB, {records:,} records, {size_mb * 1000 / records:.1f} KB per record")
        row("(a) raw sequential read", size_mb, records, raw)
        row("(b) MXRecordIO read + unpack", size_mb, n_mx, mx_seconds)
        row("(c) imgclf validate --no-decode", size_mb, records, structural, f"peak RSS {rss:.0f} MB")
        row("(d) imgclf validate (full decode, all cores)", size_mb, records, decode_seconds)
        row("(p) Pillow decode loop, 1 thread", size_mb * n_pil / records, n_pil, pil_seconds)
        decode_ratio = (records / decode_seconds) / (n_pil / pil_seconds)
        if name == "large":
            results.append(verdict("large: (c) MB/s vs (a) raw read", raw / structural, 0.5))
        else:
            results.append(verdict("small: (c) records/s vs (b) MXRecordIO loop", mx_seconds / structural, 2.0))
        results.append(verdict(f"{name}: (d) images/s vs (p) single-thread Pillow", decode_ratio, 1.6))
        results.append(
            "{:<58} {:6.0f} MB  (target < 200 MB: {})".format(
                name + ": (c) peak RSS", rss, "met" if rss < 200 else "NOT MET"
            )
        )
    print(f"\nratios (cores: {os.cpu_count()})")
    for line in results:
        print("  " + line)


if __name__ == "__main__":
    main()
