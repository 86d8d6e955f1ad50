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


EVALUATION_FILE = "evaluation.json"
AUTO, MANUAL = "auto", "manual"


def evaluation_from_output(output_tar_gz: bytes) -> Dict[str, Any]:
    """evaluation.json from a training job's output.tar.gz (SageMaker's copy of output/data)."""
    import io
    import json
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(output_tar_gz), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.lstrip("./") == EVALUATION_FILE:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        return dict(json.load(handle))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ValueError(f"output.tar.gz cannot be read: {err}") from None
    raise ValueError(f"the training job left no {EVALUATION_FILE} in output.tar.gz")


def approval_status(decision: GateDecision, mode: str) -> str:
    """The Model Registry status: a rejected model is registered as Rejected; a passing one is
    Approved (auto) or waits for a person (manual)."""
    if not decision.approved:
        return "Rejected"
    return "Approved" if mode == AUTO else "PendingManualApproval"
