"""The demo's look at production (issue 15): held-out images through the endpoint with data
capture on, then the same images inverted (a camera gone wrong), and the monitor on each
window against the model's baseline: the first shows no drift, the second does."""

from __future__ import annotations

import datetime
import io
import json
import time
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple

from PIL import Image, ImageOps

from app.capture import read_captures
from app.local_serving import invoke
from app.monitor import MonitorError, Window
from app.monitor import run as monitor

# (name, image bytes, content type, true label or None), as the pipeline's held-out images
HeldOut = Tuple[str, bytes, str, Any]
WINDOWS = ("held-out", "inverted")


class Watched(NamedTuple):
    drift: Dict[str, bool]  # window -> drift_detected
    findings: Dict[str, List[str]]  # window -> the checks that drifted significantly
    reports: Dict[str, str]  # window -> monitor.html


def inverted(image: bytes) -> bytes:
    """The image with its colours inverted, as PNG."""
    with Image.open(io.BytesIO(image)) as opened:
        shifted = ImageOps.invert(opened.convert("RGB"))
    out = io.BytesIO()
    shifted.save(out, "PNG")
    return out.getvalue()


def _send(url: str, images: Sequence[HeldOut], prefix: str, labels: List[Dict[str, Any]], shift: bool) -> int:
    """POST each image with an inference id; the ground truth goes to ``labels``."""
    answered = 0
    for number, (_, image, content_type, truth) in enumerate(images):
        body, kind = (inverted(image), "image/png") if shift else (image, content_type)
        inference_id = f"{prefix}-{number}"
        status, _, _ = invoke(url, body, kind, "application/json;verbose", inference_id=inference_id)
        answered += status == 200
        if truth is not None:
            labels.append({"inferenceId": inference_id, "label": truth})
    return answered


def _captured(folder: Path, expected: int, timeout: float = 30.0) -> None:
    """Wait until the capture writer (a background thread of the model server) has written
    ``expected`` records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for _ in read_captures(str(folder))) >= expected:
            return
        time.sleep(0.2)


def _next_second() -> datetime.datetime:
    """A window boundary: the next whole second (capture times are whole seconds), reached."""
    now = datetime.datetime.now(datetime.UTC)
    boundary = now.replace(microsecond=0) + datetime.timedelta(seconds=1)
    time.sleep(max(0.0, (boundary - now).total_seconds()) + 0.05)
    return boundary


def watch(url: str, model: str, images: Sequence[HeldOut], captures: Path, out: Path) -> Watched:
    """Send ``images`` as they are, then inverted, through the endpoint at ``url`` (whose model
    server captures into ``captures``), and monitor each window against ``model``'s baseline;
    the reports go to ``out``/<window>/."""
    labels: List[Dict[str, Any]] = []
    bounds = [_next_second()]
    answered = 0
    for window in WINDOWS:
        answered += _send(url, images, window, labels, shift=window == "inverted")
        bounds.append(_next_second())
    _captured(captures, answered)
    out.mkdir(parents=True, exist_ok=True)
    labels_file = out / "labels.jsonl"
    labels_file.write_text("".join(json.dumps(line) + "\n" for line in labels))
    drift, findings, reports = {}, {}, {}
    for window, since, until in zip(WINDOWS, bounds, bounds[1:]):
        try:
            report = monitor(model, str(captures), str(labels_file), Window(since, until), str(out / window))
        except MonitorError as err:
            raise RuntimeError(f"the monitor found nothing to compare in the {window} window: {err}") from None
        drift[window] = bool(report["drift_detected"])
        findings[window] = list(report.get("significant", []))
        reports[window] = str(out / window / "monitor.html")
    return Watched(drift, findings, reports)
