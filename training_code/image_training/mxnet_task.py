"""What differs between the MXNet backend's single-label (softmax) and multi-label (sigmoid,
multi-hot) training: the loss, the probabilities, the accuracy and the evaluation report."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import mxnet as mx
import numpy as np
from mxnet import gluon

from .evaluation import multi_label_accuracy, multi_label_report, single_label_report, top_k_hits


class Task:
    """What differs between single-label (softmax) and multi-label (sigmoid, multi-hot) training."""

    def __init__(self, hp: Dict[str, Any], class_counts: Dict[str, int], train_samples: int) -> None:
        self.multi_label = bool(hp["multi_label"])
        self.num_classes = hp["num_classes"]
        self.label_width = self.num_classes if self.multi_label else 1
        if not self.multi_label:
            self.loss: gluon.loss.Loss = gluon.loss.SoftmaxCrossEntropyLoss()
            self.pos_weight = None
            return
        self.loss = gluon.loss.SigmoidBinaryCrossEntropyLoss()
        self.pos_weight = None
        if hp["use_weighted_loss"]:
            # each class's positives weigh as much as its negatives: (negatives / positives)
            counts = np.array([max(1, class_counts.get(str(c), 0)) for c in range(self.num_classes)], np.float32)
            self.pos_weight = ((train_samples - counts).clip(min=1) / counts).reshape(1, -1)

    def batch_loss(self, out: mx.nd.NDArray, y: mx.nd.NDArray) -> mx.nd.NDArray:
        if self.pos_weight is None:
            return self.loss(out, y)
        return self.loss(out, y, None, mx.nd.array(self.pos_weight, ctx=out.context))

    def probabilities(self, out: mx.nd.NDArray) -> np.ndarray:
        return (mx.nd.sigmoid(out) if self.multi_label else mx.nd.softmax(out)).asnumpy()

    def accuracy(self, scores: np.ndarray, labels: np.ndarray) -> float:
        if self.multi_label:
            return multi_label_accuracy(scores, labels)
        return float((scores.argmax(axis=1) == labels).mean()) if len(labels) else 0.0

    def top_k_accuracy(self, scores: np.ndarray, labels: np.ndarray, k: int) -> float:
        return float(top_k_hits(scores, labels, k, self.multi_label).mean()) if len(labels) else 0.0

    def report(
        self, scores: np.ndarray, labels: np.ndarray, names: List[str], loss: float, top_k: Optional[int], best: int
    ) -> Dict[str, Any]:
        if self.multi_label:
            return multi_label_report(scores, labels, names, loss, top_k, best_epoch=best)
        return single_label_report(scores, labels, names, loss, top_k, best_epoch=best)
