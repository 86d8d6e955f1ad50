"""SageMaker inference handlers for models of the MXNet backend (``code/inference.py`` in
model.tar.gz, for the AWS MXNet inference container and ``imgclf serve``)."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .serving import check_content_type, preprocess, render, response_type

MODEL_INFO = "model-info.json"


def model_fn(model_dir: str) -> Dict[str, Any]:
    import mxnet as mx

    with open(os.path.join(model_dir, MODEL_INFO)) as f:
        info = json.load(f)
    ctx = mx.gpu(0) if mx.context.num_gpus() else mx.cpu()
    net = mx.gluon.SymbolBlock.imports(
        os.path.join(model_dir, info["symbol"]), ["data"], os.path.join(model_dir, info["params"]), ctx=ctx
    )
    net.hybridize(static_alloc=True)
    _LOADED.update(net=net, info=info, ctx=ctx)  # input_fn and output_fn get no model argument
    return _LOADED


def input_fn(request_body: bytes, content_type: Optional[str], model: Optional[Dict[str, Any]] = None) -> np.ndarray:
    check_content_type(content_type)
    info = (model or _LOADED)["info"]
    return preprocess(request_body, info["image_shape"], info["resize"], info["mean_rgb"], info["std_rgb"])


def predict_fn(data: np.ndarray, model: Dict[str, Any]) -> List[float]:
    import mxnet as mx

    out = model["net"](mx.nd.array(data, ctx=model["ctx"], dtype=model["info"].get("dtype", "float32")))
    out = out.astype("float32")
    scores = mx.nd.sigmoid(out) if model["info"].get("multi_label") else mx.nd.softmax(out)
    return scores.asnumpy()[0].tolist()


def output_fn(
    prediction: List[float], accept: Optional[str], model: Optional[Dict[str, Any]] = None
) -> Tuple[str, str]:
    info = (model or _LOADED)["info"]
    return render(
        prediction, info["labels"], response_type(accept), info.get("top_k") or 5, bool(info.get("multi_label"))
    )


_LOADED: Dict[str, Any] = {}
