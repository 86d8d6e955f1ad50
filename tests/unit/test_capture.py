"""Endpoint data capture: imgclf_core.capture's record, layout and parsing rules, and
app.capture's writer (sampling, hourly files, failures that never reach the request)."""

from __future__ import annotations

import base64
import datetime
import json
import os
from pathlib import Path
from typing import List

import pytest

from app.capture import CaptureWriter, capture_files, read_captures
from imgclf_core import capture as rules
from tests.builders import png

WHEN = datetime.datetime(2026, 11, 30, 23, 5, 7, 891000, tzinfo=datetime.UTC)
ANSWER = json.dumps({"predicted_label": "cat", "top_k": [{"label": "cat", "probability": 0.9}]})


def test_a_record_has_the_sagemaker_shape() -> None:
    image = png(8, 8)
    record = rules.record(image, "image/png", ANSWER.encode(), "application/json;verbose", "e-1", WHEN, "inf-7")
    assert record == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "image/png",
                "mode": "INPUT",
                "data": base64.b64encode(image).decode(),
                "encoding": "BASE64",
            },
            "endpointOutput": {
                "observedContentType": "application/json;verbose",
                "mode": "OUTPUT",
                "data": ANSWER,
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": "e-1", "inferenceId": "inf-7", "inferenceTime": "2026-11-30T23:05:07Z"},
        "eventVersion": "0",
    }
    assert "inferenceId" not in rules.record(b"x", "image/png", b"{}", "application/json", "e", WHEN)["eventMetadata"]
    line = rules.dumps(record)
    assert line.endswith("\n") and line.count("\n") == 1


@pytest.mark.parametrize(
    "content_type, encoding",
    [
        ("application/json", "JSON"),
        ("Application/JSON; verbose", "JSON"),
        ("application/jsonlines", "JSON"),
        ("text/csv", "CSV"),
        ("image/jpeg", "BASE64"),
        ("application/x-image", "BASE64"),
        (None, "BASE64"),
    ],
)
def test_the_encoding_follows_the_content_type(content_type, encoding) -> None:
    assert rules.encoding_of(content_type) == encoding


def test_text_that_is_not_utf8_is_kept_as_base64() -> None:
    side = rules.payload(b"\xff{}", "application/json", rules.OUTPUT)
    assert side["encoding"] == "BASE64" and base64.b64decode(side["data"]) == b"\xff{}"


def test_a_record_parses_back_to_the_exchange() -> None:
    image = png(5, 7)
    line = rules.dumps(rules.record(image, "image/png", ANSWER.encode(), "application/json", "e-2", WHEN, "id-9"))
    captured = rules.parse_record(line)
    assert captured.request == image and captured.request_type == "image/png"
    assert captured.response_json() == json.loads(ANSWER)
    assert (captured.event_id, captured.inference_id, captured.inference_time) == (
        "e-2",
        "id-9",
        "2026-11-30T23:05:07Z",
    )


def test_a_record_with_one_side_parses() -> None:
    record = rules.record(b"abc", "image/png", b"{}", "application/json", "e", WHEN)
    del record["captureData"]["endpointOutput"]  # CaptureOptions: Input only
    captured = rules.parse_record(json.dumps(record))
    assert captured.request == b"abc" and captured.response is None and captured.response_type == ""
    with pytest.raises(ValueError, match="not captured"):
        captured.response_json()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"eventMetadata": {"eventId": "e"}}',
        '{"captureData": {}, "eventMetadata": {"eventId": "e"}}',
        '{"captureData": {"endpointInput": {"data": "x", "encoding": "BASE64"}}}',
        '{"captureData": {"endpointInput": {"data": "!!", "encoding": "BASE64"}}, "eventMetadata": {"eventId": "e"}}',
        '{"captureData": {"endpointInput": {"data": "x", "encoding": "XML"}}, "eventMetadata": {"eventId": "e"}}',
        '{"captureData": {"endpointInput": {"mode": "OUTPUT", "data": "", "encoding": "CSV"}}, '
        '"eventMetadata": {"eventId": "e"}}',
    ],
)
def test_what_is_no_capture_record_is_refused(text) -> None:
    with pytest.raises(ValueError):
        rules.parse_record(text)


def test_the_key_layout_is_sagemakers() -> None:
    key = rules.capture_key("my-endpoint", WHEN, "f00d")
    assert key == "my-endpoint/AllTraffic/2026/11/30/23/05-07-891-f00d.jsonl"
    assert rules.capture_key("e", WHEN, "id", prefix="s3prefix/capture/") == (
        "s3prefix/capture/e/AllTraffic/2026/11/30/23/05-07-891-id.jsonl"
    )
    local = datetime.datetime(2026, 12, 1, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert rules.capture_prefix("e", local) == "e/AllTraffic/2026/11/30/23"  # always UTC
    assert rules.inference_time(datetime.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"  # naive: UTC


@pytest.mark.parametrize("name", ["", "-a", "a-", "a_b", "a/b", "x" * 64, "a.b"])
def test_endpoint_names_follow_sagemakers_rule(name) -> None:
    with pytest.raises(ValueError):
        rules.check_endpoint_name(name)
    assert rules.check_endpoint_name("imgclf-local--2") == "imgclf-local--2"


def test_sampling() -> None:
    assert not any(rules.sampled(0, draw / 100) for draw in range(100))
    assert all(rules.sampled(100, draw / 100) for draw in range(100))
    assert sum(rules.sampled(25, draw / 100) for draw in range(100)) == 25
    for bad in (-1, 100.5, float("nan")):
        with pytest.raises(ValueError):
            rules.check_percent(bad)


# -- the writer --------------------------------------------------------------------------------


def _writer(root: Path, percent: float = 100.0, **kwargs) -> CaptureWriter:
    return CaptureWriter(str(root), "ep-1", percent, **kwargs)


def test_the_writer_captures_every_request_at_100_percent(tmp_path) -> None:
    writer = _writer(tmp_path, clock=lambda: WHEN)
    images = [png(4 + i, 4) for i in range(5)]
    for i, image in enumerate(images):
        assert writer.offer(image, "image/png", ANSWER.encode(), "application/json;verbose", f"id-{i}" if i else None)
    writer.close()
    assert writer.written == 5 and writer.lost == 0
    files = list(capture_files(str(tmp_path)))
    assert len(files) == 1
    assert Path(files[0]).parent == tmp_path / "ep-1" / "AllTraffic" / "2026" / "11" / "30" / "23"
    assert Path(files[0]).name.startswith("05-07-891-") and files[0].endswith(".jsonl")
    records = [captured for _, captured in read_captures(str(tmp_path))]
    assert [r.request for r in records] == images
    assert [r.inference_id for r in records] == [None, "id-1", "id-2", "id-3", "id-4"]
    assert len({r.event_id for r in records}) == 5
    assert all(r.response_json()["predicted_label"] == "cat" for r in records)


def test_the_writer_captures_nothing_at_0_percent(tmp_path) -> None:
    writer = _writer(tmp_path, 0)
    assert not any(writer.offer(b"x", "image/png", b"{}", "application/json") for _ in range(50))
    writer.close()
    assert list(capture_files(str(tmp_path))) == [] and writer.written == 0


def test_the_writer_samples_with_its_draw(tmp_path) -> None:
    draws = iter([0.1, 0.5, 0.29, 0.3, 0.9])
    writer = _writer(tmp_path, 30, draw=lambda: next(draws))
    taken = [writer.offer(b"%d" % i, "image/png", b"{}", "application/json") for i in range(5)]
    writer.close()
    assert taken == [True, False, True, False, False]
    assert [r.request for _, r in read_captures(str(tmp_path))] == [b"0", b"2"]


def test_the_writer_starts_a_file_each_hour(tmp_path) -> None:
    times = iter([WHEN, WHEN + datetime.timedelta(minutes=10), WHEN + datetime.timedelta(hours=1)])
    writer = _writer(tmp_path, clock=lambda: next(times))
    for _ in range(3):
        writer.offer(b"x", "image/png", b"{}", "application/json")
    writer.close()
    hours = [os.path.relpath(os.path.dirname(f), tmp_path) for f in capture_files(str(tmp_path))]
    assert hours == [
        os.path.join("ep-1", "AllTraffic", "2026", "11", "30", "23"),
        os.path.join("ep-1", "AllTraffic", "2026", "12", "01", "00"),
    ]


def test_a_failed_write_is_logged_and_never_raised(tmp_path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    logged: List[str] = []
    writer = CaptureWriter(str(blocked), "ep", 100, log=logged.append)
    for _ in range(3):
        assert writer.offer(b"x", "image/png", b"{}", "application/json")
    writer.close()
    assert writer.written == 0 and writer.lost == 3
    assert len(logged) == 1 and logged[0].startswith("capture: 1 record(s) not captured: cannot write under")


def test_an_exception_while_sampling_is_logged_not_raised(tmp_path) -> None:
    logged: List[str] = []

    def broken() -> float:
        raise RuntimeError("no randomness")

    writer = _writer(tmp_path, draw=broken, log=logged.append)
    assert writer.offer(b"x", "image/png", b"{}", "application/json") is False
    writer.close()
    assert logged == ["capture: 1 record(s) not captured: RuntimeError: no randomness"]


def test_read_captures_names_a_bad_line(tmp_path) -> None:
    folder = tmp_path / "ep" / "AllTraffic" / "2026" / "11" / "30" / "23"
    folder.mkdir(parents=True)
    good = rules.dumps(rules.record(b"x", "image/png", b"{}", "application/json", "e", WHEN))
    (folder / "00-00-000-a.jsonl").write_text(good + "\n" + "garbage\n")
    with pytest.raises(ValueError, match=r"00-00-000-a.jsonl:line 3: not JSON"):
        list(read_captures(str(tmp_path)))


# -- imgclf serve's capture options ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--capture-percent", "150"], "150 is not a percentage from 0 to 100"),
        (["--capture-percent", "lots"], "'lots' is not a number"),
        (["--endpoint-name", "bad_name"], "'bad_name' is not an endpoint name"),
    ],
)
def test_serve_refuses_bad_capture_options(tmp_path, cli, args, message) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"x")
    code, _, err = cli("serve", "--model", str(model), "--capture", str(tmp_path / "cap"), *args)
    assert code == 2 and message in err


def test_serve_refuses_a_capture_folder_that_is_a_file(tmp_path, cli) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"x")
    (tmp_path / "cap").write_text("a file")
    code, _, err = cli("serve", "--model", str(model), "--capture", str(tmp_path / "cap"))
    assert code == 2 and err.strip().endswith("--capture: " + str(tmp_path / "cap") + " is a file, not a folder")
