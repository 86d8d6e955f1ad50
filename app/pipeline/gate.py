"""The quality gate: a trained model is approved when it reaches the accuracy threshold and
does not do worse than the model approved before it. Pure logic, shared by the local pipeline
and the cloud workflow's evaluation step."""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional


class GateDecision(NamedTuple):
    approved: bool
    reason: str


def decide(
    evaluation: Dict[str, Any], threshold: float, current: Optional[Dict[str, Any]] = None, tolerance: float = 0.0
) -> GateDecision:
    """Approve ``evaluation`` if accuracy >= threshold and >= the current model's - tolerance."""
    accuracy = float(evaluation.get("accuracy", 0.0))
    if accuracy < threshold:
        return GateDecision(False, f"accuracy {accuracy:.4f} is below the threshold {threshold:.4f}")
    if current is not None:
        before = float(current.get("accuracy", 0.0))
        if accuracy < before - tolerance:
            return GateDecision(False, f"accuracy {accuracy:.4f} is below the approved model's {before:.4f}")
        return GateDecision(
            True, f"accuracy {accuracy:.4f} >= threshold {threshold:.4f} and >= the approved model's {before:.4f}"
        )
    return GateDecision(True, f"accuracy {accuracy:.4f} >= threshold {threshold:.4f}")
