"""The MXNet backend's model artifact, named as the built-in algorithm names it (symbol, params
numbered by epochs trained, shapes), plus what serving needs: model-info.json and
code/inference.py with the modules it imports."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from mxnet import gluon

from . import baseline as drift_baseline
from .evaluation import write_evaluation
from .serving import copy_inference_code

ARTIFACT = "image-classification"
MEAN_RGB = (123.68, 116.779, 103.939)  # ImageNet statistics, 0-255 scale; serving uses the same
STD_RGB = (58.393, 57.12, 57.375)


def export(
    net: gluon.HybridBlock,
    model_dir: str,
    best_epoch: int,
    hp: Dict[str, Any],
    names: List[str],
    report: Dict[str, Any],
    baseline: Optional[Dict[str, Any]] = None,
) -> None:
    """The artifact, named as the built-in names it (symbol, params numbered by epochs trained,
    shapes), plus what serving needs: model-info.json and code/inference.py with its modules;
    and baseline.json (image_training.baseline) when given, for ``imgclf monitor``."""
    os.makedirs(model_dir, exist_ok=True)
    epoch = best_epoch + 1  # Epoch[k] in the log is the (k+1)-th epoch
    net.export(os.path.join(model_dir, ARTIFACT), epoch=epoch)
    shape = [hp["mini_batch_size"]] + list(hp["image_shape"])
    with open(os.path.join(model_dir, "model-shapes.json"), "w") as f:
        json.dump([{"shape": shape, "name": "data"}], f)
    with open(os.path.join(model_dir, "labels.json"), "w") as f:
        json.dump(names, f)
    with open(os.path.join(model_dir, "hyperparameters.json"), "w") as f:
        json.dump(hp, f, indent=2)
    info = {
        "backend": "mxnet",
        "symbol": f"{ARTIFACT}-symbol.json",
        "params": f"{ARTIFACT}-{epoch:04d}.params",
        "image_shape": hp["image_shape"],
        "resize": hp["resize"],
        "mean_rgb": MEAN_RGB,
        "std_rgb": STD_RGB,
        "labels": names,
        "top_k": hp["top_k"] or min(5, len(names)),
        "dtype": "float16" if hp["precision_dtype"] == "float16" else "float32",
        "multi_label": bool(hp["multi_label"]),
    }
    with open(os.path.join(model_dir, "model-info.json"), "w") as f:
        json.dump(info, f, indent=2)
    code = os.path.join(model_dir, "code")
    copy_inference_code(code, "mxnet_inference.py")
    with open(os.path.join(code, "inference.py"), "w") as f:
        f.write(
            '"""SageMaker MXNet inference handlers of this model (imgclf)."""\n'
            "from image_training.mxnet_inference import input_fn, model_fn, output_fn, predict_fn  # noqa: F401\n"
        )
    write_evaluation(report, model_dir)
    if baseline is not None:
        drift_baseline.write(baseline, model_dir)
