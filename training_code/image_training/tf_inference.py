"""Inference handlers for models of the TensorFlow backend (``code/inference.py`` in
model.tar.gz): ``input_handler``/``output_handler`` for the AWS TensorFlow Serving container, and
model_fn/input_fn/predict_fn/output_fn for ``imgclf serve``. Both share image_training.serving,
so answers are the same as the MXNet backend's, RecordIO bodies (a batch transform of a .rec)
included: one JSON line per record."""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple, Union

from .serving import (
    Records,
    RequestError,
    check_content_type,
    check_encoded,
    decode_image,
    is_recordio,
    per_record,
    record_images,
    record_lines,
    render,
    response_type,
)

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


def input_fn(request_body: bytes, content_type: Optional[str]) -> Union[bytes, Records]:
    """The encoded image for the SavedModel (which decodes it): see ``graph_bytes``; for a
    RecordIO body, each record's (or its RequestError)."""
    if is_recordio(content_type):
        return per_record(graph_bytes, record_images(request_body))
    check_content_type(content_type)
    return graph_bytes(bytes(request_body))


def predict_fn(data: Union[bytes, Records], model: Dict[str, Any]) -> Union[List[float], Records]:
    """The probabilities of an image; of each record of a RecordIO request, one call per record
    (the image path's computation, so a record's answer is its image's)."""
    if isinstance(data, Records):
        return per_record(lambda image: _probabilities(image, model), data)
    return _probabilities(data, model)


def _probabilities(data: bytes, model: Dict[str, Any]) -> List[float]:
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


def output_fn(prediction: Union[List[float], Records], accept: Optional[str]) -> Tuple[str, str]:
    info = _LOADED["info"]
    return _render(prediction, info, response_type(accept))


def _render(prediction: Union[List[float], Records], info: Dict[str, Any], accept: str) -> Tuple[str, str]:
    """The answer in ``accept``: a prediction's, or one line per record of a RecordIO request."""
    if isinstance(prediction, Records):
        return record_lines(prediction, lambda one: render(one, info["labels"], accept, info.get("top_k") or 5)[0])
    return render(prediction, info["labels"], accept, info.get("top_k") or 5)


# -- the AWS TensorFlow Serving container's pre/post-processing hooks -------------------------
# The container answers any exception from a hook with HTTP 500 and {"error": str(exception)}:
# a refused request raises ValueError("STATUS message"), and the API proxy (lambdas/classify)
# gives the client that status.
#
# A RecordIO body (batch transform) goes to TF Serving as one request with an instance per record
# that passed the checks; output_handler needs to know which records those were. The container
# calls both hooks with the same context object for a request (python_service.py's handler), so
# input_handler leaves the records under it here, and output_handler takes them back.
_PENDING: Dict[int, Tuple[Any, Records]] = {}  # id(context) -> (context, the request's records)
_PENDING_LOCK = threading.Lock()
_MAX_PENDING = 256  # requests whose output_handler never ran (TF Serving unreachable) are dropped


def _remember(context: Any, records: Records) -> None:
    with _PENDING_LOCK:
        _PENDING[id(context)] = (context, records)  # holding the context: its id is not reused meanwhile
        while len(_PENDING) > _MAX_PENDING:
            del _PENDING[next(iter(_PENDING))]


def _recall(context: Any) -> Optional[Records]:
    with _PENDING_LOCK:
        found = _PENDING.pop(id(context), None)
    return found[1] if found is not None and found[0] is context else None


def _instances(images: List[bytes]) -> str:
    """TF Serving's REST body for the signature's ``image_bytes``."""
    return json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(image).decode()}} for image in images]})


def input_handler(data: Any, context: Any) -> str:
    """Request -> TF Serving REST body. Bad input is refused here, before the model; for a
    RecordIO body, a record that is refused keeps its place with its error."""
    body = data.read()
    try:
        if is_recordio(context.request_content_type):
            records = per_record(graph_bytes, record_images(body))
            _remember(context, records)
            return _instances([image for image in records if not isinstance(image, RequestError)])
        check_content_type(context.request_content_type)
        image = graph_bytes(body)
    except RequestError as err:
        raise ValueError(f"{err.status} {err}") from None
    return _instances([image])


def _predictions(status: int, content: bytes) -> List[List[float]]:
    """TF Serving's predictions; RequestError with its status for a 4xx (the graph refused an
    image), with 500 for anything else."""
    if status != 200:  # TF Serving's 400: the graph refused the image
        status = status if 400 <= status < 500 else 500
        raise RequestError(status, f"the model cannot answer: {content.decode('utf-8', 'replace')[:300]}")
    return list(json.loads(content)["predictions"])


def _predict_alone(rest_uri: str, image: bytes) -> List[float]:
    """One record's prediction, asked of TF Serving on its own (standard library HTTP)."""
    request = urllib.request.Request(
        rest_uri, _instances([image]).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - TF Serving on localhost
            return _predictions(answer.status, answer.read())[0]
    except urllib.error.HTTPError as err:
        return _predictions(err.code, err.read())[0]


def _record_predictions(response: Any, context: Any, records: Records) -> Records:
    """Each record's prediction, or its error. When the graph refuses one image of several, TF
    Serving refuses them all: each record is then asked alone, so that only its own gets the error."""
    sent = sum(1 for image in records if not isinstance(image, RequestError))
    if not sent:
        return records
    try:
        found = _predictions(response.status_code, response.content)
    except RequestError as err:
        if err.status == 500:
            raise ValueError(f"{err.status} {err}") from None
        return per_record(lambda image: _predict_alone(context.rest_uri, image), records)
    if len(found) != sent:
        raise ValueError(f"500 TF Serving answered {len(found)} predictions for {sent} images")
    answers = iter(found)
    return per_record(lambda image: next(answers), records)


def output_handler(response: Any, context: Any) -> Tuple[str, str]:
    """TF Serving's answer -> the product's response formats (one line per record for RecordIO)."""
    records = _recall(context)
    if records is None:
        try:
            prediction: Union[List[float], Records] = _predictions(response.status_code, response.content)[0]
        except RequestError as err:
            raise ValueError(f"{err.status} {err}") from None
    else:
        prediction = _record_predictions(response, context, records)
    model_dir = os.environ.get("SAGEMAKER_TFS_MODEL_DIR", "/opt/ml/model")
    info = _LOADED.get("info") or _info(model_dir)
    try:
        accept = response_type(context.accept_header)
    except RequestError as err:
        raise ValueError(f"{err.status} {err}") from None
    return _render(prediction, info, accept)
