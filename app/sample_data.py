"""The embedded sample dataset: scikit-learn's handwritten digits (1,797 real 8x8 scans that
ship inside the scikit-learn wheel), written as a folder-per-class PNG dataset."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image

CLASS_NAMES = [str(digit) for digit in range(10)]  # folder names sort as the digits do


def write_digits(
    out_dir: str,
    size: int = 32,
    validation_fraction: float = 0.2,
    seed: int = 0,
    classes: Sequence[int] = tuple(range(10)),
) -> int:
    """Write ``train/<class>/*.png`` and ``validation/<class>/*.png``; returns the image count.

    The split is stratified and seeded, so the same call always writes the same dataset.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    written = 0
    for label in classes:
        name = CLASS_NAMES[label]
        indices = np.flatnonzero(digits.target == label)
        rng.shuffle(indices)
        n_val = int(round(len(indices) * validation_fraction))
        for position, index in enumerate(indices):
            channel = "validation" if position < n_val else "train"
            folder = os.path.join(out_dir, channel, name)
            os.makedirs(folder, exist_ok=True)
            pixels = (digits.images[index] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
            image = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
            image.save(os.path.join(folder, f"{index:04d}.png"))
            written += 1
    return written
