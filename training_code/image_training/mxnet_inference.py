"""SageMaker inference handlers for models of the MXNet backend (``code/inference.py`` in
model.tar.gz, for the AWS MXNet inference container and ``imgclf serve``). A RecordIO body (a
batch transform of a .rec) is answered record by record, each as the image path answers its
image: the same preprocessing and a forward pass of its own, one JSON line per record."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .serving import (
    Records,
    check_content_type,
    is_recordio,
    per_record,
    preprocess,
    record_images,
    record_lines,
    render,
    response_type,
)

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


def input_fn(
    request_body: bytes, content_type: Optional[str], model: Optional[Dict[str, Any]] = None
) -> Union[np.ndarray, Records]:
    """The network's input for an image; for a RecordIO body, each record's (or its RequestError)."""
    records = is_recordio(content_type)
    if not records:
        check_content_type(content_type)
    info = (model or _LOADED)["info"]

    def prepare(image: bytes) -> np.ndarray:
        return preprocess(image, info["image_shape"], info["resize"], info["mean_rgb"], info["std_rgb"])

    return per_record(prepare, record_images(request_body)) if records else prepare(request_body)


def _scores(data: np.ndarray, model: Dict[str, Any]) -> List[float]:
    import mxnet as mx

    out = model["net"](mx.nd.array(data, ctx=model["ctx"], dtype=model["info"].get("dtype", "float32")))
    out = out.astype("float32")
    scores = mx.nd.sigmoid(out) if model["info"].get("multi_label") else mx.nd.softmax(out)
    return scores.asnumpy()[0].tolist()


def predict_fn(data: Union[np.ndarray, Records], model: Dict[str, Any]) -> Union[List[float], Records]:
    """The probabilities of an image; of each record of a RecordIO request, one forward pass per
    record (the image path's computation, so a record's answer is its image's, to the bit)."""
    if isinstance(data, Records):
        return per_record(lambda one: _scores(one, model), data)
    return _scores(data, model)


def output_fn(
    prediction: Union[List[float], Records], accept: Optional[str], model: Optional[Dict[str, Any]] = None
) -> Tuple[str, str]:
    info = (model or _LOADED)["info"]
    kind = response_type(accept)

    def answer(probabilities: List[float]) -> Tuple[str, str]:
        return render(probabilities, info["labels"], kind, info.get("top_k") or 5, bool(info.get("multi_label")))

    if isinstance(prediction, Records):
        return record_lines(prediction, lambda probabilities: answer(probabilities)[0])
    return answer(prediction)


_LOADED: Dict[str, Any] = {}
