"""The MXNet serving handlers (image_training.mxnet_inference) where the other tests leave them
loose: ``model_fn``, ``predict_fn`` and ``_scores`` with a small stand-in for the ``mxnet`` module
(the main environment has no MXNet; the stand-in has only what the handlers touch: ``mx.cpu``,
``mx.gpu``, ``mx.context.num_gpus``, ``mx.gluon.SymbolBlock.imports``, ``mx.nd.array``,
``mx.nd.softmax`` and ``mx.nd.sigmoid``, and NDArray's ``astype`` and ``asnumpy``). It keeps the
MXNet 1.9 rules the handlers rely on: ``mx.nd.array`` and ``astype`` take a dtype of None for
float32 and an array without a ctx is on the current context (the CPU), and a network refuses an
input of another context, dtype or shape than its own.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``_scores``: ``model["info"].get("dtype", None)`` and ``.get("dtype")`` (mutants 14 and 16):
  for a model-info.json without a dtype, ``mx.nd.array(data, dtype=None)`` is float32, as
  ``"float32"`` is (MXNet's ``dtype = mx_real_t if dtype is None``); mxnet_export always writes
  the dtype anyway.
- ``_scores``: ``out.astype(None)`` (mutant 24): MXNet 1.9's ``NDArray.astype`` allocates the copy
  with ``empty(..., dtype=None)``, which is float32, the cast the handler asks for.
"""

from __future__ import annotations

import json
import math
import os
import sys
import types
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytest

from image_training import mxnet_inference
from image_training.serving import VERBOSE, Records, RequestError
from tests.builders import png

# -- a stand-in for the mxnet module --------------------------------------------------------------


class Context:
    """mx.Context: equal when the device type and id are."""

    def __init__(self, device_type: str, device_id: Any) -> None:
        self.device_type = device_type
        self.device_id = device_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and (self.device_type, self.device_id) == (other.device_type, other.device_id)

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"


def cpu(device_id: int = 0) -> Context:
    return Context("cpu", device_id)


def gpu(device_id: int = 0) -> Context:
    return Context("gpu", device_id)


class NDArray:
    """An mx.nd.NDArray: values on a context."""

    def __init__(self, values: np.ndarray, context: Context) -> None:
        self.values = values
        self.context = context

    def astype(self, dtype: Any) -> NDArray:
        return NDArray(self.values.astype(np.float32 if dtype is None else np.dtype(dtype)), self.context)

    def asnumpy(self) -> np.ndarray:
        return self.values.copy()


def array(source: Any, ctx: Optional[Context] = None, dtype: Any = None) -> NDArray:
    """mx.nd.array: float32 unless told; on the current context (the CPU) unless told."""
    values = np.array(source, dtype=np.float32 if dtype is None else np.dtype(dtype))
    return NDArray(values, cpu() if ctx is None else ctx)


def softmax(x: NDArray) -> NDArray:
    shifted = np.exp(x.values - x.values.max(axis=-1, keepdims=True))
    return NDArray(shifted / shifted.sum(axis=-1, keepdims=True), x.context)


def sigmoid(x: NDArray) -> NDArray:
    return NDArray(1 / (1 + np.exp(-x.values)), x.context)


class Net:
    """What SymbolBlock.imports gives: a network on ``ctx`` whose parameters are ``dtype``. For an
    image batch (N, 3, H, W) its logits are the means of the first two channels (two classes)."""

    def __init__(
        self, symbol_file: Any, input_names: Any, param_file: Any = None, ctx: Any = None, dtype: str = "float32"
    ) -> None:
        self.files = (symbol_file, input_names, param_file)
        self.ctx = cpu() if ctx is None else ctx
        self.dtype = np.dtype(dtype)
        self.hybridized: List[Dict[str, Any]] = []
        self.inputs: List[NDArray] = []

    def hybridize(self, **kwargs: Any) -> None:
        self.hybridized.append(kwargs)

    def __call__(self, x: NDArray) -> NDArray:
        self.inputs.append(x)
        if x.context != self.ctx:
            raise RuntimeError(f"the input is on {x.context}, the network on {self.ctx}")
        if x.values.dtype != self.dtype:
            raise TypeError(f"the input is {x.values.dtype}, the network {self.dtype}")
        if x.values.ndim != 4 or x.values.shape[1] != 3:
            raise ValueError(f"the input's shape {x.values.shape} is not (N, 3, H, W)")
        return NDArray(x.values[:, :2].mean(axis=(2, 3)).astype(self.dtype), x.context)


@pytest.fixture
def fake_mx(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """``import mxnet`` gives the stand-in; ``gpus`` is how many GPUs it sees, ``dtype`` the
    parameters' dtype of what it loads, ``nets`` what it loaded."""
    state = types.SimpleNamespace(gpus=0, dtype="float32", nets=[])

    def imports(symbol_file: Any, input_names: Any, param_file: Any = None, ctx: Any = None) -> Net:
        if ctx is not None and ctx.device_type == "gpu" and not 0 <= ctx.device_id < state.gpus:
            raise RuntimeError(f"no such device: {ctx}")
        state.nets.append(Net(symbol_file, input_names, param_file, ctx, state.dtype))
        return state.nets[-1]

    module = types.ModuleType("mxnet")
    module.cpu = cpu  # type: ignore[attr-defined]
    module.gpu = gpu  # type: ignore[attr-defined]
    module.context = types.SimpleNamespace(num_gpus=lambda: state.gpus)  # type: ignore[attr-defined]
    module.gluon = types.SimpleNamespace(SymbolBlock=types.SimpleNamespace(imports=imports))  # type: ignore[attr-defined]
    module.nd = types.SimpleNamespace(array=array, softmax=softmax, sigmoid=sigmoid)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mxnet", module)
    return state


@pytest.fixture
def mx_loaded() -> Iterator[Dict[str, Any]]:
    """mxnet_inference keeps the loaded model in a module global; start empty, restore it afterwards."""
    saved = dict(mxnet_inference._LOADED)
    mxnet_inference._LOADED.clear()
    yield mxnet_inference._LOADED
    mxnet_inference._LOADED.clear()
    mxnet_inference._LOADED.update(saved)


INFO: Dict[str, Any] = {
    "symbol": "model-symbol.json",
    "params": "model-0007.params",
    "image_shape": [3, 8, 8],
    "resize": 8,
    "mean_rgb": [0, 0, 0],
    "std_rgb": [100, 100, 100],
    "labels": ["red", "green"],
    "dtype": "float32",
    "multi_label": False,
}


def model_dir(tmp_path: Any, **changes: Any) -> str:
    (tmp_path / "model-info.json").write_text(json.dumps(dict(INFO, **changes)))
    return str(tmp_path)


def image(first: float, second: float) -> np.ndarray:
    """A preprocessed (1, 3, 2, 2) float32 image whose channels' means are first, second and 0."""
    data = np.zeros((1, 3, 2, 2), np.float32)
    data[0, 0], data[0, 1] = first, second
    return data


def softmax_of(*logits: float) -> List[float]:
    total = sum(math.exp(x) for x in logits)
    return [math.exp(x) / total for x in logits]


# -- model_fn -------------------------------------------------------------------------------------


def test_model_fn_loads_the_symbol_and_params_named_by_model_info_on_the_cpu(
    fake_mx: types.SimpleNamespace, mx_loaded: Dict[str, Any], tmp_path: Any
) -> None:
    path = model_dir(tmp_path)
    model = mxnet_inference.model_fn(path)
    (net,) = fake_mx.nets
    symbol, params = os.path.join(path, "model-symbol.json"), os.path.join(path, "model-0007.params")
    assert net.files == (symbol, ["data"], params)
    assert net.ctx == cpu()
    assert net.hybridized == [{"static_alloc": True}]
    assert model is mxnet_inference._LOADED
    assert model == {"net": net, "info": dict(INFO), "ctx": cpu()}
    assert model["net"] is net


def test_model_fn_puts_the_network_on_the_first_gpu_where_there_are_gpus(
    fake_mx: types.SimpleNamespace, mx_loaded: Dict[str, Any], tmp_path: Any
) -> None:
    fake_mx.gpus = 2
    model = mxnet_inference.model_fn(model_dir(tmp_path))
    (net,) = fake_mx.nets
    assert net.ctx == gpu(0) and model["ctx"] == gpu(0)


def test_a_model_dir_without_model_info_cannot_be_loaded(
    fake_mx: types.SimpleNamespace, mx_loaded: Dict[str, Any], tmp_path: Any
) -> None:
    with pytest.raises(FileNotFoundError):
        mxnet_inference.model_fn(str(tmp_path))
    assert fake_mx.nets == [] and mx_loaded == {}


def test_the_handlers_answer_an_image_from_model_dir_to_response(
    fake_mx: types.SimpleNamespace, mx_loaded: Dict[str, Any], tmp_path: Any
) -> None:
    model = mxnet_inference.model_fn(model_dir(tmp_path))
    data = mxnet_inference.input_fn(png(8, 8, (200, 20, 20)), "image/png")  # no model argument
    assert isinstance(data, np.ndarray)
    body, content_type = mxnet_inference.output_fn(mxnet_inference.predict_fn(data, model), VERBOSE)
    assert content_type == VERBOSE
    answer = json.loads(body)
    assert answer["predicted_label"] == "red"
    assert answer["probabilities"] == pytest.approx(softmax_of(2.0, 0.2), rel=1e-6)  # channel means 200/100, 20/100


# -- _scores and predict_fn -------------------------------------------------------------------------


def test_a_single_label_model_s_scores_are_the_softmax_of_its_logits(fake_mx: types.SimpleNamespace) -> None:
    net = Net("s", ["data"], "p")
    scores = mxnet_inference._scores(image(1.0, 3.0), {"net": net, "ctx": cpu(), "info": dict(INFO)})
    assert scores == pytest.approx(softmax_of(1.0, 3.0), rel=1e-6)
    assert all(type(s) is float for s in scores)
    (x,) = net.inputs
    assert np.array_equal(x.values, image(1.0, 3.0))  # the request's image, a batch of one


def test_a_multi_label_model_s_scores_are_the_sigmoid_of_its_logits(fake_mx: types.SimpleNamespace) -> None:
    model = {"net": Net("s", ["data"], "p"), "ctx": cpu(), "info": dict(INFO, multi_label=True)}
    scores = mxnet_inference._scores(image(1.0, -2.0), model)
    assert scores == pytest.approx([1 / (1 + math.exp(-1.0)), 1 / (1 + math.exp(2.0))], rel=1e-6)


def test_a_float16_model_gets_a_float16_batch_and_gives_float32_scores(fake_mx: types.SimpleNamespace) -> None:
    net = Net("s", ["data"], "p", dtype="float16")
    scores = mxnet_inference._scores(image(1.0, 3.0), {"net": net, "ctx": cpu(), "info": dict(INFO, dtype="float16")})
    assert net.inputs[0].values.dtype == np.float16
    assert scores == pytest.approx(softmax_of(1.0, 3.0), rel=1e-6)  # to float32 precision, not float16's


def test_a_model_info_without_a_dtype_is_a_float32_model(fake_mx: types.SimpleNamespace) -> None:
    info = {key: value for key, value in INFO.items() if key != "dtype"}
    net = Net("s", ["data"], "p")
    assert mxnet_inference._scores(image(1.0, 3.0), {"net": net, "ctx": cpu(), "info": info}) == pytest.approx(
        softmax_of(1.0, 3.0), rel=1e-6
    )
    assert net.inputs[0].values.dtype == np.float32


def test_the_batch_is_put_on_the_network_s_gpu(fake_mx: types.SimpleNamespace) -> None:
    net = Net("s", ["data"], "p", ctx=gpu(0))
    scores = mxnet_inference._scores(image(1.0, 3.0), {"net": net, "ctx": gpu(0), "info": dict(INFO)})
    assert net.inputs[0].context == gpu(0)
    assert scores == pytest.approx(softmax_of(1.0, 3.0), rel=1e-6)


def test_predict_fn_gives_the_scores_of_the_image(fake_mx: types.SimpleNamespace) -> None:
    net = Net("s", ["data"], "p")
    scores = mxnet_inference.predict_fn(image(3.0, 1.0), {"net": net, "ctx": cpu(), "info": dict(INFO)})
    assert scores == pytest.approx(softmax_of(3.0, 1.0), rel=1e-6)
    assert len(net.inputs) == 1 and np.array_equal(net.inputs[0].values, image(3.0, 1.0))


def test_predict_fn_answers_each_record_with_its_image_s_scores(fake_mx: types.SimpleNamespace) -> None:
    net = Net("s", ["data"], "p")
    refused = RequestError(400, "the body is not a JPEG or PNG image")
    model = {"net": net, "ctx": cpu(), "info": dict(INFO)}
    predictions = mxnet_inference.predict_fn(Records([image(3.0, 1.0), refused, image(0.0, 2.0)]), model)
    assert isinstance(predictions, Records)
    assert predictions[1] is refused
    assert predictions[0] == pytest.approx(softmax_of(3.0, 1.0), rel=1e-6)
    assert predictions[2] == pytest.approx(softmax_of(0.0, 2.0), rel=1e-6)
    assert len(net.inputs) == 2  # one forward pass per answered record
    assert predictions[0] == mxnet_inference.predict_fn(image(3.0, 1.0), model)  # the image path's answer
