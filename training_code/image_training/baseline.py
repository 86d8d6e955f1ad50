"""baseline.json: what the model was trained on and how it answered its validation set, so that
``imgclf monitor`` can tell whether the images an endpoint sees have drifted from it.

The image statistics of one image (:func:`image_statistics`) are summarised as histograms over
fixed bins (:data:`EDGES`), fit for the population stability index (imgclf_core.drift). The
training job computes them on at most :data:`MAX_IMAGES` train images (a seeded sample), and
the monitor runs the same functions on at most as many captured images, decoded by the same
decoder (image_dataset.pixels), so both sides are computed identically. Python 3.8, numpy and
image_dataset only: it runs in the training containers.
"""

from __future__ import annotations

import json
import logging
import os
import random
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import numpy as np

from image_dataset.pixels import decode, resize_linear
from image_dataset.recordio import IndexedRecordIO, RecordIOReader, unpack

BASELINE_VERSION = 1
FILE_NAME = "baseline.json"
MAX_IMAGES = 1000  # images sampled for the statistics, on either side
MAX_SIDE = 512  # larger images are scaled down (OpenCV's bilinear) before the pixel statistics
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as OpenCV's RGB -> grey

_SIZES = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096]
_LEVELS = [float(v) for v in range(16, 256, 16)]  # 0-255 values in 16 bins of 16
_SPREADS = [float(v) for v in range(8, 128, 8)]  # standard deviations in 16 bins of 8
_SHARPNESS = [0.25 * i for i in range(1, 21)]  # log10(1 + variance of the Laplacian), bins of 0.25
# Bin i of a statistic holds values v with EDGES[i-1] <= v < EDGES[i]; the first bin is below the
# first edge, the last at or above the last edge. The edges are stored in baseline.json, and the
# monitor bins the window with the baseline's own edges.
EDGES: Dict[str, List[float]] = {
    "width": [float(v) for v in _SIZES],
    "height": [float(v) for v in _SIZES],
    "mean_red": _LEVELS,
    "mean_green": _LEVELS,
    "mean_blue": _LEVELS,
    "spread_red": _SPREADS,
    "spread_green": _SPREADS,
    "spread_blue": _SPREADS,
    "brightness": _LEVELS,
    "sharpness": _SHARPNESS,
}
STATISTICS = tuple(EDGES)


def image_statistics(pixels: np.ndarray) -> Dict[str, float]:
    """The statistics of one decoded image (H x W x 3 or H x W x 1 uint8, as pixels.decode gives):
    its size, each channel's mean and standard deviation, the mean luma (brightness), and the
    sharpness, log10(1 + the variance of the 4-neighbour Laplacian of the luma)."""
    height, width = pixels.shape[:2]
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if max(height, width) > MAX_SIDE:
        scale = MAX_SIDE / max(height, width)
        pixels = resize_linear(pixels, max(1, round(width * scale)), max(1, round(height * scale)))
    values = pixels.astype(np.float64)
    grey = values @ np.asarray(LUMA)
    stats = {"width": float(width), "height": float(height), "brightness": float(grey.mean())}
    for channel, name in enumerate(("red", "green", "blue")):
        stats["mean_" + name] = float(values[:, :, channel].mean())
        stats["spread_" + name] = float(values[:, :, channel].std())
    if grey.shape[0] >= 3 and grey.shape[1] >= 3:
        laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
        stats["sharpness"] = float(np.log10(1.0 + laplacian.var()))
    else:
        stats["sharpness"] = 0.0
    return stats


def histogram(values: Sequence[float], edges: Sequence[float]) -> Dict[str, Any]:
    """``values`` counted in the bins of ``edges`` (len(edges) + 1 bins), with their mean."""
    array = np.asarray(values, np.float64)
    bins = np.searchsorted(np.asarray(edges, np.float64), array, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "mean": float(array.mean()) if len(array) else None,
    }


def summarise(
    rows: Sequence[Mapping[str, float]], edges: Optional[Mapping[str, Sequence[float]]] = None
) -> Dict[str, Any]:
    """The histograms of per-image statistics ``rows``, over ``edges`` (default :data:`EDGES`;
    the monitor passes the baseline's)."""
    edges = edges or EDGES
    return {name: histogram([row[name] for row in rows], edges[name]) for name in edges}


def encoded_statistics(data: bytes) -> Optional[Dict[str, float]]:
    """:func:`image_statistics` of an encoded image (JPEG or PNG); None when it does not decode."""
    try:
        return image_statistics(decode(data, 3).pixels)
    except ValueError:  # PixelError: not an image validation accepts
        return None


def section(
    rows: Sequence[Optional[Mapping[str, float]]], edges: Optional[Mapping[str, Sequence[float]]] = None
) -> Dict[str, Any]:
    """The images' statistics ``rows`` (None for an image that did not decode): how many were
    decoded, how many failed, and the histograms."""
    decoded = [row for row in rows if row is not None]
    return {"images": len(decoded), "failed": len(rows) - len(decoded), "histograms": summarise(decoded, edges)}


def image_section(images: Iterable[bytes], edges: Optional[Mapping[str, Sequence[float]]] = None) -> Dict[str, Any]:
    """The statistics of encoded images (:func:`section`). Images that do not decode are
    counted, never raised."""
    return section([encoded_statistics(data) for data in images], edges)


def sample_indices(total: int, limit: int = MAX_IMAGES, seed: int = 0) -> List[int]:
    """Which of ``total`` items are sampled: all when there are at most ``limit``, else a seeded
    random choice of ``limit``, in order."""
    if total <= limit:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), limit))


def record_images(rec: str, idx: Optional[str] = None, limit: int = MAX_IMAGES) -> Iterator[bytes]:
    """The encoded images of a sample of at most ``limit`` records of a RecordIO file (through
    its .idx when there is one, else the first ``limit`` records)."""
    if idx and os.path.exists(idx):
        with IndexedRecordIO(rec, idx) as records:
            for position in sample_indices(len(records.keys), limit):
                yield unpack(records.read_idx(records.keys[position]))[1]
        return
    with open(rec, "rb") as f:
        reader = RecordIOReader(f, os.path.basename(rec))
        for number, (_, record) in enumerate(reader):
            if number >= limit:
                return
            yield unpack(record)[1]


def class_distribution(counts: Mapping[str, int], names: Sequence[str]) -> Dict[str, int]:
    """A validation report's ``class_counts`` (class index as text -> count) by class name."""
    return {name: int(counts.get(str(i), 0)) for i, name in enumerate(names)}


def prediction_section(scores: np.ndarray, labels: Optional[np.ndarray], names: Sequence[str]) -> Dict[str, Any]:
    """How the model answered its validation set: the predicted-class counts, the mean
    confidence (the top probability) and, for single-label ``labels`` (n,), the accuracy."""
    scores = np.asarray(scores, np.float64)
    predicted = scores.argmax(axis=1) if len(scores) else np.zeros(0, np.int64)
    counts = np.bincount(predicted, minlength=len(names))
    section: Dict[str, Any] = {
        "samples": int(len(scores)),
        "predicted_class_counts": {name: int(counts[i]) for i, name in enumerate(names)},
        "mean_confidence": float(scores.max(axis=1).mean()) if len(scores) else None,
        "accuracy": None,
    }
    if labels is not None and len(scores) and np.asarray(labels).ndim == 1:
        section["accuracy"] = float((predicted == np.asarray(labels).astype(np.int64)).mean())
    return section


def build(
    train_images: Iterable[bytes],
    train_samples: int,
    class_counts: Mapping[str, int],
    names: Sequence[str],
    scores: np.ndarray,
    labels: Optional[np.ndarray],
) -> Dict[str, Any]:
    """The baseline: the statistics of the (sampled) train images, train's class distribution,
    and the validation predictions."""
    images = image_section(train_images)
    return {
        "version": BASELINE_VERSION,
        "labels": list(names),
        "max_images": MAX_IMAGES,
        "train": {
            "samples": int(train_samples),
            "class_counts": class_distribution(class_counts, names),
            "images": images["images"],
            "failed": images["failed"],
            "histograms": images["histograms"],
        },
        "validation": prediction_section(scores, labels, names),
    }


def write(baseline: Dict[str, Any], folder: str) -> str:
    """Write ``folder/baseline.json``; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, FILE_NAME)
    with open(path + ".partial", "w") as f:
        json.dump(baseline, f, indent=1)
    os.replace(path + ".partial", path)
    return path


def from_channel(
    rec: str,
    idx: Optional[str],
    train_samples: int,
    class_counts: Mapping[str, int],
    names: Sequence[str],
    scores: np.ndarray,
    labels: Optional[np.ndarray],
) -> Dict[str, Any]:
    """The training job's baseline: the statistics of a sample of the RecordIO train channel
    (``rec`` and its ``idx``), train's class counts (the validation report's) and the
    validation ``scores`` (n, classes) with their ``labels``."""
    return build(record_images(rec, idx, MAX_IMAGES), train_samples, class_counts, names, scores, labels)


def for_model(
    rec: str,
    idx: Optional[str],
    train_samples: int,
    class_counts: Mapping[str, int],
    names: Sequence[str],
    scores: np.ndarray,
    labels: Optional[np.ndarray],
) -> Optional[Dict[str, Any]]:
    """:func:`from_channel`, or None with a warning in the job's log where it fails: the
    baseline serves monitoring, and never costs the job its trained model."""
    try:
        return from_channel(rec, idx, train_samples, class_counts, names, scores, labels)
    except Exception as err:  # noqa: BLE001 - any failure: the model is exported without a baseline
        logging.getLogger(__name__).warning("baseline.json not written: %s: %s", type(err).__name__, err)
        return None
