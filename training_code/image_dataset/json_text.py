"""JSON text of a dataset (manifest lines, annotations.json, labels.json, descriptors) read
strictly: every string must be text that can be written back as UTF-8.

JSON may escape half of a UTF-16 surrogate pair on its own (``"\\ud800"``); Python decodes it
to a string that no file, S3 key or UTF-8 output can hold, so a name with one would pass a
check and fail later, when it is packed or printed. :func:`loads` refuses it up front with the
string's place, and turns too-deep nesting (RecursionError) into a syntax error."""

from __future__ import annotations

import json
import re
from typing import Any, Optional

# a \u escape of a surrogate (D800-DFFF): only then can a lone surrogate appear
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONTextError(ValueError):
    """JSON that cannot be read: its syntax or depth (``code`` JSON_SYNTAX) or a string that is
    not text (TEXT_ENCODING)."""

    def __init__(self, message: str, code: str = "JSON_SYNTAX", line: Optional[int] = None, msg: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.line = line  # of a syntax error
        self.msg = msg or message  # without the position


def loads(text: str) -> Any:
    """``json.loads`` that raises :class:`JSONTextError` (a ValueError) for bad syntax, for
    nesting too deep to read, and for a string or key holding a lone surrogate escape."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTextError("nested too deeply to read") from None
    except json.JSONDecodeError as err:
        raise JSONTextError(str(err), line=err.lineno, msg=err.msg) from None
    if _SURROGATE_ESCAPE.search(text):
        _check_text(value)
    return value


def _check_text(value: Any) -> None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as err:
                shown = item.encode("utf-8", "backslashreplace").decode("utf-8")
                raise JSONTextError(
                    f"the string '{shown[:80]}' holds \\u{ord(item[err.start]):04x}, half of a UTF-16 "
                    "surrogate pair, which is not a character",
                    "TEXT_ENCODING",
                ) from None
