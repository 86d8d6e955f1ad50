"""The model server, in-process with a stand-in inference module: it takes its forward-pass
lock per record of a RecordIO request, so that one large batch request does not hold every
other client off until its last record is done; several Accept field lines are one list."""

from __future__ import annotations

import http.client
import threading
from types import SimpleNamespace
from typing import Any, List

from app.model_server import Server, make_handler


class Records(list):  # as image_training.serving.Records: a RecordIO request's records
    pass


def test_a_recordio_request_is_predicted_one_record_at_a_time_in_order() -> None:
    calls: List[Any] = []

    def predict_fn(data: Any, model: Any) -> Any:
        calls.append(data)
        return Records(f"p{r}" for r in data) if isinstance(data, Records) else f"p{data}"

    module = SimpleNamespace(
        input_fn=lambda body, content_type: (
            Records(body.decode().split(",")) if "," in body.decode() else body.decode()
        ),
        predict_fn=predict_fn,
        output_fn=lambda prediction, accept: (
            repr(list(prediction) if isinstance(prediction, list) else prediction),
            "text/plain",
        ),
    )
    server = Server(("127.0.0.1", 0), make_handler(module, model=None))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answers = []
        for body in (b"a,b,c", b"d"):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
            conn.request("POST", "/invocations", body, {"Content-Type": "application/x-recordio"})
            response = conn.getresponse()
            answers.append((response.status, response.read().decode()))
            conn.close()
    finally:
        server.shutdown()
        server.server_close()
    assert answers == [(200, "['pa', 'pb', 'pc']"), (200, "'pd'")]
    assert calls == [Records(["a"]), Records(["b"]), Records(["c"]), "d"]
    assert all(type(call) is Records for call in calls[:3])


def test_several_accept_lines_reach_the_handler_as_one_list() -> None:
    seen: List[Any] = []

    def output_fn(prediction: Any, accept: Any) -> Any:
        seen.append(accept)
        return "{}", "application/json"

    module = SimpleNamespace(
        input_fn=lambda body, content_type: body, predict_fn=lambda data, model: data, output_fn=output_fn
    )
    server = Server(("127.0.0.1", 0), make_handler(module, model=None))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for accept in ([], ["text/csv"], ["text/csv", "application/jsonlines;q=0.5"]):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
            conn.putrequest("POST", "/invocations")
            for value in accept:
                conn.putheader("Accept", value)
            conn.putheader("Content-Type", "image/png")
            conn.putheader("Content-Length", "1")
            conn.endheaders(b"x")
            assert conn.getresponse().status == 200
            conn.close()
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None, "text/csv", "text/csv, application/jsonlines;q=0.5"]
