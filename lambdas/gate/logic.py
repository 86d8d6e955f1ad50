"""The Evaluate step's reading of a training job's output; the gate's rule itself is
imgclf_core.gate, which the local pipeline applies too."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any, Dict, Optional

EVALUATION_FILE = "evaluation.json"
BASELINE_FILE = "baseline.json"  # image_training.baseline.FILE_NAME


class UnreadableBaseline(ValueError):
    """output.tar.gz holds a baseline.json that is not a JSON object."""


def _member(output_tar_gz: bytes, name: str) -> Optional[bytes]:
    """The bytes of ``name`` at the root of a training job's output.tar.gz (SageMaker's copy of
    output/data), None where it holds none; ValueError where the archive cannot be read."""
    try:
        with tarfile.open(fileobj=io.BytesIO(output_tar_gz), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.lstrip("./") == name:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        return handle.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ValueError(f"output.tar.gz cannot be read: {err}") from None
    return None


def evaluation_from_output(output_tar_gz: bytes) -> Dict[str, Any]:
    """evaluation.json from a training job's output.tar.gz (SageMaker's copy of output/data)."""
    data = _member(output_tar_gz, EVALUATION_FILE)
    if data is None:
        raise ValueError(f"the training job left no {EVALUATION_FILE} in output.tar.gz")
    return dict(json.loads(data))


def baseline_from_output(output_tar_gz: bytes) -> Optional[bytes]:
    """baseline.json from a training job's output.tar.gz, as the job wrote it (the registry's
    copy equals the model's); None where the job made none, which costs the model nothing
    (image_training.baseline.for_model). UnreadableBaseline where it is there but no JSON object."""
    data = _member(output_tar_gz, BASELINE_FILE)
    if data is None:
        return None
    try:
        content = json.loads(data)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError
        raise UnreadableBaseline(f"{BASELINE_FILE} in output.tar.gz is not JSON: {err}") from None
    if not isinstance(content, dict):
        raise UnreadableBaseline(f"{BASELINE_FILE} in output.tar.gz is {type(content).__name__}, not a JSON object")
    return data
