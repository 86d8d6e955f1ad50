"""The quality gate: a trained model is approved when it reaches the accuracy threshold and
does not do worse than the approved model before it (by more than the allowed regression).
The cloud's Evaluate step and the local pipeline both decide with it."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional

AUTO, MANUAL = "auto", "manual"  # approval modes: the gate approves, or a person does
APPROVED, REJECTED, PENDING = "Approved", "Rejected", "PendingManualApproval"  # Model Registry statuses


class GateDecision(NamedTuple):
    approved: bool
    reason: str


def decide(
    evaluation: Mapping[str, Any],
    threshold: float,
    current: Optional[Mapping[str, Any]] = None,
    tolerance: float = 0.0,
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


def approval_status(decision: GateDecision, mode: str) -> str:
    """The Model Registry status: a rejected model is registered as Rejected; a passing one is
    Approved (auto) or waits for a person (manual)."""
    if not decision.approved:
        return REJECTED
    return APPROVED if mode == AUTO else PENDING
