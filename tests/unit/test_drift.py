"""imgclf_core.drift: the population stability index on known distributions, the thresholds'
verdicts, and monitor.json's checks."""

from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Tuple

import pytest

from imgclf_core import drift


def test_psi_of_identical_distributions_is_zero() -> None:
    assert drift.psi([10, 20, 30, 40], [1, 2, 3, 4]) == 0.0  # shares, not counts, are compared


def test_psi_by_hand() -> None:
    # shares 0.5/0.5 against 0.8/0.2: 0.3 ln(1.6) + (-0.3) ln(0.4)
    expected = 0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    assert drift.psi([50, 50], [80, 20]) == pytest.approx(expected)
    assert drift.psi([50, 50], [80, 20]) == pytest.approx(drift.psi([80, 20], [50, 50]))  # symmetric


def test_an_empty_bin_counts_as_epsilon_and_bins_empty_on_both_sides_add_nothing() -> None:
    value = drift.psi([100, 0, 0], [99, 1, 0])
    shares = [(1.0, 0.99), (drift.EPSILON, 0.01)]
    assert value == pytest.approx(sum((a - e) * math.log(a / e) for e, a in shares))
    assert math.isfinite(drift.psi([10, 0], [0, 10]))


def test_different_bins_are_refused() -> None:
    with pytest.raises(ValueError, match="3 baseline bins against 2"):
        drift.psi([1, 2, 3], [1, 2])


def normal_counts(mean: float, n: int, seed: int) -> List[int]:
    """n draws of N(mean, 1) in 12 bins of width 0.5 from -3 to 3 (and the two tails)."""
    rng = random.Random(seed)
    counts = [0] * 14
    for _ in range(n):
        x = rng.gauss(mean, 1.0)
        counts[min(13, max(0, int(math.floor((x + 3) / 0.5)) + 1))] += 1
    return counts


def test_a_sample_of_the_same_population_stays_under_the_moderate_threshold() -> None:
    assert drift.psi(normal_counts(0, 2000, 1), normal_counts(0, 500, 2)) < drift.PSI_MODERATE


def test_a_shift_of_one_standard_deviation_is_significant() -> None:
    assert drift.psi(normal_counts(0, 2000, 1), normal_counts(1, 500, 2)) >= drift.PSI_SIGNIFICANT


@pytest.mark.parametrize(
    "value, verdict", [(0.0, "ok"), (0.0999, "ok"), (0.1, "moderate"), (0.2499, "moderate"), (0.25, "significant")]
)
def test_the_psi_thresholds(value: float, verdict: str) -> None:
    assert drift.grade(value, drift.PSI_MODERATE, drift.PSI_SIGNIFICANT) == verdict


def test_a_small_window_is_insufficient_and_an_empty_one_unavailable() -> None:
    few = drift.psi_check([50, 50], [drift.MIN_IMAGES - 1, 0])
    assert few["verdict"] == "insufficient" and few["value"] > drift.PSI_SIGNIFICANT
    assert drift.psi_check([50, 50], [0, 0])["verdict"] == "unavailable"
    enough = drift.psi_check([50, 50], [drift.MIN_IMAGES, 0])
    assert enough["verdict"] == "significant" and enough["threshold"] == drift.PSI_SIGNIFICANT
    assert enough["moderate_threshold"] == drift.PSI_MODERATE and enough["samples"] == drift.MIN_IMAGES


def baseline() -> Dict[str, Any]:
    return {
        "version": 1,
        "labels": ["cat", "dog"],
        "train": {
            "class_counts": {"cat": 500, "dog": 500},
            "histograms": {"brightness": {"edges": [100.0], "counts": [500, 500], "mean": 100.0}},
        },
        "validation": {"predicted_class_counts": {"cat": 50, "dog": 50}, "mean_confidence": 0.9, "accuracy": 0.95},
    }


Window = Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]


def window(brightness: List[int], predicted: Dict[str, int], confidence: float, matched: int, correct: int) -> Window:
    """(images, predictions, labels) of a window, as app.monitor hands them to drift.compare."""
    images = {"histograms": {"brightness": {"edges": [100.0], "counts": brightness, "mean": 90.0}}}
    predictions = {
        "predictions": sum(predicted.values()),
        "predicted_class_counts": predicted,
        "mean_confidence": confidence,
    }
    labels = {
        "matched": matched,
        "correct": correct,
        "class_counts": {"cat": matched // 2, "dog": matched - matched // 2},
    }
    return images, predictions, labels


def test_an_unshifted_window_has_no_drift() -> None:
    report = drift.compare(baseline(), *window([100, 100], {"cat": 100, "dog": 100}, 0.89, 100, 94))
    assert report["drift_detected"] is False and report["significant"] == [] and report["moderate"] == []
    assert set(report["checks"]) == {
        "image.brightness",
        "predicted_class",
        "mean_confidence",
        "live_accuracy",
        "label_class",
    }
    for check in report["checks"].values():
        assert check["verdict"] == "ok" and {"value", "threshold", "verdict"} <= set(check)
    assert report["checks"]["live_accuracy"]["window"] == pytest.approx(0.94)
    assert report["checks"]["mean_confidence"]["change"] == pytest.approx(-0.01)


def test_a_shifted_window_flags_each_kind_of_drift() -> None:
    report = drift.compare(baseline(), *window([190, 10], {"cat": 180, "dog": 20}, 0.7, 100, 60))
    assert report["drift_detected"] is True
    assert report["significant"] == ["image.brightness", "live_accuracy", "mean_confidence", "predicted_class"]
    assert report["checks"]["live_accuracy"]["value"] == pytest.approx(0.35)
    assert report["checks"]["mean_confidence"]["value"] == pytest.approx(0.2)


def test_without_labels_accuracy_is_unavailable_and_no_drift() -> None:
    report = drift.compare(baseline(), *window([100, 100], {"cat": 100, "dog": 100}, 0.9, 0, 0))
    assert report["checks"]["live_accuracy"]["verdict"] == "unavailable"
    assert report["checks"]["label_class"]["verdict"] == "unavailable"
    assert report["drift_detected"] is False


def test_few_labels_are_insufficient() -> None:
    report = drift.compare(baseline(), *window([100, 100], {"cat": 100, "dog": 100}, 0.9, drift.MIN_LABELS - 1, 0))
    assert report["checks"]["live_accuracy"]["verdict"] == "insufficient"
    assert report["drift_detected"] is False
