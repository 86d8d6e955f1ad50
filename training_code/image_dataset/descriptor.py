"""``dataset.json``: the small file that an upload writes last, beside ``train/`` and
``validation/``. Its arrival in S3 is what starts the workflow, so one upload starts one run.

    {"format": "recordio", "file_count": 2, "label_names": ["cat", "dog"],
     "label_attribute": "class", "hyperparameters": {"epochs": "30"}, "rerun": ""}

Every key is optional. ``rerun`` is a deliberate re-run tag: the same dataset version with a
new tag starts a new workflow run (Step Functions keeps execution names for 90 days).
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, NamedTuple, Optional

from . import json_text
from .layout import FORMATS

FILE_NAME = "dataset.json"
MAX_BYTES = 256 * 1024
RERUN_TAG = re.compile(r"^[A-Za-z0-9-]{0,16}$")
MAX_ARGUMENT = 256  # a SageMaker Processing job's ContainerArguments item
LINE_BREAK = re.compile("[\n\r\x85\u2028\u2029]")  # what Java's "." does not match
KEYS = ("format", "file_count", "label_names", "label_attribute", "hyperparameters", "rerun")


class DescriptorError(ValueError):
    """The descriptor is not valid; the message says which key and why."""


class Descriptor(NamedTuple):
    format: Optional[str] = None
    file_count: Optional[int] = None
    label_names: Optional[List[str]] = None
    label_attribute: Optional[str] = None
    hyperparameters: Dict[str, str] = {}
    rerun: str = ""

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {k: v for k, v in self._asdict().items() if v not in (None, "", {})}
        return out


def _text_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise DescriptorError(f"hyperparameters.{name}: {value!r} is not a single value")


def parse_descriptor(data: bytes) -> Descriptor:
    """Read and check a descriptor's syntax (what the hyperparameters mean is the caller's)."""
    if len(data) > MAX_BYTES:
        raise DescriptorError(f"the descriptor has {len(data)} bytes, over the limit of {MAX_BYTES}")
    try:
        raw = json_text.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise DescriptorError(f"not UTF-8 text (byte {err.start})") from None
    except ValueError as err:
        raise DescriptorError(f"not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise DescriptorError("the descriptor must be a JSON object")
    unknown = sorted(k for k in raw if k not in KEYS)
    if unknown:
        raise DescriptorError("{}: unknown key (known: {})".format(unknown[0], ", ".join(KEYS)))
    fmt = raw.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise DescriptorError("format: {!r} is not one of {}".format(fmt, ", ".join(FORMATS)))
    count = raw.get("file_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise DescriptorError(f"file_count: {count!r} is not a positive integer")
    names = raw.get("label_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) and n for n in names)):
        raise DescriptorError("label_names: must be a list of non-empty strings")
    if names is not None and len(set(names)) != len(names):
        raise DescriptorError("label_names: names repeat")
    attribute = raw.get("label_attribute")
    if attribute is not None and (not isinstance(attribute, str) or not attribute):
        raise DescriptorError("label_attribute: must be a non-empty string")
    if attribute is not None and (len(attribute) > MAX_ARGUMENT or LINE_BREAK.search(attribute)):
        # it becomes an argument of the Pack job: SageMaker takes at most 256 characters of ".*"
        raise DescriptorError(f"label_attribute: at most {MAX_ARGUMENT} characters, without line breaks")
    hps = raw.get("hyperparameters", {})
    if not isinstance(hps, dict):
        raise DescriptorError("hyperparameters: must be an object of name: value")
    rerun = raw.get("rerun", "")
    if not isinstance(rerun, str) or not RERUN_TAG.match(rerun):
        raise DescriptorError(f"rerun: {rerun!r} is not up to 16 characters of A-Z, a-z, 0-9 and -")
    return Descriptor(
        format=fmt,
        file_count=count,
        label_names=names,
        label_attribute=attribute,
        hyperparameters={str(k): _text_value(str(k), v) for k, v in hps.items()},
        rerun=rerun,
    )


def dump_descriptor(descriptor: Descriptor) -> bytes:
    return (json.dumps(descriptor.as_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")
