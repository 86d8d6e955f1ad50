"""``imgclf monitor``: a window of captured endpoint traffic against the model's baseline.json.

Reads the data-capture records (imgclf_core.capture: ``imgclf serve --capture`` and a real
endpoint's, as synced from S3) of a time window, decodes a sample of the captured images with
the one decoder and computes their statistics with image_training.baseline (the functions the
training job ran on train), reads the predicted class and confidence from the captured answers,
matches ground-truth labels by inference id, and applies imgclf_core.drift. Writes monitor.json
and monitor.html (image_training.monitor_page's, the page the scheduled monitor writes in S3)
with PNG charts beside it. A line that is not a capture record is counted and reported, never
raised."""

from __future__ import annotations

import datetime
import json
import os
import tarfile
from typing import Any, Dict, Iterator, Optional, Sequence

from app.capture import capture_files
from image_training import baseline as stats
from image_training import monitor_page
from imgclf_core import drift
from imgclf_core import traffic as shared

MAX_PROBLEMS = shared.MAX_PROBLEMS
Window = shared.Window
parse_time = shared.parse_time
probabilities = shared.probabilities


class MonitorError(Exception):
    """The monitor could not run (exit 1)."""


class Traffic(shared.Traffic):
    """What the window's records say (imgclf_core.traffic), the images described by the
    statistics of image_training.baseline."""

    def __init__(self, names: Sequence[str], limit: int = stats.MAX_IMAGES) -> None:
        super().__init__(names, limit, stats.encoded_statistics)


def _hour_of(path: str) -> Optional[datetime.datetime]:
    """The hour a capture file's folders name (``.../YYYY/MM/DD/HH/file.jsonl``), if they do."""
    return shared.hour_of_parts(os.path.normpath(path).split(os.sep)[-5:-1])


def load_baseline(path: str) -> Dict[str, Any]:
    """baseline.json from a model.tar.gz, its unpacked folder, or the file itself."""
    try:
        if os.path.isdir(path):
            with open(os.path.join(path, stats.FILE_NAME), encoding="utf-8") as f:
                text = f.read()
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                member = next((m for m in archive.getmembers() if m.name.lstrip("./") == stats.FILE_NAME), None)
                stream = archive.extractfile(member) if member is not None else None
                if stream is None:
                    raise MonitorError(f"{path} holds no {stats.FILE_NAME}: the model was trained before baselines")
                text = stream.read().decode("utf-8")
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        data = json.loads(text)
    except FileNotFoundError:
        raise MonitorError(f"{path}: no {stats.FILE_NAME} (the model was trained before baselines)") from None
    except (ValueError, tarfile.TarError) as err:
        raise MonitorError(f"{path}: the baseline cannot be read: {err}") from None
    if not isinstance(data, dict) or data.get("version") != stats.BASELINE_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise MonitorError(f"{path}: baseline version {version!r}; this imgclf reads version {stats.BASELINE_VERSION}")
    return data


def read_traffic(root: str, window: Window, names: Sequence[str]) -> Traffic:
    """The records under ``root`` whose inferenceTime lies in ``window``."""
    traffic = Traffic(names)
    for path in capture_files(root):
        hour = _hour_of(path)
        if hour is not None and not window.may_hold_hour(hour):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            traffic.add_lines(path, f, window)
    return traffic


def read_labels(path: str, names: Sequence[str], traffic: Traffic) -> Dict[str, Any]:
    """Ground truth (JSON lines ``{"inferenceId": ..., "label": ...}``, the label a class name
    or index) matched to the window's predictions: matched, correct, true class counts."""
    labels = shared.Labels(traffic)
    with open(path, encoding="utf-8", errors="replace") as f:
        labels.add_lines(path, f)
    return labels.summary()


_iso = shared.iso


def run(baseline_path: str, capture_dir: str, labels: Optional[str], window: Window, output: str) -> Dict[str, Any]:
    """Monitor one window and write ``output``/monitor.json and monitor.html; returns the
    report. MonitorError when there is nothing to compare."""
    base = load_baseline(baseline_path)
    names = base["labels"]
    traffic = read_traffic(capture_dir, window, names)
    if not traffic.records:
        span = ""
        if window.since or window.until:
            span = f" between {_iso(window.since) or 'the start'} and {_iso(window.until) or 'now'}"
        found = f" ({traffic.problem_count} unreadable lines)" if traffic.problem_count else ""
        raise MonitorError(f"no capture records in {capture_dir}{span}{found}")
    images = stats.section(traffic.images, {k: v["edges"] for k, v in base["train"]["histograms"].items()})
    truth = read_labels(labels, names, traffic) if labels else shared.no_labels()
    report = shared.describe(
        drift.compare(base, images, traffic.predictions(), truth), base, images, traffic, truth, window
    )
    write_report(output, report)
    return report


def write_report(folder: str, report: Dict[str, Any]) -> str:
    """monitor.json, monitor.html and the charts (PNG) in ``folder``; returns the page's path.
    The page is image_training.monitor_page's, the one the scheduled monitor writes in S3."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "monitor.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    charts = monitor_page.charts(report)
    for name, data in charts.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    path = os.path.join(folder, monitor_page.PAGE_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(monitor_page.page(report, charts))
    return path


def summary(report: Dict[str, Any]) -> Iterator[str]:
    """The lines the CLI prints: the verdict, then every check that is not ok."""
    yield ("DRIFT DETECTED: " + ", ".join(report["significant"])) if report["drift_detected"] else "no drift detected"
    for name, check in report["checks"].items():
        if check["verdict"] != drift.OK:
            yield f"  {name}: {check['verdict']} ({check['kind']} {monitor_page.number(check['value'])}, threshold {check['threshold']:g})"


def window_from(since: Optional[str], until: Optional[str], last: Optional[float], now: datetime.datetime) -> Window:
    """The window of ``--since``/``--until`` or ``--last HOURS`` (ValueError for a bad one)."""
    if last is not None:
        if since or until:
            raise ValueError("--last cannot be combined with --since or --until")
        return Window(now - datetime.timedelta(hours=last), None)
    start, end = (parse_time(t) if t else None for t in (since, until))
    if start and end and start >= end:
        raise ValueError(f"--since {since} is not before --until {until}")
    return Window(start, end)
