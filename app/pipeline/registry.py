"""A local model registry with the shape of a SageMaker Model Package Group: numbered versions
with their metrics, approval status and lineage (dataset version, validation report, job)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from imgclf_core.gate import APPROVED


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
    ) -> Dict[str, Any]:
        number = len(self.versions()) + 1
        folder = self.folder / f"v{number}"
        folder.mkdir()
        shutil.copy2(model_tar, folder / "model.tar.gz")
        (folder / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
        package = {
            "version": number,
            "status": status,
            "status_reason": reason,
            "execution": execution,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metrics": {k: evaluation[k] for k in ("accuracy", "top_k_accuracy", "loss") if k in evaluation},
            "model": str(folder / "model.tar.gz"),
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
