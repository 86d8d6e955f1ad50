"""evaluation.json, the same for both backends: accuracy, top-k accuracy, loss, then per-class
precision/recall/F1 and the confusion matrix, computed from scores with numpy only."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


def per_class(
    names: Sequence[str], tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, **extra: np.ndarray
) -> List[Dict[str, Any]]:
    """Precision, recall, F1 and support of each class from its true/false positives and
    false negatives (0 where undefined)."""
    tp, fp, fn = (np.asarray(a, np.float64) for a in (tp, fp, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / (tp + fp))
        recall = np.nan_to_num(tp / (tp + fn))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    rows = []
    for i, name in enumerate(names):
        row: Dict[str, Any] = {
            "label": name,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(tp[i] + fn[i]),
        }
        row.update({key: int(values[i]) for key, values in extra.items()})
        rows.append(row)
    return rows


def single_label_report(
    scores: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    loss: float,
    top_k: Optional[int] = None,
    best_epoch: Optional[int] = None,
) -> Dict[str, Any]:
    """Metrics of softmax ``scores`` (n, classes) against integer ``labels`` (n,)."""
    n_classes = scores.shape[1]
    predicted = scores.argmax(axis=1)
    labels = labels.astype(np.int64)
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_pos = np.diag(confusion)
    k = top_k or min(5, n_classes)
    report: Dict[str, Any] = {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "top_k_accuracy": float(top_k_hits(scores, labels, k, False).mean()) if len(labels) else 0.0,
        "top_k": k,
        "loss": float(loss),
        "samples": int(len(labels)),
        "label_names": list(label_names),
        "per_class": per_class(
            label_names, true_pos, confusion.sum(axis=0) - true_pos, confusion.sum(axis=1) - true_pos
        ),
        "confusion_matrix": confusion.tolist(),
    }
    if best_epoch is not None:
        report["best_epoch"] = best_epoch
    return report


def write_evaluation(report: Dict[str, Any], *folders: str) -> None:
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "evaluation.json")
        with open(path + ".partial", "w") as f:
            json.dump(report, f, indent=2)
        os.replace(path + ".partial", path)


def label_names_for(num_classes: int, names: Optional[List[str]]) -> List[str]:
    if names and len(names) == num_classes:
        return list(names)
    return [str(i) for i in range(num_classes)]


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int, multi_label: bool) -> np.ndarray:
    """Per sample: is a true class among the k highest scores."""
    top = np.argsort(-scores, axis=1)[:, :k]
    if multi_label:
        return np.take_along_axis(labels, top, axis=1).max(axis=1) > 0
    return (top == labels.astype(np.int64)[:, None]).any(axis=1)


def multi_label_accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """Share of (sample, class) decisions that are right at ``threshold``."""
    return float(((scores >= threshold) == (labels > 0.5)).mean()) if len(labels) else 0.0


def multi_label_report(
    scores: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    loss: float,
    top_k: Optional[int] = None,
    best_epoch: Optional[int] = None,
    threshold: float = 0.5,
) -> Dict[str, Any]:
    """Metrics of sigmoid ``scores`` (n, classes) against multi-hot ``labels`` (n, classes)."""
    predicted = scores >= threshold
    truth = labels > 0.5
    tp = (predicted & truth).sum(axis=0)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    k = top_k or min(5, scores.shape[1])
    report: Dict[str, Any] = {
        "accuracy": multi_label_accuracy(scores, labels, threshold),
        "subset_accuracy": float((predicted == truth).all(axis=1).mean()) if len(labels) else 0.0,
        "top_k_accuracy": float(top_k_hits(scores, labels, k, True).mean()) if len(labels) else 0.0,
        "top_k": k,
        "loss": float(loss),
        "samples": int(len(labels)),
        "multi_label": True,
        "threshold": threshold,
        "label_names": list(label_names),
        "per_class": per_class(label_names, tp, fp, fn, true_positives=tp, false_positives=fp, false_negatives=fn),
    }
    if best_epoch is not None:
        report["best_epoch"] = best_epoch
    return report
