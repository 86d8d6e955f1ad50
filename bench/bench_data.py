"""Images and RecordIO files the backend benchmarks share, made on the spot (no downloads)."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from image_dataset.recordio import RecordIOWriter, pack


def photo(side: int, seed: int) -> bytes:
    """A JPEG with smooth colour regions and noise, so it decodes like a photo."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
    pixels = np.clip(np.asarray(base, np.float64) + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def build_rec(folder: str, side: int, count: int, classes: int = 10, name: str = "bench") -> str:
    """``folder/<name>-<side>-<count>.rec`` (+ .idx) of ``count`` photos in ``classes`` classes;
    built once, then reused."""
    rec = os.path.join(folder, f"{name}-{side}-{count}.rec")
    if not os.path.exists(rec):
        pool = [photo(side, seed) for seed in range(200)]
        with RecordIOWriter(rec, rec[:-4] + ".idx") as writer:
            for i in range(count):
                writer.write(pack(float(i % classes), pool[i % len(pool)], id=i), key=i)
    return rec
