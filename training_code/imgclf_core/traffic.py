"""A window of captured endpoint traffic, read: which capture records fall in the window, a
reservoir sample of their input images, the predicted class and confidence of each answer, and
ground-truth labels matched by inference id. The one home of these rules for ``imgclf monitor``
(app/monitor.py, files on disk) and the scheduled monitor (lambdas/monitor, objects in S3).
The image statistics are not computed here: the caller passes the function
(image_training.baseline.encoded_statistics). Standard library only, Python 3.8.
"""

from __future__ import annotations

import datetime
import json
import random
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

from . import capture as rules

MAX_PROBLEMS = 20  # problems listed in monitor.json (all are counted)
DEFAULT_LIMIT = 1000  # image_training.baseline.MAX_IMAGES
UTC = datetime.timezone.utc

Statistics = Callable[[bytes], Optional[Dict[str, float]]]


class Window(NamedTuple):
    since: Optional[datetime.datetime]
    until: Optional[datetime.datetime]

    def holds(self, when: Optional[datetime.datetime]) -> bool:
        if when is None:
            return self.since is None and self.until is None
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)

    def may_hold_hour(self, hour: datetime.datetime) -> bool:
        end = hour + datetime.timedelta(hours=1)
        return (self.since is None or end > self.since) and (self.until is None or hour < self.until)


def parse_time(text: str) -> datetime.datetime:
    """An ISO 8601 time (``2026-11-30T23:00:00Z``, ``2026-11-30T23:00``, ``2026-11-30``), UTC
    when it names no zone; ValueError otherwise."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    when = datetime.datetime.fromisoformat(value)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def iso(when: Optional[datetime.datetime]) -> Optional[str]:
    return None if when is None else rules.inference_time(when)


def hour_of_parts(parts: Sequence[str]) -> Optional[datetime.datetime]:
    """The hour that four folder names ``YYYY MM DD HH`` name, if they do."""
    try:
        year, month, day, hour = (int(p) for p in parts)
        return datetime.datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def window_hours(window: Window) -> List[datetime.datetime]:
    """Every hour a bounded window touches, oldest first (the capture folders to read)."""
    if window.since is None or window.until is None:
        raise ValueError("only a bounded window has a list of hours")
    hour = window.since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < window.until:
        hours.append(hour)
        hour += datetime.timedelta(hours=1)
    return hours


def last_hours(now: datetime.datetime, hours: int) -> Window:
    """The ``hours`` whole hours before the hour of ``now`` (a scheduled run's window)."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return Window(end - datetime.timedelta(hours=hours), end)


def probabilities(captured: rules.Captured) -> List[float]:
    """The class probabilities of a captured answer, in any of the served formats (JSON list,
    verbose, JSON lines, TF Serving's predictions); ValueError when there are none."""
    if captured.response is None:
        raise ValueError("the answer was not captured")
    text = captured.response.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:  # JSON lines: the first line is the (one) image's
        body = json.loads(text.splitlines()[0] if text else "null")
    if isinstance(body, dict):
        body = body.get("probabilities", body.get("prediction", body.get("predictions")))
        if isinstance(body, list) and body and isinstance(body[0], list):
            body = body[0]
    if not isinstance(body, list) or not body or not all(isinstance(p, (int, float)) for p in body):
        raise ValueError("the answer holds no probabilities")
    return [float(p) for p in body]


def _no_statistics(data: bytes) -> Optional[Dict[str, float]]:
    return None


class Traffic:
    """What the window's records say: a sample of the images, the predictions by inference id."""

    def __init__(
        self, names: Sequence[str], limit: int = DEFAULT_LIMIT, statistics: Statistics = _no_statistics
    ) -> None:
        self.names = list(names)
        self.limit = limit
        self.statistics = statistics
        self.images: List[Optional[Dict[str, float]]] = []  # the statistics of a reservoir sample of the inputs
        self.records = self.inputs = self.files = 0
        self.predicted: List[int] = []
        self.confidence: List[float] = []
        self.by_id: Dict[str, int] = {}
        self.no_prediction = 0
        self.problems: List[Dict[str, str]] = []
        self.problem_count = 0
        self._draw = random.Random(0)

    def problem(self, where: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"where": where, "message": message})

    def add(self, captured: rules.Captured) -> None:
        self.records += 1
        if captured.request is not None:  # reservoir sampling: each input is kept with equal chance
            self.inputs += 1
            if len(self.images) < self.limit:
                self.images.append(self.statistics(captured.request))
            else:
                slot = self._draw.randrange(self.inputs)
                if slot < self.limit:
                    self.images[slot] = self.statistics(captured.request)
        try:
            probs = probabilities(captured)
        except ValueError:
            self.no_prediction += 1
            return
        if len(probs) != len(self.names):
            self.no_prediction += 1
            return
        best = max(range(len(probs)), key=probs.__getitem__)
        self.predicted.append(best)
        self.confidence.append(probs[best])
        if captured.inference_id:
            self.by_id[captured.inference_id] = best

    def add_lines(self, where: str, lines: Iterable[str], window: Window) -> None:
        """The records of one capture file whose inferenceTime lies in ``window``; a line that
        is no record is a problem, never an error."""
        self.files += 1
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                captured = rules.parse_record(line)
            except ValueError as err:
                self.problem(f"{where}:line {number}", str(err))
                continue
            if window.holds(record_time(captured)):
                self.add(captured)

    def predictions(self) -> Dict[str, Any]:
        counts = [0] * len(self.names)
        for index in self.predicted:
            counts[index] += 1
        return {
            "predictions": len(self.predicted),
            "predicted_class_counts": dict(zip(self.names, counts)),
            "mean_confidence": sum(self.confidence) / len(self.confidence) if self.confidence else None,
        }


def record_time(captured: rules.Captured) -> Optional[datetime.datetime]:
    try:
        return parse_time(captured.inference_time)
    except ValueError:
        return None


def no_labels() -> Dict[str, Any]:
    return {"matched": 0, "correct": 0, "class_counts": {}}


class Labels:
    """Ground truth (JSON lines ``{"inferenceId": ..., "label": ...}``, the label a class name
    or index) matched to a window's predictions: matched, correct, true class counts."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.matched = self.correct = 0
        self.counts = dict.fromkeys(traffic.names, 0)

    def add_lines(self, where: str, lines: Iterable[str]) -> None:
        names, traffic = self.traffic.names, self.traffic
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, label = str(item["inferenceId"]), item["label"]
            except (ValueError, KeyError, TypeError):
                traffic.problem(f"{where}:line {number}", 'not a label line {"inferenceId": ..., "label": ...}')
                continue
            if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(names):
                truth = label
            elif str(label) in names:
                truth = names.index(str(label))
            else:
                traffic.problem(f"{where}:line {number}", f"label {label!r} is no class of the model")
                continue
            if key in traffic.by_id:
                self.matched += 1
                self.correct += traffic.by_id[key] == truth
                self.counts[names[truth]] += 1

    def summary(self) -> Dict[str, Any]:
        return {"matched": self.matched, "correct": self.correct, "class_counts": self.counts}


def describe(
    report: Dict[str, Any],
    base: Dict[str, Any],
    images: Dict[str, Any],
    traffic: Traffic,
    truth: Dict[str, Any],
    window: Window,
) -> Dict[str, Any]:
    """monitor.json: the drift report (imgclf_core.drift.compare) with what the window held,
    the problems, the histograms side by side and the predicted classes."""
    report["window"] = {
        "since": iso(window.since),
        "until": iso(window.until),
        "files": traffic.files,
        "records": traffic.records,
        "inputs": traffic.inputs,
        "images_sampled": len(traffic.images),
        "images_decoded": images["images"],
        "images_failed": images["failed"],
        "predictions": len(traffic.predicted),
        "answers_without_prediction": traffic.no_prediction,
        "labels_matched": truth["matched"],
    }
    report["problems"] = {"count": traffic.problem_count, "first": traffic.problems}
    report["histograms"] = {
        name: {"baseline": hist, "window": images["histograms"][name]}
        for name, hist in base["train"]["histograms"].items()
    }
    report["predicted_class_counts"] = {
        "baseline": base["validation"]["predicted_class_counts"],
        "window": traffic.predictions()["predicted_class_counts"],
    }
    return report
