"""The drift rules of ``imgclf monitor``: a baseline (baseline.json, image_training.baseline)
against a window of captured traffic, one check per statistic, each with its value, threshold
and verdict; ``drift_detected`` when any check is significant. Standard library only, Python 3.8.

Population stability index: ``PSI = sum((a_i - e_i) * ln(a_i / e_i))`` over the bins, with
``e_i`` the baseline's and ``a_i`` the window's share of bin ``i`` (a share of 0 counts as
:data:`EPSILON`; bins empty on both sides add nothing). The thresholds are the credit-scoring
convention, from N. Siddiqi, *Credit Risk Scorecards* (Wiley, 2006): under 0.1 no significant
change, 0.1 to 0.25 a moderate change, 0.25 or more a significant shift. That rule of thumb
ignores sample size (B. Yurdakul, *Statistical Properties of Population Stability Index*,
Western Michigan University, 2018): two samples of one population still differ by about
``(bins - 1) * (1/n + 1/m)``, so a window of fewer than :data:`MIN_IMAGES` images gets the
verdict ``insufficient`` and never counts as drift.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

MONITOR_VERSION = 1
EPSILON = 1e-4  # the share given to an empty bin (a common PSI choice; ln(0) is undefined)
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25
CONFIDENCE_MODERATE, CONFIDENCE_SIGNIFICANT = 0.05, 0.10  # |change| of the mean top probability
ACCURACY_MODERATE, ACCURACY_SIGNIFICANT = 0.05, 0.10  # drop of accuracy below validation's
MIN_IMAGES = 100  # images or predictions in the window before a PSI or confidence verdict
MIN_LABELS = 50  # labelled predictions before an accuracy verdict

OK, MODERATE, SIGNIFICANT = "ok", "moderate", "significant"
INSUFFICIENT, UNAVAILABLE = "insufficient", "unavailable"


def shares(counts: Sequence[float]) -> List[float]:
    """Counts as shares of their total (all 0 when the total is 0)."""
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population stability index of ``actual`` counts against ``expected`` counts over the
    same bins (ValueError when the bins differ)."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} baseline bins against {len(actual)} window bins")
    total = 0.0
    for e, a in zip(shares(expected), shares(actual)):
        if e == 0 and a == 0:
            continue
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def grade(value: float, moderate: float, significant: float) -> str:
    """ok, moderate or significant for a value where larger is worse."""
    if value >= significant:
        return SIGNIFICANT
    if value >= moderate:
        return MODERATE
    return OK


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 6)


def _check(
    kind: str, value: Optional[float], moderate: float, significant: float, samples: int, enough: int
) -> Dict[str, Any]:
    if value is None:
        verdict = UNAVAILABLE
    elif samples < enough:
        verdict = INSUFFICIENT
    else:
        verdict = grade(value, moderate, significant)
    return {
        "kind": kind,
        "value": _rounded(value),
        "threshold": significant,
        "moderate_threshold": moderate,
        "verdict": verdict,
        "samples": samples,
    }


def psi_check(expected: Sequence[float], actual: Sequence[float]) -> Dict[str, Any]:
    """The PSI check of one histogram or distribution."""
    samples = int(sum(actual))
    value = psi(expected, actual) if sum(expected) and samples else None
    return _check("psi", value, PSI_MODERATE, PSI_SIGNIFICANT, samples, MIN_IMAGES)


def _by_name(counts: Mapping[str, Any], names: Sequence[str]) -> List[float]:
    return [float(counts.get(name, 0)) for name in names]


def image_checks(baseline: Mapping[str, Any], window: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """One PSI check per image statistic of the baseline's train histograms."""
    checks = {}
    for name, base in baseline["train"]["histograms"].items():
        seen = window["histograms"].get(name, {"counts": [0] * len(base["counts"])})
        check = psi_check(base["counts"], seen["counts"])
        check.update(baseline_mean=_rounded(base.get("mean")), window_mean=_rounded(seen.get("mean")))
        checks["image." + name] = check
    return checks


def prediction_checks(baseline: Mapping[str, Any], window: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The predicted-class distribution's PSI and the mean confidence's change, against the
    validation set's."""
    names, validation = baseline["labels"], baseline["validation"]
    counts = window["predicted_class_counts"]
    classes = psi_check(_by_name(validation["predicted_class_counts"], names), _by_name(counts, names))
    base_conf, seen_conf = validation.get("mean_confidence"), window.get("mean_confidence")
    change = None if base_conf is None or seen_conf is None else seen_conf - base_conf
    confidence = _check(
        "absolute change",
        None if change is None else abs(change),
        CONFIDENCE_MODERATE,
        CONFIDENCE_SIGNIFICANT,
        int(window.get("predictions", 0)),
        MIN_IMAGES,
    )
    confidence.update(baseline=_rounded(base_conf), window=_rounded(seen_conf), change=_rounded(change))
    return {"predicted_class": classes, "mean_confidence": confidence}


def label_checks(baseline: Mapping[str, Any], window: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Live accuracy (the drop below validation accuracy) and the true-class distribution's PSI
    against train's, from the ground-truth labels matched to predictions."""
    matched, correct = int(window.get("matched", 0)), int(window.get("correct", 0))
    base_accuracy = baseline["validation"].get("accuracy")
    accuracy = correct / matched if matched else None
    drop = None if accuracy is None or base_accuracy is None else base_accuracy - accuracy
    live = _check("drop", drop, ACCURACY_MODERATE, ACCURACY_SIGNIFICANT, matched, MIN_LABELS)
    live.update(baseline=_rounded(base_accuracy), window=_rounded(accuracy), correct=correct)
    names = baseline["labels"]
    classes = psi_check(
        _by_name(baseline["train"]["class_counts"], names), _by_name(window.get("class_counts", {}), names)
    )
    return {"live_accuracy": live, "label_class": classes}


def compare(
    baseline: Mapping[str, Any], images: Mapping[str, Any], predictions: Mapping[str, Any], labels: Mapping[str, Any]
) -> Dict[str, Any]:
    """monitor.json's verdict: every check, and ``drift_detected`` when one is significant.

    ``images``: image_training.baseline.image_section of the window's images (``histograms``);
    ``predictions``: ``predictions`` (count), ``predicted_class_counts`` and ``mean_confidence``;
    ``labels``: ``matched``, ``correct`` and the true ``class_counts`` by name."""
    checks: Dict[str, Dict[str, Any]] = {}
    checks.update(image_checks(baseline, images))
    checks.update(prediction_checks(baseline, predictions))
    checks.update(label_checks(baseline, labels))
    significant = sorted(name for name, check in checks.items() if check["verdict"] == SIGNIFICANT)
    moderate = sorted(name for name, check in checks.items() if check["verdict"] == MODERATE)
    return {
        "version": MONITOR_VERSION,
        "drift_detected": bool(significant),
        "significant": significant,
        "moderate": moderate,
        "checks": checks,
    }
