"""evaluation.json metrics, shared by both backends."""

from __future__ import annotations

import numpy as np
import pytest

from image_training.evaluation import multi_label_report, single_label_report, top_k_hits


def test_single_label_metrics_and_confusion_matrix() -> None:
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.1, 0.2, 0.7]])
    labels = np.array([0, 1, 2, 2])
    report = single_label_report(scores, labels, ["a", "b", "c"], loss=0.42, top_k=2, best_epoch=3)
    assert report["accuracy"] == 0.75 and report["top_k_accuracy"] == 1.0 and report["loss"] == 0.42
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]] and report["best_epoch"] == 3
    by_label = {c["label"]: c for c in report["per_class"]}
    assert by_label["a"]["precision"] == 0.5 and by_label["a"]["recall"] == 1.0
    assert by_label["c"]["precision"] == 1.0 and by_label["c"]["recall"] == 0.5 and by_label["c"]["support"] == 2
    assert by_label["c"]["f1"] == pytest.approx(2 / 3)


def test_multi_label_metrics() -> None:
    scores = np.array([[0.9, 0.6], [0.2, 0.8], [0.1, 0.3]])
    labels = np.array([[1, 0], [0, 1], [0, 0]])
    report = multi_label_report(scores, labels, ["x", "y"], loss=0.1)
    assert report["accuracy"] == pytest.approx(5 / 6) and report["subset_accuracy"] == pytest.approx(2 / 3)
    y = report["per_class"][1]
    assert (y["true_positives"], y["false_positives"], y["false_negatives"], y["precision"]) == (1, 1, 0, 0.5)
    assert top_k_hits(scores, labels, 1, True).tolist() == [True, True, False]
