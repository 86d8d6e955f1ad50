"""``imgclf monitor`` end to end: a baseline from the embedded digits' train images, capture
folders written in SageMaker's data-capture format (imgclf_core.capture) from the validation
images as they are and inverted, and the verdicts, exit codes and files that come out."""

from __future__ import annotations

import datetime
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest
from PIL import Image, ImageOps

from app import monitor
from app.sample_data import write_digits
from image_training import baseline, monitor_page
from imgclf_core import capture as rules
from tests.builders import png

Cli = Callable[..., Tuple[int, str, str]]
HOUR = datetime.datetime(2026, 11, 30, 10, tzinfo=datetime.UTC)
NAMES = [str(d) for d in range(10)]
VERBOSE = "application/json;verbose"


def invert(data: bytes) -> bytes:
    out = io.BytesIO()
    ImageOps.invert(Image.open(io.BytesIO(data)).convert("L")).save(out, format="PNG")
    return out.getvalue()


def answer(label: int, confidence: float) -> bytes:
    """A verbose answer (the serving contract's) that predicts ``label``."""
    probs = [(1 - confidence) / 9] * 10
    probs[label] = confidence
    return json.dumps({"probabilities": probs, "labels": NAMES, "predicted_label": NAMES[label]}).encode()


def write_hour(root: Path, hour: datetime.datetime, images: List[Tuple[bytes, int]], tag: str) -> Path:
    """One capture file of the hour: each image with its answer and an inference id."""
    path = root / rules.capture_key("my-endpoint", hour, f"file-{tag}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i, (image, predicted) in enumerate(images):
            when = hour + datetime.timedelta(seconds=i)
            record = rules.record(
                image, "image/png", answer(predicted, 0.9), VERBOSE, f"e-{tag}-{i}", when, f"{tag}-{i}"
            )
            f.write(rules.dumps(record))
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """A model.tar.gz with the digits' baseline, and a capture folder with one unshifted hour
    (the validation images, predicted right) and one shifted hour (inverted, predicted 0)."""
    root = tmp_path_factory.mktemp("monitor")
    write_digits(str(root / "digits"), size=32)
    train = [p.read_bytes() for p in sorted((root / "digits" / "train").glob("*/*.png"))]
    validation = [
        (p.read_bytes(), int(p.parent.name)) for p in sorted((root / "digits" / "validation").glob("*/*.png"))
    ]
    labels = np.array([label for _, label in validation])
    scores = np.full((len(labels), 10), 0.01)
    scores[np.arange(len(labels)), labels] = 0.91
    counts = {str(d): sum(1 for p in (root / "digits" / "train" / str(d)).glob("*.png")) for d in range(10)}
    data = baseline.build(
        [train[i] for i in baseline.sample_indices(len(train))], len(train), counts, NAMES, scores, labels
    )
    model = root / "model"
    baseline.write(data, str(model))
    (model / "model-info.json").write_text("{}")
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("model-info.json", "baseline.json"):
            tar.add(model / name, arcname=name)
    capture = root / "capture"
    write_hour(capture, HOUR, validation, "same")
    shifted = [(invert(image), 0) for image, _ in validation]
    write_hour(capture, HOUR + datetime.timedelta(hours=1), shifted, "shift")
    truth = root / "labels.jsonl"
    with truth.open("w") as f:
        for tag in ("same", "shift"):
            for i, (_, label) in enumerate(validation):
                f.write(json.dumps({"inferenceId": f"{tag}-{i}", "label": NAMES[label] if i % 2 else label}) + "\n")
    return {"root": root, "model": archive, "capture": capture, "labels": truth, "count": len(validation)}


def hour_args(site: Dict[str, Any], hours: int, out: Path) -> List[str]:
    since = HOUR + datetime.timedelta(hours=hours)
    until = since + datetime.timedelta(hours=1)
    return [
        "monitor", "--baseline", str(site["model"]), "--capture", str(site["capture"]),
        "--since", since.strftime("%Y-%m-%dT%H:%M:%SZ"), "--until", until.strftime("%Y-%m-%dT%H:%M"),
        "--output", str(out),
    ]  # fmt: skip


def test_an_unshifted_window_has_no_drift(cli: Cli, site: Dict[str, Any], tmp_path: Path) -> None:
    code, out, err = cli(*hour_args(site, 0, tmp_path), "--labels", str(site["labels"]))
    assert code == 0, err
    assert out.startswith("no drift detected"), out
    report = json.loads((tmp_path / "monitor.json").read_text())
    assert report["drift_detected"] is False and report["significant"] == []
    window = report["window"]
    assert window["records"] == window["images_decoded"] == window["predictions"] == site["count"]
    assert window["labels_matched"] == site["count"] and window["images_failed"] == 0
    for name in baseline.STATISTICS:
        check = report["checks"]["image." + name]
        assert check["verdict"] == "ok" and check["value"] < 0.1, (name, check)
    assert report["checks"]["live_accuracy"]["window"] == 1.0
    assert report["checks"]["live_accuracy"]["verdict"] == "ok"
    assert report["checks"]["mean_confidence"]["change"] == pytest.approx(-0.01)
    assert (tmp_path / "monitor.html").read_text().count("<img") == len(baseline.STATISTICS) + 1
    assert (tmp_path / "brightness.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "predicted_class.png").exists()


def test_a_window_of_inverted_images_drifts(cli: Cli, site: Dict[str, Any], tmp_path: Path) -> None:
    code, out, err = cli(*hour_args(site, 1, tmp_path), "--labels", str(site["labels"]))
    assert code == 0, err  # the monitor ran: drift is in the report, not in the exit code
    assert out.startswith("DRIFT DETECTED: "), out
    report = json.loads((tmp_path / "monitor.json").read_text())
    assert report["drift_detected"] is True
    for name in ("image.brightness", "image.mean_red", "predicted_class", "live_accuracy"):
        assert report["checks"][name]["verdict"] == "significant", name
    live = report["checks"]["live_accuracy"]
    assert live["window"] == pytest.approx(live["correct"] / site["count"], abs=1e-6) and live["window"] < 0.2
    assert "image.width" not in report["significant"]  # the sizes did not change
    assert "significant" in (tmp_path / "monitor.html").read_text()


def test_the_whole_folder_is_one_window_without_bounds(site: Dict[str, Any], tmp_path: Path) -> None:
    report = monitor.run(str(site["model"]), str(site["capture"]), None, monitor.Window(None, None), str(tmp_path))
    assert report["window"]["records"] == 2 * site["count"] and report["window"]["files"] == 2
    assert report["window"]["images_sampled"] == min(baseline.MAX_IMAGES, 2 * site["count"])
    assert report["checks"]["live_accuracy"]["verdict"] == "unavailable"


def test_a_broken_capture_line_is_reported_not_raised(cli: Cli, site: Dict[str, Any], tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    lines = next(site["capture"].rglob("*-file-same.jsonl")).read_text().splitlines(keepends=True)
    path = capture / rules.capture_key("my-endpoint", HOUR, "broken")
    path.parent.mkdir(parents=True)
    path.write_text(lines[0] + '{"captureData": tru\n' + '{"no": "capture"}\n' + "".join(lines[1:150]))
    code, out, err = cli(
        "monitor", "--baseline", str(site["model"]), "--capture", str(capture), "-o", str(tmp_path / "r")
    )
    assert code == 0, err
    assert "Traceback" not in err
    assert "2 unreadable line(s) skipped" in err and f"{path}:line 2" in err, err
    report = json.loads((tmp_path / "r" / "monitor.json").read_text())
    assert report["problems"]["count"] == 2 and report["window"]["records"] == 150
    assert report["problems"]["first"][1]["where"] == f"{path}:line 3"


def test_answers_in_every_served_format() -> None:
    def captured(body: bytes) -> rules.Captured:
        return rules.parse_record(rules.dumps(rules.record(b"x", "image/png", body, "application/json", "e", HOUR)))

    for body in (b"[0.2, 0.8]", b'{"probabilities": [0.2, 0.8]}', b'{"prediction": [0.2, 0.8]}\n',
                 b'{"predictions": [[0.2, 0.8]]}', b'{"prediction": [0.2, 0.8]}\n{"prediction": [0.5, 0.5]}\n',
                 b'{\n  "probabilities": [0.2, 0.8]\n}'):  # fmt: skip
        assert monitor.probabilities(captured(body)) == [0.2, 0.8], body
    for body in (b'{"error": "bad image"}', b"[]", b'["a"]'):
        with pytest.raises(ValueError):
            monitor.probabilities(captured(body))


def test_labels_that_match_nothing_or_name_no_class(site: Dict[str, Any], tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"inferenceId": "same-0", "label": "zebra"}\nnot json\n{"inferenceId": "nope", "label": 1}\n')
    report = monitor.run(
        str(site["model"]), str(site["capture"]), str(labels), monitor.Window(None, None), str(tmp_path)
    )
    assert report["window"]["labels_matched"] == 0 and report["problems"]["count"] == 2
    assert "zebra" in report["problems"]["first"][0]["message"]


def test_an_empty_window_fails_in_one_line(cli: Cli, site: Dict[str, Any], tmp_path: Path) -> None:
    code, _, err = cli(*hour_args(site, 5, tmp_path))
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("imgclf monitor: error: no capture records in ") and "between 2026-11-30T15:00:00Z" in err


def test_a_model_without_a_baseline_fails_in_one_line(cli: Cli, site: Dict[str, Any], tmp_path: Path) -> None:
    archive = tmp_path / "old.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(site["root"] / "model" / "model-info.json", arcname="model-info.json")
    code, _, err = cli("monitor", "--baseline", str(archive), "--capture", str(site["capture"]), "-o", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and "holds no baseline.json" in err, err


def test_the_baseline_from_a_folder_or_the_file(site: Dict[str, Any]) -> None:
    folder = site["root"] / "model"
    assert monitor.load_baseline(str(folder)) == monitor.load_baseline(str(folder / "baseline.json"))
    assert monitor.load_baseline(str(site["model"]))["labels"] == NAMES


@pytest.mark.parametrize(
    "extra, shown",
    [
        (["--last", "2", "--since", "2026-11-30"], "--last cannot be combined"),
        (["--since", "2026-11-30T12:00", "--until", "2026-11-30T11:00"], "is not before --until"),
        (["--since", "yesterday"], "Invalid isoformat"),
        (["--last", "-1"], "positive number of hours"),
        (["--labels", "/nonexistent/labels.jsonl"], "--labels /nonexistent/labels.jsonl does not exist"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, site: Dict[str, Any], tmp_path: Path, extra: List[str], shown: str) -> None:
    code, _, err = cli(
        "monitor",
        "--baseline",
        str(site["model"]),
        "--capture",
        str(site["capture"]),
        "-o",
        str(tmp_path / "r"),
        *extra,
    )
    assert code == 2 and shown in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


def test_missing_paths_and_options_exit_2(cli: Cli, site: Dict[str, Any], tmp_path: Path) -> None:
    code, _, err = cli(
        "monitor", "--baseline", str(site["model"]), "--capture", str(tmp_path / "none"), "-o", str(tmp_path)
    )
    assert code == 2 and "does not exist" in err, err
    code, _, err = cli("monitor", "--baseline", str(site["model"]), "--capture", str(site["capture"]))
    assert code == 2 and "--output" in err, err


def test_the_last_hours_window() -> None:
    now = datetime.datetime(2026, 11, 30, 12, tzinfo=datetime.UTC)
    window = monitor.window_from(None, None, 1.5, now)
    assert window.since == now - datetime.timedelta(hours=1.5) and window.until is None
    assert window.may_hold_hour(datetime.datetime(2026, 11, 30, 10, tzinfo=datetime.UTC))
    assert not window.may_hold_hour(datetime.datetime(2026, 11, 30, 9, tzinfo=datetime.UTC))


def test_the_image_sample_is_a_capped_reservoir() -> None:
    traffic = monitor.Traffic(["a", "b"], limit=3)
    for i in range(10):
        body = b"[0.3, 0.7]" if i % 2 else b'{"error": "no"}'
        line = rules.dumps(rules.record(png(8 + i, 8), "image/png", body, "application/json", f"e{i}", HOUR, f"id{i}"))
        traffic.add(rules.parse_record(line))
    assert traffic.inputs == traffic.records == 10 and len(traffic.images) == 3
    assert all(row is not None and 8 <= row["width"] <= 17 for row in traffic.images)
    assert traffic.no_prediction == 5 and traffic.predictions()["predicted_class_counts"] == {"a": 0, "b": 5}
    assert traffic.by_id == {f"id{i}": 1 for i in range(1, 10, 2)}


def test_the_page_is_the_shared_page_module_s(site: Dict[str, Any], tmp_path: Path) -> None:
    """app/monitor.py writes image_training.monitor_page's page (the scheduled monitor's too),
    with each chart inline and beside it as PNG; a problem's text is escaped."""
    report = monitor.run(str(site["model"]), str(site["capture"]), None, monitor.Window(None, None), str(tmp_path))
    charts = monitor_page.charts(report)
    assert list(charts)[-1] == "predicted_class.png" and len(charts) == len(baseline.STATISTICS) + 1
    assert (tmp_path / "monitor.html").read_text(encoding="utf-8") == monitor_page.page(report, charts)
    for name, data in charts.items():
        assert (tmp_path / name).read_bytes() == data
    report["problems"] = {"count": 1, "first": [{"where": "<f>:line 1", "message": "a & b"}]}
    html = monitor_page.render(report)
    assert "<code>&lt;f&gt;:line 1</code>: a &amp; b" in html and "<h2>Problems (1)</h2>" in html


RENDER_ON_THE_CONTAINER_STACK = """
import json, sys
from image_training import monitor_page
sys.stdout.write(monitor_page.render(json.load(open(sys.argv[1]))))
"""


def _without_images(html: str) -> str:
    return re.sub(r"base64,[A-Za-z0-9+/=]+'", "base64,...'", html)


def test_the_page_renders_on_python_3_8(site: Dict[str, Any], tmp_path: Path, in_container: Callable[..., str]) -> None:
    """The page module lies with the training code (Python 3.8, Pillow 9.5 there): the page it
    renders there is this one, but for the pixels of the charts (Pillow's default font differs)."""
    report = monitor.run(str(site["model"]), str(site["capture"]), None, monitor.Window(None, None), str(tmp_path))
    there = in_container(RENDER_ON_THE_CONTAINER_STACK, str(tmp_path / "monitor.json"))
    assert _without_images(there) == _without_images(monitor_page.render(report))
    assert there.count("<img src='data:image/png;base64,iVBOR") == len(baseline.STATISTICS) + 1
