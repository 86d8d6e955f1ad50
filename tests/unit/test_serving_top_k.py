"""The ``top_k`` a model was trained with (model-info.json) is what both backends' serving handlers
answer with in the verbose response, and the multi-label flag reaches the MXNet answer. The
handlers' output functions are called directly (no HTTP server, no framework)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest

from image_training import mxnet_inference, tf_inference
from image_training.serving import JSON, JSONLINES, VERBOSE, RequestError

LABELS = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu"]
PROBS = [0.02, 0.30, 0.05, 0.40, 0.08, 0.10, 0.05]  # best first: dog, bee, fox, eel, cat|gnu, ant


def info(**extra: Any) -> Dict[str, Any]:
    return {"labels": LABELS, **extra}


def verbose(body: str) -> Dict[str, Any]:
    return json.loads(body)


def top(body: str) -> List[str]:
    return [entry["label"] for entry in verbose(body)["top_k"]]


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_mxnet_output_fn_answers_the_configured_top_k(k: int) -> None:
    body, content_type = mxnet_inference.output_fn(PROBS, VERBOSE, {"info": info(top_k=k)})
    assert content_type == VERBOSE
    assert top(body) == ["dog", "bee", "fox", "eel", "cat", "gnu", "ant"][:k]
    assert verbose(body)["predicted_label"] == "dog"
    assert [e["probability"] for e in verbose(body)["top_k"]] == sorted(PROBS, reverse=True)[:k]


@pytest.mark.parametrize("k", [1, 3, 6])
def test_tf_output_fn_answers_the_configured_top_k(tf_loaded: Dict[str, Any], k: int) -> None:
    tf_loaded["info"] = info(top_k=k)
    body, content_type = tf_inference.output_fn(PROBS, VERBOSE)
    assert content_type == VERBOSE and len(top(body)) == k and top(body)[0] == "dog"


@pytest.mark.parametrize("k", [2, 4])
def test_tf_serving_output_handler_answers_the_configured_top_k(tf_loaded: Dict[str, Any], k: int) -> None:
    tf_loaded["info"] = info(top_k=k)
    response = SimpleNamespace(status_code=200, content=json.dumps({"predictions": [PROBS]}).encode())
    body, content_type = tf_inference.output_handler(response, SimpleNamespace(accept_header=VERBOSE))
    assert content_type == VERBOSE and top(body) == ["dog", "bee", "fox", "eel"][:k]


def test_tf_serving_output_handler_reads_model_info_when_nothing_is_loaded(
    tf_loaded: Dict[str, Any], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tf_loaded.clear()
    (tmp_path / "model-info.json").write_text(json.dumps(info(top_k=3)))
    monkeypatch.setenv("SAGEMAKER_TFS_MODEL_DIR", str(tmp_path))
    response = SimpleNamespace(status_code=200, content=json.dumps({"predictions": [PROBS]}).encode())
    body, _ = tf_inference.output_handler(response, SimpleNamespace(accept_header=VERBOSE))
    assert top(body) == ["dog", "bee", "fox"]


def test_tf_serving_output_handler_passes_a_model_error_on(tf_loaded: Dict[str, Any]) -> None:
    tf_loaded["info"] = info(top_k=3)
    response = SimpleNamespace(status_code=400, content=b'{"error": "bad input"}')
    with pytest.raises(ValueError, match="bad input"):
        tf_inference.output_handler(response, SimpleNamespace(accept_header=VERBOSE))


def test_without_a_configured_top_k_both_answer_five(tf_loaded: Dict[str, Any]) -> None:
    tf_loaded["info"] = info()
    assert len(top(mxnet_inference.output_fn(PROBS, VERBOSE, {"info": info()})[0])) == 5
    assert len(top(tf_inference.output_fn(PROBS, VERBOSE)[0])) == 5


def test_mxnet_output_fn_uses_the_loaded_model_when_given_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mxnet_inference, "_LOADED", {"info": info(top_k=2)})
    assert top(mxnet_inference.output_fn(PROBS, VERBOSE)[0]) == ["dog", "bee"]


def test_multi_label_models_list_every_label_at_one_half_or_more() -> None:
    probs = [0.9, 0.1, 0.5, 0.49, 0.7, 0.0, 0.2]
    multi = verbose(mxnet_inference.output_fn(probs, VERBOSE, {"info": info(top_k=2, multi_label=True)})[0])
    assert multi["predicted_labels"] == ["ant", "cat", "eel"]
    single = verbose(mxnet_inference.output_fn(probs, VERBOSE, {"info": info(top_k=2)})[0])
    assert "predicted_labels" not in single


def test_plain_formats_carry_every_probability(tf_loaded: Dict[str, Any]) -> None:
    tf_loaded["info"] = info(top_k=1)
    for output in (
        lambda accept: mxnet_inference.output_fn(PROBS, accept, {"info": info(top_k=1)}),
        lambda accept: tf_inference.output_fn(PROBS, accept),
    ):
        body, content_type = output(JSON)
        assert content_type == JSON and json.loads(body) == PROBS
        body, content_type = output(JSONLINES)
        assert content_type == JSONLINES and body.endswith("\n") and json.loads(body) == {"prediction": PROBS}
        with pytest.raises(RequestError) as err:
            output("text/csv")
        assert err.value.status == 406


def test_render_defaults_to_five_and_single_label() -> None:
    from image_training.serving import render

    body = verbose(render(PROBS, LABELS, VERBOSE)[0])
    assert len(body["top_k"]) == 5 and "predicted_labels" not in body


def test_tf_answers_are_single_label_with_five_by_default(tf_loaded: Dict[str, Any]) -> None:
    tf_loaded["info"] = info()
    response = SimpleNamespace(status_code=200, content=json.dumps({"predictions": [PROBS]}).encode())
    body = verbose(tf_inference.output_handler(response, SimpleNamespace(accept_header=VERBOSE))[0])
    assert len(body["top_k"]) == 5 and "predicted_labels" not in body
    assert "predicted_labels" not in verbose(tf_inference.output_fn(PROBS, VERBOSE)[0])


@pytest.mark.parametrize(
    ("status", "answered"), [(400, 400), (404, 404), (499, 499), (500, 500), (503, 500), (302, 500)]
)
def test_tf_serving_errors_keep_client_statuses_and_turn_others_into_500(
    tf_loaded: Dict[str, Any], status: int, answered: int
) -> None:
    tf_loaded["info"] = info()
    text = "x" * 400 + "\xff"
    response = SimpleNamespace(status_code=status, content=text.encode("latin-1"))
    with pytest.raises(ValueError) as err:
        tf_inference.output_handler(response, SimpleNamespace(accept_header=VERBOSE))
    assert str(err.value) == f"{answered} the model cannot answer: " + "x" * 300


def test_tf_serving_output_handler_refuses_an_accept_it_cannot_answer(tf_loaded: Dict[str, Any]) -> None:
    tf_loaded["info"] = info()
    response = SimpleNamespace(status_code=200, content=json.dumps({"predictions": [PROBS]}).encode())
    with pytest.raises(ValueError) as err:
        tf_inference.output_handler(response, SimpleNamespace(accept_header="text/csv"))
    assert str(err.value).startswith("406 cannot answer in 'text/csv'")
