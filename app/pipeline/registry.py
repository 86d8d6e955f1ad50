"""A local model registry with the shape of a SageMaker Model Package Group: numbered versions
with their metrics, approval status, lineage (dataset version, validation report, job) and drift
baseline (the cloud's DriftCheckBaselines)."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from imgclf_core.gate import APPROVED

BASELINE_FILE = "baseline.json"  # image_training.baseline.FILE_NAME

log = logging.getLogger(__name__)


def job_baseline(output_tar: Optional[Path]) -> Optional[bytes]:
    """The job's baseline.json from its output.tar.gz (SageMaker's copy of output/data), as the
    cloud's gate reads it: None where the job made none, or left one that is no JSON object (a
    warning), as the gate then registers the model without DriftCheckBaselines."""
    if output_tar is None or not output_tar.exists():
        return None
    try:
        with tarfile.open(output_tar) as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.lstrip("./") == BASELINE_FILE), None)
            stream = tar.extractfile(member) if member is not None else None
            data = stream.read() if stream is not None else None
        if data is not None and not isinstance(json.loads(data), dict):
            raise ValueError("not a JSON object")
    except (tarfile.TarError, OSError, ValueError) as err:
        log.warning("%s: %s not recorded: %s", output_tar, BASELINE_FILE, err)
        return None
    return data


class ModelRegistry:
    def __init__(self, root: str, group: str) -> None:
        self.folder = Path(root) / group
        self.folder.mkdir(parents=True, exist_ok=True)

    def versions(self) -> List[Dict[str, Any]]:
        found = []
        for meta in sorted(self.folder.glob("v*/package.json"), key=lambda p: int(p.parent.name[1:])):
            found.append(json.loads(meta.read_text()))
        return found

    def find(self, execution: str) -> Optional[Dict[str, Any]]:
        """The version an earlier run with this execution name registered, if any."""
        return next((v for v in self.versions() if v["execution"] == execution), None)

    def approved(self) -> Optional[Dict[str, Any]]:
        """The newest approved version."""
        return next((v for v in reversed(self.versions()) if v["status"] == APPROVED), None)

    def register(
        self,
        model_tar: Path,
        evaluation: Dict[str, Any],
        status: str,
        execution: str,
        lineage: Dict[str, Any],
        reason: str,
        baseline: Optional[bytes] = None,
    ) -> Dict[str, Any]:
        """A new version: the model, its evaluation and, where the job made one, its drift
        baseline (``baseline``: baseline.json as the job wrote it) side by side in its folder."""
        number = len(self.versions()) + 1
        folder = self.folder / f"v{number}"
        folder.mkdir()
        shutil.copy2(model_tar, folder / "model.tar.gz")
        (folder / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
        if baseline is not None:
            (folder / BASELINE_FILE).write_bytes(baseline)
        package = {
            "version": number,
            "status": status,
            "status_reason": reason,
            "execution": execution,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metrics": {k: evaluation[k] for k in ("accuracy", "top_k_accuracy", "loss") if k in evaluation},
            "model": str(folder / "model.tar.gz"),
            "baseline": str(folder / BASELINE_FILE) if baseline is not None else None,  # DriftCheckBaselines
            "lineage": lineage,
        }
        (folder / "package.json").write_text(json.dumps(package, indent=2))
        return package

    def set_deployed(self, version: int) -> None:
        (self.folder / "deployed.json").write_text(json.dumps({"version": version}))

    def deployed(self) -> Optional[Dict[str, Any]]:
        path = self.folder / "deployed.json"
        if not path.exists():
            return None
        number = json.loads(path.read_text())["version"]
        return next((v for v in self.versions() if v["version"] == number), None)
