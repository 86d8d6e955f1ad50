"""image_training.baseline: the image statistics on images whose answers are known, the fixed
bins, the sample of a RecordIO channel, and baseline.json's sections."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image_dataset.recordio import RecordIOWriter, pack
from image_training import baseline
from tests.builders import jpeg, png


def encoded(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_a_flat_image() -> None:
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:, :] = (200, 100, 50)
    stats = baseline.image_statistics(pixels)
    assert stats["width"] == 30 and stats["height"] == 20
    assert (stats["mean_red"], stats["mean_green"], stats["mean_blue"]) == (200, 100, 50)
    assert stats["spread_red"] == stats["spread_green"] == stats["spread_blue"] == 0
    assert stats["brightness"] == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert stats["sharpness"] == 0


def test_a_checkerboard_is_sharp_and_its_blur_is_not() -> None:
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)[:, :, None]
    sharp = baseline.image_statistics(board)
    assert sharp["spread_red"] == pytest.approx(127.5)
    # every interior Laplacian is +-4 * 255: variance (1020)^2
    assert sharp["sharpness"] == pytest.approx(np.log10(1 + 1020.0**2))
    blurred = np.asarray(Image.fromarray(board[:, :, 0]).resize((16, 16), Image.Resampling.BOX))[:, :, None]
    assert baseline.image_statistics(blurred)["sharpness"] < 1


def test_a_grey_image_counts_as_three_equal_channels() -> None:
    grey = np.full((8, 8, 1), 77, np.uint8)
    stats = baseline.image_statistics(grey)
    assert stats["mean_red"] == stats["mean_green"] == stats["mean_blue"] == stats["brightness"] == pytest.approx(77)


def test_a_large_image_keeps_its_size_and_its_level() -> None:
    big = np.full((600, 2000, 3), 120, np.uint8)
    stats = baseline.image_statistics(big)
    assert (stats["width"], stats["height"]) == (2000, 600)
    assert stats["mean_red"] == pytest.approx(120)


def test_the_bins_are_left_closed_with_open_tails() -> None:
    hist = baseline.histogram([-1, 0, 15.9, 16, 255, 1000], [16.0, 32.0])
    assert hist["counts"] == [3, 1, 2] and hist["edges"] == [16.0, 32.0]
    assert hist["mean"] == pytest.approx(sum([-1, 0, 15.9, 16, 255, 1000]) / 6)
    assert baseline.histogram([], [1.0])["mean"] is None
    for name, edges in baseline.EDGES.items():
        assert edges == sorted(edges) and len(set(edges)) == len(edges), name


def test_image_section_counts_images_that_do_not_decode() -> None:
    section = baseline.image_section([png(40, 30), jpeg(64, 64), b"not an image", b""])
    assert section["images"] == 2 and section["failed"] == 2
    widths = section["histograms"]["width"]
    assert sum(widths["counts"]) == 2 and widths["mean"] == 52
    assert set(section["histograms"]) == set(baseline.STATISTICS)


def test_the_sample_is_seeded_and_capped() -> None:
    assert baseline.sample_indices(5, 10) == [0, 1, 2, 3, 4]
    chosen = baseline.sample_indices(10_000, 100)
    assert len(chosen) == 100 and chosen == sorted(set(chosen)) and chosen == baseline.sample_indices(10_000, 100)


def write_channel(folder: Path, count: int) -> str:
    rec = str(folder / "train.rec")
    with RecordIOWriter(rec, str(folder / "train.idx")) as writer:
        for i in range(count):
            writer.write(pack(float(i % 2), png(8 + i, 8, (i * 10, 0, 0))), key=i)
    return rec


def test_record_images_samples_a_recordio_channel(tmp_path: Path) -> None:
    rec = write_channel(tmp_path, 12)
    sampled = list(baseline.record_images(rec, str(tmp_path / "train.idx"), 5))
    assert len(sampled) == 5 and len(set(sampled)) == 5
    assert all(data.startswith(b"\x89PNG") for data in sampled)
    assert len(list(baseline.record_images(rec, None, 5))) == 5  # no .idx: the first records
    assert len(list(baseline.record_images(rec, str(tmp_path / "train.idx"), 100))) == 12


def test_prediction_section() -> None:
    scores = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.8, 0.2]])
    section = baseline.prediction_section(scores, np.array([0, 1, 1, 0]), ["cat", "dog"])
    assert section["predicted_class_counts"] == {"cat": 3, "dog": 1}
    assert section["mean_confidence"] == pytest.approx((0.9 + 0.7 + 0.6 + 0.8) / 4)
    assert section["accuracy"] == 0.75 and section["samples"] == 4
    multi = baseline.prediction_section(scores, np.array([[1, 0]] * 4), ["cat", "dog"])
    assert multi["accuracy"] is None  # multi-hot labels: no single-label accuracy


def test_from_channel_is_the_baseline_json_of_a_training_job(tmp_path: Path) -> None:
    rec = write_channel(tmp_path, 6)
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    data = baseline.from_channel(
        rec, str(tmp_path / "train.idx"), 6, {"0": 3, "1": 3}, ["a", "b"], scores, np.array([0, 0])
    )
    path = baseline.write(data, str(tmp_path / "model"))
    stored = json.loads(Path(path).read_text())
    assert stored["version"] == baseline.BASELINE_VERSION and stored["labels"] == ["a", "b"]
    assert stored["max_images"] == baseline.MAX_IMAGES
    assert stored["train"]["samples"] == 6 and stored["train"]["images"] == 6 and stored["train"]["failed"] == 0
    assert stored["train"]["class_counts"] == {"a": 3, "b": 3}
    assert stored["validation"]["accuracy"] == 0.5 and stored["validation"]["samples"] == 2
    assert stored["train"]["histograms"]["width"]["edges"] == baseline.EDGES["width"]
    assert not (tmp_path / "model" / "baseline.json.partial").exists()


def test_a_baseline_that_cannot_be_made_costs_no_model(tmp_path, caplog) -> None:
    """The job exports its model without baseline.json (and says why) where the sample fails."""
    import logging

    import numpy as np

    from image_training.baseline import for_model

    scores = np.full((2, 2), 0.5, dtype=np.float32)
    with caplog.at_level(logging.WARNING):
        made = for_model(str(tmp_path / "missing.rec"), None, 2, {"a": 1, "b": 1}, ["a", "b"], scores, None)
    assert made is None
    assert "baseline.json not written" in caplog.text
