"""Inference handlers for models of the TensorFlow backend (``code/inference.py`` in
model.tar.gz): ``input_handler``/``output_handler`` for the AWS TensorFlow Serving container, and
model_fn/input_fn/predict_fn/output_fn for ``imgclf serve``. Both share image_training.serving,
so answers are the same as the MXNet backend's."""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from .serving import RequestError, check_content_type, check_encoded, decode_image, render, response_type

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


def graph_bytes(body: bytes) -> bytes:
    """The bytes the SavedModel decodes: the request's image once checked to be one (400/413
    otherwise), or, when TensorFlow's decoder would see other pixels than OpenCV's imread (an
    EXIF-rotated or CMYK JPEG), a lossless PNG of the pixels image_dataset.pixels decoded.

    The AWS TensorFlow Serving container has no numpy or Pillow (and a network-isolated endpoint
    cannot install them): there the checks that need no decoder run and the graph decodes, with
    the EXIF orientation and CMYK handling it has of its own (docs/dataset-formats.md)."""
    try:
        from image_dataset.pixels import portable_bytes  # noqa: PLC0415 - shipped next to this module
    except ImportError:
        check_encoded(body)
        return body
    return portable_bytes(body, decode_image(body))


def input_fn(request_body: bytes, content_type: Optional[str]) -> bytes:
    """The encoded image for the SavedModel (which decodes it): see ``graph_bytes``."""
    check_content_type(content_type)
    return graph_bytes(bytes(request_body))


def predict_fn(data: bytes, model: Dict[str, Any]) -> List[float]:
    import tensorflow as tf

    try:
        out = model["fn"](image_bytes=tf.constant([data]))["probabilities"]
    except tf.errors.InvalidArgumentError as err:  # the graph's decoder refused the image: the client's error
        raise RequestError(400, f"the model cannot decode the image: {_graph_error(str(err.message))}") from None
    return [float(p) for p in out.numpy()[0]]


def _graph_error(message: str) -> str:
    """The line of a TensorFlow graph error that says what is wrong (not where it was raised)."""
    noise = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[")
    lines = [line.strip() for line in message.splitlines()]
    return next((line for line in lines if line and not line.startswith(noise)), "invalid image data")[:200]


def output_fn(prediction: List[float], accept: Optional[str]) -> Tuple[str, str]:
    info = _LOADED["info"]
    return render(prediction, info["labels"], response_type(accept), info.get("top_k") or 5)


# -- the AWS TensorFlow Serving container's pre/post-processing hooks -------------------------
# The container answers any exception from a hook with HTTP 500 and {"error": str(exception)}:
# a refused request raises ValueError("STATUS message"), and the API proxy (lambdas/classify)
# gives the client that status.
def input_handler(data: Any, context: Any) -> str:
    """Request -> TF Serving REST body. Bad input is refused here, before the model."""
    body = data.read()
    try:
        check_content_type(context.request_content_type)
        image = graph_bytes(body)
    except RequestError as err:
        raise ValueError(f"{err.status} {err}") from None
    return json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(image).decode()}}]})


def output_handler(response: Any, context: Any) -> Tuple[str, str]:
    """TF Serving's answer -> the product's response formats."""
    if response.status_code != 200:  # TF Serving's 400: the graph refused the image
        status = response.status_code if 400 <= response.status_code < 500 else 500
        raise ValueError(f"{status} the model cannot answer: {response.content.decode('utf-8', 'replace')[:300]}")
    prediction = json.loads(response.content)["predictions"][0]
    model_dir = os.environ.get("SAGEMAKER_TFS_MODEL_DIR", "/opt/ml/model")
    info = _LOADED.get("info") or _info(model_dir)
    try:
        accept = response_type(context.accept_header)
    except RequestError as err:
        raise ValueError(f"{err.status} {err}") from None
    return render(prediction, info["labels"], accept, info.get("top_k") or 5)
