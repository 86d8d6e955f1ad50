"""The batch request's rules (lambdas/batch/logic.py): what a batch.json may say, the order of
the inputs (imgclf batch's walk), the model package chosen, a .rec's scan and the transform
settings of each kind of input, and the join's lines (a .rec's: line i is record i)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from image_dataset.recordio import MAGIC_BYTES, frame, pack
from imgclf_core import batch as rules
from imgclf_core.batch_request import IMAGES, Rejected, execution_name, parse_request, transform_settings
from lambdas.batch.logic import (
    RecordJoin,
    count_records,
    job_name,
    join,
    manifest,
    ordered_inputs,
    output_lines,
    output_relatives,
    package_arn,
    plan,
    read_manifest,
)
from tests.builders import jpeg, png, write_rec

BUCKET = "imgclf-dev-datasets-111111111111-us-east-1"
KEY = "batch/flowers/batch.json"
GROUP = "imgclf-dev-models"
ARN = f"arn:aws:sagemaker:us-east-1:111111111111:model-package/{GROUP}/3"


def request(**raw: Any) -> Any:
    return parse_request(BUCKET, KEY, json.dumps(raw).encode())


def test_relative_and_absolute_inputs() -> None:
    assert request(input="images/").input_key == "batch/flowers/images/"
    assert request(input=f"s3://{BUCKET}/datasets/cats/v1/train/").input_key == "datasets/cats/v1/train/"
    one = request(input="a.JPG", model_package=2)
    assert (one.input_key, one.is_prefix, one.model_package) == ("batch/flowers/a.JPG", False, 2)
    assert request(input="x/", model_package=ARN).model_package == ARN


@pytest.mark.parametrize(
    "raw, reason",
    [
        ({}, 'no "input"'),
        ({"input": ""}, "s3:// URI"),
        ({"input": "/abs/"}, 'must not start with "/"'),
        ({"input": "a//b/"}, "empty"),
        ({"input": f"s3://{BUCKET}/packed/x/"}, "under batch/ or datasets/"),
        ({"input": "notes.txt"}, "neither a folder"),
        ({"input": "x.idx"}, "nor a .rec"),
        ({"input": "x/", "model_package": 0}, "from 1"),
        ({"input": "x/", "model_package": True}, "version number"),
        ({"input": "x/", "model_package": "arn:aws:sagemaker:us-east-1:1:model-package/g/x"}, "version number"),
    ],
)
def test_bad_requests_say_why(raw: Dict[str, Any], reason: str) -> None:
    with pytest.raises(Rejected, match=reason.replace("(", r"\(")):
        request(**raw)


def test_keys_that_are_no_request() -> None:
    with pytest.raises(Rejected, match="batch/<name>/batch.json"):
        parse_request(BUCKET, "batch/a/b/batch.json", b"{}")
    with pytest.raises(Rejected, match="batch name"):
        parse_request(BUCKET, "batch/bad name!/batch.json", b'{"input": "x/"}')
    with pytest.raises(Rejected, match="not JSON"):
        parse_request(BUCKET, KEY, b"\xff")


def test_names_are_stable_and_fit() -> None:
    assert execution_name("flowers", '"abc"') == execution_name("flowers", '"abc"')
    assert execution_name("flowers", '"abc"') != execution_name("flowers", '"abd"')
    name = job_name("imgclf-a-long-stage-name", "x" * 80)
    assert len(name) <= 63 and name.startswith("imgclf-a-long-stage-name-batch-")


def test_inputs_in_the_order_imgclf_batch_walks_a_folder() -> None:
    prefix = "batch/f/images/"
    keys = [
        prefix + k for k in ("a-b/2.jpg", "a.png", "a/1.png", "c.JPEG", ".hidden.png", "x/.git/y.png", "n.txt", "d/")
    ]
    relatives, skipped = ordered_inputs(prefix, keys)
    assert relatives == ["a.png", "c.JPEG", "a/1.png", "a-b/2.jpg"] and skipped == 1


def test_the_plan_and_its_manifest() -> None:
    found, relatives = plan(
        request(input="images/"), "flowers-0a", "imgclf-dev", "art", ARN, ["batch/flowers/images/b.png"], "MultiRecord"
    )
    assert relatives == ["b.png"] and found["inputs"] == 1 and found["input_kind"] == IMAGES
    assert found["transform"] == transform_settings(IMAGES, "MultiRecord")
    assert found["transform"]["SplitType"] == "None" and found["transform"]["BatchStrategy"] == "SingleRecord"
    assert found["manifest_uri"] == f"s3://art/batch-jobs/{found['job_name']}/manifest.json"
    assert found["output_uri"].endswith("/output/") and found["model_name"] == found["job_name"]
    data = manifest(BUCKET, found["input_prefix"], relatives)
    assert read_manifest(data) == (f"s3://{BUCKET}/batch/flowers/images/", ["b.png"])
    with pytest.raises(Rejected, match="no JPEG or PNG"):
        plan(request(input="images/"), "e", "imgclf-dev", "art", ARN, ["batch/flowers/images/n.txt"], "MultiRecord")
    with pytest.raises(Rejected, match="does not exist"):
        plan(request(input="images/a.png"), "e", "imgclf-dev", "art", ARN, [], "MultiRecord")


def test_the_model_package_chosen() -> None:
    versions: Dict[int, Dict[str, Any]] = {
        3: {"ModelPackageArn": ARN, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "PendingManualApproval"},
        4: {"ModelPackageArn": "x4", "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Rejected"},
    }

    def describe(version: int) -> Optional[Dict[str, Any]]:
        return versions.get(version)

    assert package_arn(GROUP, None, describe, lambda: "latest") == "latest"
    assert package_arn(GROUP, 3, describe, lambda: None) == ARN
    assert package_arn(GROUP, ARN, describe, lambda: None) == ARN
    for choice, reason in (
        (None, "no Approved"),
        (4, "rejected"),
        (9, "does not exist"),
        (ARN.replace(GROUP, "other"), "not in"),
    ):
        with pytest.raises(Rejected, match=reason):
            package_arn(GROUP, choice, describe, lambda: None)


def test_the_join_keeps_input_order_and_marks_missing_outputs() -> None:
    answer = {"predicted_label": "rose", "top_k": [{"label": "rose", "probability": 0.9}]}
    outputs = {"b.png": json.dumps(answer).encode(), "c.png": b"<html>"}
    lines = join(["a.png", "b.png", "c.png"], outputs, "ClientError: See job logs")
    assert [line["source"] for line in lines] == ["a.png", "b.png", "c.png"]
    assert lines[0]["error"]["code"] == rules.MODEL_ERROR and "ClientError" in lines[0]["error"]["message"]
    assert lines[1] == rules.prediction_line("b.png", answer)
    assert lines[2]["error"]["code"] == rules.MODEL_ERROR
    found = output_relatives("o/", ["o/a.png.out", "o/x/b.png.out", "o/manifest.json"])
    assert found == {"a.png": "o/a.png.out", "x/b.png": "o/x/b.png.out"}


# -- a .rec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["SingleRecord", "MultiRecord"])
def test_a_rec_is_planned_as_one_object_split_on_its_records(strategy: str) -> None:
    rec = request(input="packed/data.rec")
    assert rec.kind == "recordio" and request(input="images/").kind == IMAGES
    found, relatives = plan(rec, "e", "imgclf-dev", "art", ARN, ["batch/flowers/packed/data.rec"], strategy, 7)
    assert relatives == ["data.rec"] and found["input_prefix"] == "batch/flowers/packed/"
    assert (found["input_kind"], found["inputs"], found["skipped"]) == ("recordio", 7, 0)
    assert found["transform"] == {
        "ContentType": "application/x-recordio",
        "SplitType": "RecordIO",
        "BatchStrategy": strategy,
        "AssembleWith": "Line",
    }
    with pytest.raises(ValueError, match="number of records"):
        plan(rec, "e", "imgclf-dev", "art", ARN, ["batch/flowers/packed/data.rec"], strategy)
    with pytest.raises(ValueError, match="BatchStrategy"):
        transform_settings("recordio", "AllAtOnce")


def _scan(data: bytes, max_payload_mb: int = 6) -> int:
    return count_records(lambda offset, length: data[offset : offset + length], len(data), "data.rec", max_payload_mb)


def test_the_scan_counts_records_and_refuses_what_cannot_be_split(tmp_path: Path) -> None:
    records = [pack(float(i), jpeg(8 + i, 8)) for i in range(5)] + [pack(0.0, b"")[:10]]  # a header too short
    data = b"".join(frame(r) for r in records)
    assert _scan(data) == 6  # the short record is counted: the model answers it with an error line
    second = len(frame(records[0]))
    damaged = data[:second] + b"\0\0\0\0" + data[second + 4 :]
    with pytest.raises(Rejected, match=rf"^data.rec#record 1 @byte {second}: expected the next record \(magic 0xced7230a\)"):
        _scan(damaged)
    with pytest.raises(Rejected, match="framing is damaged"):
        _scan(data[:-3])
    with pytest.raises(Rejected, match="holds no record"):
        _scan(b"")
    big = frame(pack(1.0, bytes(1 << 20)))
    with pytest.raises(
        Rejected, match=r"data.rec#record 2 @byte \d+ is 1048608 bytes, more than batch.max_payload_mb \(1 MB\)"
    ):
        _scan(frame(records[0]) + frame(records[1]) + big, max_payload_mb=1)
    assert _scan(frame(records[0]) + big, max_payload_mb=2) == 2
    rec = write_rec(str(tmp_path / "im2rec.rec"), [(1.0, png(9, 9)), (2.0, MAGIC_BYTES * 8)])  # the second in parts
    assert _scan(Path(rec).read_bytes()) == 2


def test_the_join_of_a_rec_maps_line_i_to_record_i() -> None:
    answer = {"predicted_label": "rose", "top_k": [{"label": "rose", "probability": 0.9}]}
    refused = {"error": {"code": 400, "message": "the body is not a JPEG or PNG image"}}
    out = b"".join(json.dumps(line).encode() + b"\n" for line in (answer, refused, answer))
    joined = RecordJoin("data.rec", 3)
    lines = list(joined.lines(output_lines([out[:7], out[7:50], b"", out[50:]])))
    assert [line["source"] for line in lines] == ["#record 0", "#record 1", "#record 2"]
    assert lines[0] == rules.prediction_line("#record 0", answer) == {**lines[2], "source": "#record 0"}
    # what imgclf batch writes for the image of that record (the image path's 400 with its message)
    assert lines[1] == rules.answer_line("#record 1", 400, b'{"error": "the body is not a JPEG or PNG image"}')
    assert lines[1]["error"]["code"] == rules.IMAGE_INVALID and joined.problem is None


@pytest.mark.parametrize("answered, records", [(2, 4), (5, 3)])
def test_fewer_or_more_lines_than_records_is_reported_never_shifted(answered: int, records: int) -> None:
    answer = {"predicted_label": "rose", "top_k": [{"label": "rose", "probability": 0.9}]}
    out = (json.dumps(answer) + "\n\n").encode() * answered  # blank lines are no answers
    joined = RecordJoin("data.rec", records)
    lines = list(joined.lines(output_lines([out])))
    assert [line["source"] for line in lines] == [f"#record {n}" for n in range(records)]
    assert all("top_k" in line for line in lines[: min(answered, records)])
    for line in lines[answered:]:
        assert line["error"]["code"] == rules.MODEL_ERROR
        assert f"the transform's output for data.rec ends after {answered} lines" in line["error"]["message"]
    assert joined.problem == f"the transform's output for data.rec has {answered} lines for {records} records"


def test_a_rec_without_output_gets_an_error_line_per_record() -> None:
    joined = RecordJoin("data.rec", 2)
    lines: List[Dict[str, Any]] = list(joined.lines(None, "ClientError: See job logs"))
    assert [line["error"]["code"] for line in lines] == [rules.MODEL_ERROR] * 2
    assert "the transform job failed: ClientError" in lines[1]["error"]["message"] and joined.problem is None
    silent = RecordJoin("data.rec", 1)
    assert "ended without it" in list(silent.lines(None))[0]["error"]["message"]
    assert silent.problem == "the transform job wrote no output for data.rec"


@pytest.mark.parametrize(
    "text, code, message",
    [
        (b'{"error": {"code": 413, "message": "too big"}}', rules.IMAGE_INVALID, "HTTP 413: too big"),
        (b'{"error": {"code": 500, "message": "internal"}}', rules.MODEL_ERROR, "HTTP 500: internal"),
        (b'{"error": {"code": "x", "message": "odd"}}', rules.MODEL_ERROR, "HTTP 500: odd"),
        (b'{"error": {"code": 400}}', rules.IMAGE_INVALID, "HTTP 400"),
        (b"<html>", rules.MODEL_ERROR, "HTTP 200 with something other than a prediction"),
    ],
)
def test_a_record_line_that_is_no_prediction(text: bytes, code: str, message: str) -> None:
    line = rules.record_answer_line("#record 4", text)
    assert (
        line["source"] == "#record 4" and line["error"]["code"] == code and line["error"]["message"].startswith(message)
    )


def test_output_lines_split_on_newlines_only() -> None:
    assert list(output_lines([b"a\n", b"\n", b"b", b"c\n  \nd"])) == [b"a", b"bc", b"d"]
    assert list(output_lines([])) == [] and list(output_lines([b"x"])) == [b"x"]
