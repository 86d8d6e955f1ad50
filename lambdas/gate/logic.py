"""The Evaluate step's reading of a training job's output; the gate's rule itself is
imgclf_core.gate, which the local pipeline applies too."""

from __future__ import annotations

from typing import Any, Dict

EVALUATION_FILE = "evaluation.json"


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
