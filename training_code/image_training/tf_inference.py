"""Inference handlers for models of the TensorFlow backend (``code/inference.py`` in
model.tar.gz): ``input_handler``/``output_handler`` for the AWS TensorFlow Serving container, and
model_fn/input_fn/predict_fn/output_fn for ``imgclf serve``. Both share image_training.serving,
so answers are the same as the MXNet backend's."""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from .serving import RequestError, check_content_type, decode, render, response_type

_LOADED: Dict[str, Any] = {}


def _info(model_dir: str) -> Dict[str, Any]:
    with open(os.path.join(model_dir, "model-info.json")) as f:
        return json.load(f)


def model_fn(model_dir: str) -> Dict[str, Any]:
    import tensorflow as tf

    info = _info(model_dir)
    loaded = tf.saved_model.load(os.path.join(model_dir, info["saved_model"]))
    _LOADED.update(info=info, fn=loaded.signatures["serving_default"], keep=loaded)
    return _LOADED


def input_fn(request_body: bytes, content_type: Optional[str]) -> bytes:
    """The encoded image itself (the SavedModel decodes it), once checked to be one."""
    check_content_type(content_type)
    decode(bytes(request_body))  # 400/413 for what is not a decodable JPEG or PNG
    return bytes(request_body)


def predict_fn(data: bytes, model: Dict[str, Any]) -> List[float]:
    import tensorflow as tf

    out = model["fn"](image_bytes=tf.constant([data]))["probabilities"]
    return [float(p) for p in out.numpy()[0]]


def output_fn(prediction: List[float], accept: Optional[str]) -> Tuple[str, str]:
    info = _LOADED["info"]
    return render(prediction, info["labels"], response_type(accept), info.get("top_k") or 5)


# -- the AWS TensorFlow Serving container's pre/post-processing hooks -------------------------
def input_handler(data: Any, context: Any) -> str:
    """Request -> TF Serving REST body. Bad input is refused here, before the model."""
    body = data.read()
    try:
        check_content_type(context.request_content_type)
        decode(body)
    except RequestError as err:
        raise ValueError(f"{err.status} {err}") from None
    return json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(body).decode()}}]})


def output_handler(response: Any, context: Any) -> Tuple[str, str]:
    """TF Serving's answer -> the product's response formats."""
    if response.status_code != 200:
        raise ValueError(response.content.decode("utf-8"))
    prediction = json.loads(response.content)["predictions"][0]
    model_dir = os.environ.get("SAGEMAKER_TFS_MODEL_DIR", "/opt/ml/model")
    info = _LOADED.get("info") or _info(model_dir)
    return render(prediction, info["labels"], response_type(context.accept_header), info.get("top_k") or 5)
