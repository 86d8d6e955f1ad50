"""monitor.html: the page of a monitor report (monitor.json, as imgclf_core.traffic.describe
builds it) with its charts, baseline against window shares per bin, drawn with Pillow (no
matplotlib) as app/pipeline/report.py draws its own. ``imgclf monitor`` (app/monitor.py) writes
the page and the charts as PNG files beside it; the scheduled monitor (lambdas/monitor) writes the
page beside its monitor.json in S3. The page holds its charts as data URIs, so it is one file that
needs nothing else. Python 3.8, Pillow and imgclf_core only: it is bundled into the Lambda
functions and lies with the training code."""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Dict, List, Mapping, Sequence

from PIL import Image, ImageDraw

from imgclf_core import drift

PAGE_NAME = "monitor.html"
CONTENT_TYPE = "text/html; charset=utf-8"
BASE_COLOUR, WINDOW_COLOUR = (31, 119, 180), (214, 39, 40)
PREDICTED_CLASS_CHART = "predicted_class.png"


def bar_chart(title: str, labels: Sequence[str], baseline: Sequence[float], window: Sequence[float]) -> Image.Image:
    """Baseline and window shares per bin, side by side."""
    width, height, left, bottom, top = 640, 260, 50, 40, 28
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    base, seen = drift.shares(baseline), drift.shares(window)
    peak = max(base + seen + [1e-9])
    step = (width - left - 10) / max(1, len(labels))
    draw.line([(left, top), (left, height - bottom), (width - 10, height - bottom)], fill="black")
    draw.text((left, 6), title, fill="black")
    draw.text((width - 200, 6), "baseline", fill=BASE_COLOUR)
    draw.text((width - 120, 6), "window", fill=WINDOW_COLOUR)
    draw.text((4, top), f"{peak:.2f}", fill="black")
    for i, label in enumerate(labels):
        x = left + i * step
        for j, (share, colour) in enumerate(((base[i], BASE_COLOUR), (seen[i], WINDOW_COLOUR))):
            bar = share / peak * (height - top - bottom)
            x0 = x + 2 + j * (step - 4) / 2
            draw.rectangle([x0, height - bottom - bar, x0 + (step - 4) / 2 - 1, height - bottom], fill=colour)
        if len(labels) <= 20 or i % 2 == 0:
            draw.text((x + 2, height - bottom + 4 + 12 * (i % 2)), str(label)[:6], fill="black")
    return image


def bin_labels(edges: Sequence[float]) -> List[str]:
    """``<e0``, ``e0``, ``e1``, ..., the lower edge of each bin."""
    return [f"<{edges[0]:g}"] + [f"{e:g}" for e in edges]


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def number(value: Any) -> str:
    """A check's value or threshold as the page and the CLI show it (``n/a`` for none)."""
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def charts(report: Mapping[str, Any]) -> Dict[str, bytes]:
    """``<statistic>.png`` per image statistic and ``predicted_class.png``, in the page's order."""
    found = {}

    def title(name: str, check: str) -> str:
        checked = report["checks"][check]
        return f"{name}: PSI {number(checked['value'])}, {checked['verdict']}"

    for name, pair in report["histograms"].items():
        labels = bin_labels(pair["baseline"]["edges"])
        chart = bar_chart(title(name, "image." + name), labels, pair["baseline"]["counts"], pair["window"]["counts"])
        found[f"{name}.png"] = png(chart)
    classes = report["predicted_class_counts"]
    names = list(classes["baseline"])
    found[PREDICTED_CLASS_CHART] = png(
        bar_chart(
            title("predicted class", "predicted_class"),
            names,
            [classes["baseline"][n] for n in names],
            [classes["window"].get(n, 0) for n in names],
        )
    )
    return found


def page(report: Mapping[str, Any], charted: Mapping[str, bytes]) -> str:
    """The HTML page of ``report``: the verdict, the window, a table of the checks, the charts
    (``charted``, from :func:`charts`) as data URIs, and the problems."""
    esc = html.escape
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class='{}'>{}</td><td>{}</td></tr>".format(
            esc(name),
            esc(c["kind"]),
            number(c["value"]),
            number(c["threshold"]),
            c["verdict"],
            c["verdict"],
            c["samples"],
        )
        for name, c in report["checks"].items()
    )
    problems = "".join(
        f"<li><code>{esc(p['where'])}</code>: {esc(p['message'])}</li>" for p in report["problems"]["first"]
    )
    images = "".join(
        f"<img src='data:image/png;base64,{base64.b64encode(data).decode()}' alt='{esc(name)}'>"
        for name, data in charted.items()
    )
    window = report["window"]
    verdict = "drift detected" if report["drift_detected"] else "no drift detected"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>imgclf monitor: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} .ok{{color:#080}} .moderate{{color:#b70}}
.significant{{color:#b00;font-weight:bold}} .insufficient,.unavailable{{color:#777}} img{{margin:4px}}</style>
</head><body><h1>imgclf monitor: {verdict}</h1>
<p>Window {esc(str(window["since"] or "start"))} to {esc(str(window["until"] or "end"))}: {window["records"]}
records in {window["files"]} files, {window["images_decoded"]} images decoded ({window["images_failed"]} not),
{window["predictions"]} predictions, {window["labels_matched"]} labelled.</p>
<h2>Checks</h2><table><tr><th>check</th><th>measure</th><th>value</th><th>threshold</th><th>verdict</th>
<th>samples</th></tr>{rows}</table>
<h2>Baseline against window</h2>{images}
<h2>Problems ({report["problems"]["count"]})</h2><ul>{problems or "<li>none</li>"}</ul>
</body></html>
"""


def render(report: Mapping[str, Any]) -> str:
    """The whole page of ``report``, its charts drawn."""
    return page(report, charts(report))
