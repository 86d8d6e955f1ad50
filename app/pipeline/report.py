"""report.html: what a person wants to see after a run, in one self-contained file (images and
charts inline), with the charts also written as PNG files beside it."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from PIL import Image, ImageDraw

MXNET_LINE = re.compile(r"Epoch\[(\d+)\] (Train|Validation)-accuracy=([0-9.]+)")
TF_LINE = re.compile(r"^Epoch (\d+)/\d+ .*?- accuracy: ([0-9.]+).*?- val_accuracy: ([0-9.]+)", re.MULTILINE)


def curves_from_log(log: str) -> Dict[str, List[Tuple[int, float]]]:
    """Accuracy per epoch (from 0), from either backend's log lines."""
    curves: Dict[str, List[Tuple[int, float]]] = {"Train": [], "Validation": []}
    for epoch, kind, value in MXNET_LINE.findall(log):
        curves[kind].append((int(epoch), float(value)))
    for epoch, train, validation in TF_LINE.findall(log):
        curves["Train"].append((int(epoch) - 1, float(train)))
        curves["Validation"].append((int(epoch) - 1, float(validation)))
    return curves


def line_chart(curves: Dict[str, List[Tuple[int, float]]], size: Tuple[int, int] = (640, 320)) -> Image.Image:
    width, height = size
    left, bottom, top, right = 50, 30, 20, 20
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    points = [p for c in curves.values() for p in c]
    epochs = max((e for e, _ in points), default=1) or 1
    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], fill="black")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = height - bottom - tick * (height - top - bottom)
        draw.line([(left - 4, y), (width - right, y)], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{tick:.2f}", fill="black")
    colours = {"Train": (31, 119, 180), "Validation": (214, 39, 40)}
    for kind, series in curves.items():
        xy = [
            (left + e / epochs * (width - left - right), height - bottom - v * (height - top - bottom))
            for e, v in series
        ]
        if len(xy) > 1:
            draw.line(xy, fill=colours[kind], width=2)
        for x, y in xy:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colours[kind])
    for epoch in range(0, epochs + 1, max(1, epochs // 10)):
        x = left + epoch / epochs * (width - left - right)
        draw.text((x - 3, height - bottom + 4), str(epoch), fill="black")
    draw.text((width - 190, top), "train accuracy", fill=colours["Train"])
    draw.text((width - 190, top + 14), "validation accuracy", fill=colours["Validation"])
    draw.text((width // 2 - 20, height - 14), "epoch", fill="black")
    return image


def confusion_chart(matrix: Sequence[Sequence[int]], labels: Sequence[str], cell: int = 36) -> Image.Image:
    n = len(matrix)
    margin = 70
    image = Image.new("RGB", (margin + n * cell + 10, margin + n * cell + 10), "white")
    draw = ImageDraw.Draw(image)
    peak = max((max(row) for row in matrix), default=1) or 1
    for i, row in enumerate(matrix):
        draw.text((4, margin + i * cell + cell // 2 - 6), str(labels[i])[:9], fill="black")
        draw.text((margin + i * cell + 4, margin - 16), str(labels[i])[:4], fill="black")
        for j, value in enumerate(row):
            shade = int(255 - 200 * value / peak)
            box = [margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1, margin + (i + 1) * cell - 1]
            draw.rectangle(box, fill=(shade, shade, 255) if i == j else (255, shade, shade))
            draw.text((box[0] + 6, box[1] + cell // 2 - 6), str(value), fill="black")
    draw.text((margin, 6), "rows: true label, columns: predicted", fill="black")
    return image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _data_uri(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _table_rows(cells: List[List[str]]) -> str:
    """<tr> rows of already-escaped cells."""
    return "".join("<tr>{}</tr>".format("".join(f"<td>{c}</td>" for c in row)) for row in cells)


def _step_rows(steps: List[Dict[str, str]]) -> str:
    esc = html.escape
    return "".join(
        "<tr><td>{}</td><td class='{}'>{}</td><td>{}</td></tr>".format(
            esc(s["step"]), esc(s["status"]), esc(s["status"]), esc(s["detail"])
        )
        for s in steps
    )


def _gallery(samples: List[Dict[str, Any]]) -> str:
    """The held-out images with what the endpoint answered, and whether it was right."""
    esc = html.escape

    def verdict(s: Dict[str, Any]) -> str:
        if s["truth"] is None:
            return ""
        return " ✓" if s["truth"] == s["predicted"] else " ✗ (true: {})".format(esc(s["truth"]))

    return "".join(
        "<figure><img src='{}' width='96' height='96'><figcaption>{}<br><b>{}</b> {:.2f}{}</figcaption></figure>".format(
            _data_uri(s["image"], s["content_type"]), esc(s["name"]), esc(s["predicted"]), s["probability"], verdict(s)
        )
        for s in samples
    )


def _validation_parts(validation: Dict[str, Any]) -> Tuple[str, str]:
    """The channel table's rows and the list of errors and warnings."""
    esc = html.escape
    channels = _table_rows(
        [
            [esc(name), esc(c["format"]), str(c["samples"]), esc(json.dumps(c.get("image_size", {})))]
            for name, c in validation.get("channels", {}).items()
        ]
    )
    problems = "".join(
        "<li><code>{}</code> {}: {}</li>".format(esc(i["code"]), esc(i["location"]), esc(i["message"]))
        for i in validation.get("errors", []) + validation.get("warnings", [])
    )
    return channels, problems or "<li>none</li>"


def _settings_parts(run: Dict[str, Any]) -> Tuple[str, str]:
    """The hyperparameter table's rows, and the notes on where the values come from."""
    esc = html.escape
    settings = run.get("settings") or [
        {"name": k, "value": v, "source": ""} for k, v in sorted(run.get("hyperparameters", {}).items())
    ]
    rows = _table_rows([[esc(s["name"]), esc(str(s["value"])), esc(s["source"])] for s in settings])
    facts = [run[key] for key in ("input",) if run.get(key)]
    if run.get("held_out"):
        facts.append(
            "no validation channel: the training job held out {} train records as validation".format(run["held_out"])
        )
    if run.get("descriptor"):
        facts.append("read as " + ", ".join(f"{k}={v}" for k, v in sorted(run["descriptor"].items())))
    return rows, "".join(f"<p>{esc(fact)}</p>" for fact in facts)


def write_report(folder: Path, run: Dict[str, Any], log: str, samples: List[Dict[str, Any]]) -> Path:
    """Write report.html (+ accuracy.png, confusion.png) for a pipeline run."""
    folder.mkdir(parents=True, exist_ok=True)
    evaluation = run.get("evaluation") or {}
    charts = {"accuracy.png": _png(line_chart(curves_from_log(log)))}
    if evaluation.get("confusion_matrix"):
        charts["confusion.png"] = _png(confusion_chart(evaluation["confusion_matrix"], evaluation["label_names"]))
    for name, data in charts.items():
        (folder / name).write_bytes(data)
    esc = html.escape
    rows = _table_rows(
        [
            [esc(c["label"]), f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", str(c["support"])]
            for c in evaluation.get("per_class", [])
        ]
    )
    channels, problems = _validation_parts(run.get("validation") or {})
    hps, notes = _settings_parts(run)
    steps, gallery = _step_rows(run["steps"]), _gallery(samples)
    images = "".join(f"<img src='{_data_uri(data)}'>" for data in charts.values())
    page = """<!doctype html>
<html><head><meta charset="utf-8"><title>imgclf run {name}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} .ok{{color:#080}} .failed,.rejected{{color:#b00}}
.skipped,.reused{{color:#777}} figure{{display:inline-block;margin:4px;text-align:center;font-size:12px}}
img{{image-rendering:pixelated;margin:4px}}</style></head><body>
<h1>imgclf run {name}</h1>
<p>Dataset <code>{dataset}</code> (version <code>{version}</code>), backend <b>{backend}</b>.
Validation accuracy <b>{accuracy}</b>, top-{k} accuracy {topk}; model version {model}; endpoint {endpoint}.</p>
<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>detail</th></tr>{steps}</table>
<h2>Training</h2>{images}
<h2>Per class</h2><table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>
<h2>Held-out images classified through the endpoint</h2>{gallery}
<h2>Validation report</h2><table><tr><th>channel</th><th>format</th><th>samples</th><th>image sizes</th></tr>{channels}</table>
<ul>{problems}</ul>
<h2>Hyperparameters</h2>{notes}<table><tr><th>name</th><th>value</th><th>source</th></tr>{hps}</table>
</body></html>
""".format(
        name=esc(run["execution"]),
        dataset=esc(run["dataset"]),
        version=esc(run["dataset_version"]),
        backend=esc(run["backend"]),
        accuracy="{:.4f}".format(evaluation["accuracy"]) if "accuracy" in evaluation else "n/a",
        k=evaluation.get("top_k", "k"),
        topk="{:.4f}".format(evaluation["top_k_accuracy"]) if "top_k_accuracy" in evaluation else "n/a",
        model=run.get("model_version", "none"),
        endpoint=esc(run.get("endpoint") or "not running"),
        steps=steps,
        images=images,
        rows=rows,
        gallery=gallery or "<p>none</p>",
        channels=channels,
        problems=problems,
        hps=hps,
        notes=notes,
    )
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
