"""Batch classification's output rules, shared by ``imgclf batch`` and the cloud step that joins
a SageMaker batch transform's outputs: one JSON line per input, in input order.

A classified input::

    {"source": "cats/1.jpg", "label": "cat", "probability": 0.91,
     "top_k": [{"label": "cat", "probability": 0.91}, ...], "labels": ["cat"]}

(``labels`` only for a multi-label model: the verbose answer's ``predicted_labels``.) An input
that cannot be classified::

    {"source": "cats/2.jpg", "error": {"code": "IMAGE_INVALID", "message": "..."}}

Also here: the resume rules (which lines of an interrupted run to keep) and the fingerprint
that tells whether a run may be resumed. Standard library only, Python 3.8.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

# error codes of an input that could not be classified
IMAGE_INVALID = "IMAGE_INVALID"  # the model refused it (HTTP 4xx): not a JPEG/PNG, corrupt, too large
IMAGE_UNREADABLE = "IMAGE_UNREADABLE"  # the file (or record) could not be read
MODEL_ERROR = "MODEL_ERROR"  # the model failed on it (HTTP 5xx, no answer, an answer that is no prediction)
S3_REFERENCE = "S3_REFERENCE"  # a manifest's s3:// reference: classified in the cloud, not on this machine
ERROR_CODES = (IMAGE_INVALID, IMAGE_UNREADABLE, MODEL_ERROR, S3_REFERENCE)

Line = Dict[str, Any]


def error_line(source: str, code: str, message: str) -> Line:
    """The line of an input that could not be classified."""
    return {"source": source, "error": {"code": code, "message": " ".join(str(message).split())}}


def prediction_line(source: str, answer: Any) -> Line:
    """The line of a classified input, from the model's verbose answer
    (``Accept: application/json;verbose``); ValueError when ``answer`` is no prediction."""
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    top_k = answer.get("top_k")
    if not isinstance(top_k, list) or not top_k:
        raise ValueError("the answer has no top_k")
    ranked: List[Dict[str, Any]] = []
    for entry in top_k:
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
            raise ValueError("a top_k entry has no label")
        probability = entry.get("probability")
        if isinstance(probability, bool) or not isinstance(probability, (int, float)):
            raise ValueError("a top_k entry has no probability")
        ranked.append({"label": entry["label"], "probability": probability})
    line: Line = {
        "source": source,
        "label": answer.get("predicted_label", ranked[0]["label"]),
        "probability": ranked[0]["probability"],
        "top_k": ranked,
    }
    if "predicted_labels" in answer:
        labels = answer["predicted_labels"]
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise ValueError("predicted_labels is not a list of labels")
        line["labels"] = list(labels)
    return line


def status_code(status: int) -> str:
    """The error code of an HTTP status other than 200: 4xx is the image's fault, the rest the model's."""
    return IMAGE_INVALID if 400 <= status < 500 else MODEL_ERROR


def _error_message(status: int, body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        text = parsed["error"]
    return _http_message(status, text)


def _http_message(status: int, text: str) -> str:
    return f"HTTP {status}: {text[:300]}" if text else f"HTTP {status}"


def answer_line(source: str, status: int, body: bytes) -> Line:
    """The line for one answer of the model server (status and body of POST /invocations)."""
    if status != 200:
        return error_line(source, status_code(status), _error_message(status, body))
    try:
        return prediction_line(source, json.loads(body.decode("utf-8")))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        shown = body[:80].decode("utf-8", "replace")
        return error_line(source, MODEL_ERROR, f"HTTP 200 with something other than a prediction ({err}): {shown!r}")


def record_source(number: int) -> str:
    """The ``source`` of a .rec's record ``number`` (from 0, in file order)."""
    return f"#record {number}"


def record_answer_line(source: str, text: bytes) -> Line:
    """The line for one record's line of the answer to a RecordIO request (image_training.serving's
    ``record_lines``): its prediction, or, for ``{"error": {"code": STATUS, "message": ...}}``,
    the line the image path's answer with that status and message gives (``answer_line``)."""
    try:
        parsed = json.loads(text.decode("utf-8"))
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        status = error.get("code")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status < 600:
            status = 500
        message = error.get("message")
        return error_line(source, status_code(status), _http_message(status, str(message) if message else ""))
    return answer_line(source, 200, text)


def dumps(line: Mapping[str, Any]) -> str:
    """One output line, newline included (UTF-8 text, keys in the documented order)."""
    return json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n"


def failed(line: Mapping[str, Any]) -> bool:
    return "error" in line


def fingerprint(model_digest: str, inputs: Iterable[Sequence[Any]]) -> str:
    """What a resumed run must share with the interrupted one: the model (its digest) and the
    inputs, in order (each a JSON-able tuple: the source and whatever identifies its bytes)."""
    digest = hashlib.sha256(model_digest.encode("utf-8"))
    for item in inputs:
        digest.update(json.dumps(list(item), ensure_ascii=True).encode("ascii") + b"\n")
    return digest.hexdigest()


def resume_point(data: bytes, sources: Sequence[str]) -> Tuple[int, int]:
    """(bytes to keep, lines kept) of an interrupted run's output ``data``: the leading
    complete lines that are the lines of ``sources[0]``, ``sources[1]``, ... in order. A torn
    last line (no newline, or not JSON) and anything after a line that does not fit is dropped."""
    kept, count = 0, 0
    while count < len(sources):
        end = data.find(b"\n", kept)
        if end < 0:
            break
        try:
            line = json.loads(data[kept:end].decode("utf-8"))
        except ValueError:
            break
        if not isinstance(line, dict) or line.get("source") != sources[count]:
            break
        if not failed(line) and "top_k" not in line:
            break
        kept, count = end + 1, count + 1
    return kept, count


class Tally(NamedTuple):
    """The counts of a run's summary line."""

    classified: int
    failed: Dict[str, int]  # error code -> inputs
    skipped: int  # files of a folder input that are not images

    @property
    def total(self) -> int:
        return self.classified + sum(self.failed.values())


def tally(lines: Iterable[Mapping[str, Any]], skipped: int = 0) -> Tally:
    classified = 0
    errors: Dict[str, int] = {}
    for line in lines:
        if failed(line):
            code = str(line["error"].get("code", MODEL_ERROR))
            errors[code] = errors.get(code, 0) + 1
        else:
            classified += 1
    return Tally(classified, errors, skipped)


def summary(counts: Tally, out: Optional[str] = None) -> str:
    """``classified 98 of 100 inputs; 2 failed (1 IMAGE_INVALID, 1 IMAGE_UNREADABLE); ...``"""
    text = f"classified {counts.classified} of {counts.total} inputs"
    if counts.failed:
        detail = ", ".join(f"{n} {code}" for code, n in sorted(counts.failed.items()))
        text += f"; {sum(counts.failed.values())} failed ({detail})"
    if counts.skipped:
        what = "1 file that is not an image" if counts.skipped == 1 else f"{counts.skipped} files that are not images"
        text += f"; skipped {what}"
    return text + (f"; wrote {out}" if out else "")
