"""Checks a request against botocore's service model as the AWS service itself would: required
and unknown members, JSON types, lengths, numeric ranges, enums and patterns.

botocore's client-side ``ParamValidator`` skips what the service checks on arrival: patterns,
enums, maximum lengths and maximum values. A request that passes it can still be refused after a GPU job
(``CreateModelPackage.CustomerMetadataProperties`` values, job names). This module checks them all,
for any service model that botocore ships.

Semantics, where the models leave room:

* Types are JSON types, as Step Functions passes them: a string where an integer is wanted ("2"),
  a number where a string is wanted, or "true" where a boolean is wanted is a problem; ``null`` is
  a problem too (leave the member out instead). Members marked ``jsonvalue`` take any JSON value.
* Lengths count Unicode code points (Smithy's ``length``); a blob's length counts bytes.
* Timestamps: a ``datetime``, an ISO 8601 string, epoch seconds (a number) where the member's
  ``timestampFormat`` (or the protocol's default) is ``unixTimestamp``, and an RFC 822 date where
  it is ``rfc822``.
* Patterns are Java regular expressions, applied to the whole value (``Matcher.matches()``, as
  AWS's Java services do). They are translated for the third-party ``regex`` module: Java's
  ``\\d``, ``\\w``, ``\\s`` and POSIX classes (``\\p{Alnum}`` ...) are US-ASCII; ``.`` stops at
  any line terminator; ``\\x{...}``, surrogate pairs and ``\\Q...\\E`` are rewritten; nested
  classes and ``&&`` keep Java's meaning (regex's VERSION1 sets).
* The ``${m,n}`` quirk: several SageMaker patterns end in ``$`` followed by a quantifier, e.g.
  ``([\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]*)${1,256}``. Java repeats the zero-width ``$`` (so the
  quantifier constrains nothing), but the authors meant a length: we read it as "the rest of the
  pattern, and between m and n characters", which agrees with the shapes' own min and max.
* ``idempotencyToken`` members are never missing: the SDKs (and Step Functions) fill them in.
"""

from __future__ import annotations

import datetime as dt
import difflib
import email.utils
import functools
import re
from typing import Any, Dict, List, Optional, Tuple

import regex
from botocore.model import OperationModel, ServiceModel, Shape

# Step Functions' names (arn:aws:states:::aws-sdk:<name>:...) that differ from botocore's
SERVICE_ALIASES = {"states": "stepfunctions", "sfn": "stepfunctions"}
PATTERN_TIMEOUT_S = 2.0
SHOWN_CHARACTERS = 100


# -- services and operations --------------------------------------------------------------
@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service`` (botocore's name, a Step Functions name such as
    ``applicationautoscaling`` or ``sfn``, or ``states``)."""
    import botocore.session

    session = botocore.session.get_session()
    available = session.get_available_services()
    name = SERVICE_ALIASES.get(service, service)
    if name not in available:
        squashed = {s.replace("-", ""): s for s in available}
        if name.lower() not in squashed:
            raise ValueError(f"{service!r} is not a service that botocore knows")
        name = squashed[name.lower()]
    return session.get_service_model(name)


@functools.cache
def operation_model(service: str, operation: str) -> OperationModel:
    """The operation by its API name (``CreateModelPackage``), Step Functions' name
    (``createModelPackage``) or boto3's (``create_model_package``)."""
    model = service_model(service)
    wanted = operation.replace("_", "").lower()
    for name in model.operation_names:
        if name.lower() == wanted:
            return model.operation_model(name)
    raise ValueError(f"{service} has no operation {operation!r}")


# -- Java patterns ------------------------------------------------------------------------
# Java's POSIX classes are US-ASCII only; LD, L1 and all are Java's own categories
_JAVA_CLASSES = {
    "Lower": r"a-z",
    "Upper": r"A-Z",
    "ASCII": r"\x00-\x7F",
    "Alpha": r"a-zA-Z",
    "Digit": r"0-9",
    "Alnum": r"a-zA-Z0-9",
    "Punct": r"\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E",
    "Graph": r"\x21-\x7E",
    "Print": r"\x20-\x7E",
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1F\x7F",
    "XDigit": r"0-9a-fA-F",
    "Space": r" \t\n\x0B\f\r",
    "LD": r"\p{L}\p{Nd}",
    "L1": r"\x00-\xFF",
    "all": r"\p{Any}",
    "javaLowerCase": r"\p{Lowercase}",
    "javaUpperCase": r"\p{Uppercase}",
    "javaWhitespace": r"\p{White_Space}",
    "javaLetter": r"\p{L}",
    "javaDigit": r"\p{Nd}",
    "javaLetterOrDigit": r"\p{L}\p{Nd}",
    "javaAlphabetic": r"\p{Alphabetic}",
}
_IS_PROPERTIES = {"Letter": "L", "Punctuation": "P", "Control": "Cc", "Digit": "Nd", "WhiteSpace": "White_Space"}
# \d \w \s \h \v and their negations: Java's (US-ASCII) sets
_ESCAPE_CLASSES = {
    "d": r"0-9",
    "w": r"a-zA-Z0-9_",
    "s": r" \t\n\x0B\f\r",
    "h": r" \t\xA0\u1680\u180E\u2000-\u200A\u202F\u205F\u3000",
    "v": r"\n\x0B\f\r\x85\u2028\u2029",
}
_CHAR_ESCAPES = {"t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C, "a": 0x07, "e": 0x1B}
_NOT_LINE_TERMINATOR = r"[^\n\r\x85\u2028\u2029]"
_TRAILING_LENGTH = re.compile(r"^(?P<body>.*?)(?<!\\)\$\{(?P<min>\d+)(?:,(?P<max>\d*))?\}\$?$", re.DOTALL)
_QUANTIFIER = re.compile(r"\*|\+|\?|\{\d+(?:,\d*)?\}")


class PatternError(ValueError):
    """A model's pattern that cannot be translated to a Python regular expression."""


def _char(code: int) -> str:
    """One code point as a regex (VERSION1) literal, safe inside and outside a set."""
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    return f"\\x{code:02X}" if code <= 0xFF else (f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")


class _JavaTranslator:
    """Java regex syntax -> regex VERSION1 syntax, one pass over the pattern."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.dotall = "(?s" in pattern

    def error(self, what: str) -> PatternError:
        return PatternError(f"{what} at {self.i} in {self.p!r}")

    def peek(self, offset: int = 0) -> str:
        index = self.i + offset
        return self.p[index] if index < len(self.p) else ""

    # escapes shared by both contexts: ("char", code) | ("set", body, negated) | ("raw", text)
    def escape(self) -> Tuple[str, Any, bool]:
        self.i += 1  # the backslash
        c = self.peek()
        if not c:
            raise self.error("a trailing backslash")
        self.i += 1
        if c in _ESCAPE_CLASSES or c.lower() in _ESCAPE_CLASSES:
            return "set", _ESCAPE_CLASSES[c.lower()], c.isupper()
        if c in "pP":
            if self.peek() == "{":
                end = self.p.index("}", self.i)
                name = self.p[self.i + 1 : end]
                self.i = end + 1
            else:
                name = self.peek()
                self.i += 1
            return "set", self.property(name), c == "P"
        if c in _CHAR_ESCAPES:
            return "char", _CHAR_ESCAPES[c], False
        if c == "x":
            if self.peek() == "{":
                end = self.p.index("}", self.i)
                code = int(self.p[self.i + 1 : end], 16)
                self.i = end + 1
            else:
                code = int(self.p[self.i : self.i + 2], 16)
                self.i += 2
            return "char", code, False
        if c == "u":
            code = int(self.p[self.i : self.i + 4], 16)
            self.i += 4
            if 0xD800 <= code <= 0xDBFF and self.p[self.i : self.i + 2] == "\\u":  # a surrogate pair
                low = int(self.p[self.i + 2 : self.i + 6], 16)
                if 0xDC00 <= low <= 0xDFFF:
                    self.i += 6
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            return "char", code, False
        if c == "0":
            digits = re.match(r"[0-7]{1,3}", self.p[self.i :])
            if not digits:
                raise self.error("an octal escape without digits")
            self.i += len(digits.group())
            return "char", int(digits.group(), 8), False
        if c == "c":
            self.i += 1
            return "char", ord(self.p[self.i - 1]) ^ 64, False
        if c == "Q":
            end = self.p.find("\\E", self.i)
            end = len(self.p) if end < 0 else end
            text = self.p[self.i : end]
            self.i = min(end + 2, len(self.p))
            return "quoted", text, False
        if c == "z":
            return "raw", r"\Z", False
        if c == "Z":
            return "raw", r"(?=[\n\r\x85\u2028\u2029]?\Z)", False
        if c == "R":
            return "raw", r"(?:\r\n|[\n\x0B\f\r\x85\u2028\u2029])", False
        if c in "bBAGX" or c.isdigit() or c == "k":
            if c == "k":  # \k<name>
                end = self.p.index(">", self.i)
                name = self.p[self.i : end + 1]
                self.i = end + 1
                return "raw", "\\k" + name, False
            return "raw", "\\" + c, False
        if c.isalnum():
            raise self.error(f"an unknown escape \\{c}")
        return "char", ord(c), False

    @staticmethod
    def property(name: str) -> str:
        """The set body of ``\\p{name}``."""
        if name in _JAVA_CLASSES:
            return _JAVA_CLASSES[name]
        for prefix in ("Is", "is"):
            if name.startswith(prefix) and len(name) > 2:
                bare = name[2:]
                if bare in _JAVA_CLASSES:
                    return _JAVA_CLASSES[bare]
                return "\\p{" + _IS_PROPERTIES.get(bare, bare) + "}"
        if name.startswith("In"):  # a Unicode block
            return "\\p{Block=" + name[2:] + "}"
        return "\\p{" + name + "}"

    # -- outside a character class
    def translate(self) -> str:
        out: List[str] = []
        atom_start: Optional[int] = None  # where the last atom starts in ``out``
        last_was_quantifier = False
        groups: List[int] = []
        while self.i < len(self.p):
            c = self.peek()
            quantifier = _QUANTIFIER.match(self.p, self.i)
            if quantifier and atom_start is not None:
                text = quantifier.group()
                self.i = quantifier.end()
                if self.peek() in ("?", "+"):  # lazy or possessive
                    text += self.peek()
                    self.i += 1
                if last_was_quantifier:  # Java repeats a repetition: X{11}{0,3} is (?:X{11}){0,3}
                    out[atom_start:] = ["(?:" + "".join(out[atom_start:]) + ")"]
                out.append(text)
                last_was_quantifier = True
                continue
            last_was_quantifier = False
            if c == "[":
                atom_start = len(out)
                out.append(self.char_class())
            elif c == "(":
                opening, opens = self.group_opening()
                if opens:
                    groups.append(len(out))
                out.append(opening)
                atom_start = None
            elif c == ")":
                self.i += 1
                out.append(")")
                atom_start = groups.pop() if groups else None
            elif c == "\\":
                atom_start = len(out)
                kind, value, negated = self.escape()
                if kind == "char":
                    out.append(_char(value))
                elif kind == "set":
                    out.append(("[^" if negated else "[") + value + "]")
                elif kind == "quoted":
                    out.append("".join(_char(ord(ch)) for ch in value))
                else:
                    out.append(value)
            elif c == ".":
                self.i += 1
                atom_start = len(out)
                out.append("." if self.dotall else _NOT_LINE_TERMINATOR)
            elif c == "|":
                self.i += 1
                out.append(c)
                atom_start = None
            elif c in "^$":  # Java lets a quantifier repeat an anchor (a no-op): keep it an atom
                self.i += 1
                atom_start = len(out)
                out.append(c)
            else:
                self.i += 1
                atom_start = len(out)
                out.append(_char(ord(c)))
        return "".join(out)

    def group_opening(self) -> Tuple[str, bool]:
        """``(`` and what follows it up to the group's body (lookarounds, names, flags), and
        whether it opens a group (``(?i)`` sets flags and closes at once)."""
        self.i += 1
        if self.peek() != "?":
            return "(", True
        match = re.match(r"\?(?::|=|!|<=|<!|>|<[A-Za-z][A-Za-z0-9]*>|[idmsuxU-]+[:)])", self.p[self.i :])
        if not match:
            raise self.error("an unknown group")
        text = match.group()
        self.i += len(text)
        if not re.fullmatch(r"\?[idmsuxU-]+[:)]", text):
            return "(" + text, True
        flags = "".join(f for f in text[1:-1] if f in "imsx-")  # Java's d, u and U have no equivalent
        opens = text[-1] == ":"
        if not flags.strip("-"):
            return ("(?:" if opens else ""), opens
        return "(?" + flags + text[-1], opens

    # -- inside a character class
    def char_class(self) -> str:
        self.i += 1  # [
        out = ["["]
        if self.peek() == "^":
            out.append("^")
            self.i += 1
        while True:
            c = self.peek()
            if not c:
                raise self.error("an unclosed character class")
            if c == "]":
                self.i += 1
                break
            if c == "[":
                out.append(self.char_class())
                continue
            if c == "&" and self.peek(1) == "&":
                self.i += 2
                out.append("&&")
                continue
            start = self.class_item()
            if start is None:
                continue
            if isinstance(start, str):
                out.append(start)
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", "[", "") and self.p[self.i + 1 : self.i + 3] != "&&":
                save = self.i
                self.i += 1
                end = self.class_item()
                if isinstance(end, int):
                    out.append(_char(start) + "-" + _char(end))
                    continue
                self.i = save  # not a range: the hyphen is a literal
            out.append(_char(start))
        return "".join(out) + "]"

    def class_item(self) -> Any:
        """A code point (int), a set's text (str), or None for an empty \\Q\\E."""
        c = self.peek()
        if c != "\\":
            self.i += 1
            return ord(c)
        kind, value, negated = self.escape()
        if kind == "char":
            return value
        if kind == "set":
            return "[^" + value + "]" if negated else value
        if kind == "quoted":
            return "".join(_char(ord(ch)) for ch in value) or None
        raise self.error(f"{value} inside a character class")


class JavaPattern:
    """A model's pattern, applied to a whole value as AWS applies it."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.length: Optional[Tuple[int, Optional[int]]] = None
        body = pattern
        quirk = _TRAILING_LENGTH.match(pattern)
        if quirk:
            body = quirk["body"]
            self.length = (int(quirk["min"]), int(quirk["max"]) if quirk["max"] else None)
            if quirk["max"] is None:
                self.length = (self.length[0], self.length[0])
        self.translated = _JavaTranslator(body).translate()
        try:
            self.regex = regex.compile(self.translated, regex.VERSION1)
        except regex.error as err:
            raise PatternError(f"{pattern!r} (as {self.translated!r}): {err}") from None

    def matches(self, value: str) -> bool:
        if self.length and not (
            self.length[0] <= len(value) and (self.length[1] is None or len(value) <= self.length[1])
        ):
            return False
        return self.regex.fullmatch(value, timeout=PATTERN_TIMEOUT_S) is not None


@functools.cache
def java_pattern(pattern: str) -> JavaPattern:
    return JavaPattern(pattern)


# -- values -------------------------------------------------------------------------------
def _show(value: Any, shape: Shape) -> str:
    if shape.metadata.get("sensitive"):
        return "<sensitive>"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _timestamp_ok(value: Any, timestamp_format: str) -> bool:
    if isinstance(value, (dt.datetime, dt.date)):
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timestamp_format == "unixTimestamp"
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return True
    except ValueError:
        pass
    if timestamp_format == "rfc822":
        try:
            return email.utils.parsedate_to_datetime(value) is not None
        except (TypeError, ValueError):
            return False
    return False


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if re.fullmatch(r"[\w-]+", key) else f"{path}[{key!r}]"


class _Checker:
    def __init__(self, protocol: str, step_functions_names: bool) -> None:
        self.problems: List[str] = []
        self.default_timestamp = "unixTimestamp" if protocol in ("json", "rest-json") else "iso8601"
        self.step_functions_names = step_functions_names

    def add(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}")

    def check(self, value: Any, shape: Shape, path: str) -> None:
        kind = shape.type_name
        if kind == "structure" and getattr(shape, "is_document_type", False):
            return
        if shape.serialization.get("jsonvalue"):
            return
        method = getattr(self, "check_" + kind, None)
        if method is None:
            raise ValueError(f"{path}: the model's type {kind!r} is not handled")
        method(value, shape, path)

    def wrong_type(self, value: Any, shape: Shape, path: str, wanted: str) -> None:
        self.add(path, f"{_show(value, shape)} is {_json_type(value)}, not {wanted}")

    def check_structure(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.wrong_type(value, shape, path, f"an object ({shape.name})")
            return
        members = shape.members
        names = {self.member_key(m): m for m in members}
        for key, item in value.items():
            if key not in names:
                close = difflib.get_close_matches(key, list(names), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.add(_key_path(path, key), f"unknown member of {shape.name}{hint}")
                continue
            self.check(item, members[names[key]], _key_path(path, key))
        for required in shape.required_members:
            if self.member_key(required) not in value and not members[required].metadata.get("idempotencyToken"):
                self.add(_key_path(path, self.member_key(required)), f"required member of {shape.name} is missing")
        if getattr(shape, "is_tagged_union", False):
            chosen = [k for k in value if k in names]
            if len(chosen) != 1:
                self.add(path, f"{shape.name} is a union: exactly one member must be set, not {len(chosen)}")

    def member_key(self, member: str) -> str:
        """Step Functions' aws-sdk integration takes the members in PascalCase."""
        return member[:1].upper() + member[1:] if self.step_functions_names else member

    def sized(self, count: int, shape: Shape, path: str, value: Any, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and count < low:
            self.add(path, f"{_show(value, shape)} has {count} {unit}, fewer than the minimum {low}")
        if high is not None and count > high:
            self.add(path, f"{_show(value, shape)} has {count} {unit}, more than the maximum {high}")

    def check_list(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, (list, tuple)):
            self.wrong_type(value, shape, path, "a list")
            return
        self.sized(len(value), shape, path, value, "items")
        for index, item in enumerate(value):
            self.check(item, shape.member, f"{path}[{index}]")

    def check_map(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.wrong_type(value, shape, path, "an object (a map)")
            return
        self.sized(len(value), shape, path, value, "entries")
        for key, item in value.items():
            self.check(key, shape.key, f"{path} key {key!r}")
            self.check(item, shape.value, _key_path(path, str(key)))

    def check_string(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, str):
            self.wrong_type(value, shape, path, "a string")
            return
        if shape.enum and value not in shape.enum:
            choices = ", ".join(shape.enum[:12]) + (", ..." if len(shape.enum) > 12 else "")
            self.add(path, f"{_show(value, shape)} is not one of the enum values ({choices})")
            return
        self.sized(len(value), shape, path, value, "characters")
        pattern = shape.metadata.get("pattern")
        if pattern:
            try:
                matched = java_pattern(pattern).matches(value)
            except TimeoutError:
                self.add(path, f"{_show(value, shape)}: matching pattern {pattern} took over {PATTERN_TIMEOUT_S} s")
                return
            if not matched:
                self.add(path, f"{_show(value, shape)} does not match pattern {pattern}")

    def ranged(self, value: Any, shape: Shape, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.add(path, f"{_show(value, shape)} is below the minimum {low}")
        if high is not None and value > high:
            self.add(path, f"{_show(value, shape)} is above the maximum {high}")

    def check_integer(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong_type(value, shape, path, "an integer")
            return
        self.ranged(value, shape, path)

    check_long = check_integer

    def check_float(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.wrong_type(value, shape, path, "a number")
            return
        self.ranged(value, shape, path)

    check_double = check_float

    def check_boolean(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, bool):
            self.wrong_type(value, shape, path, "a boolean")

    def check_timestamp(self, value: Any, shape: Shape, path: str) -> None:
        timestamp_format = shape.serialization.get("timestampFormat") or self.default_timestamp
        if not _timestamp_ok(value, timestamp_format):
            accepted = "an ISO 8601 string" + {
                "unixTimestamp": " or epoch seconds",
                "rfc822": " or an RFC 822 date",
            }.get(timestamp_format, "")
            self.add(path, f"{_show(value, shape)} is not a timestamp ({accepted}; timestampFormat {timestamp_format})")

    def check_blob(self, value: Any, shape: Shape, path: str) -> None:
        if isinstance(value, str):
            data = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif hasattr(value, "read"):
            return  # a stream: its length is the service's to check
        else:
            self.wrong_type(value, shape, path, "a blob (a string or bytes)")
            return
        self.sized(len(data), shape, path, value, "bytes")


def validate_request(
    service: str, operation: str, params: Dict[str, Any], *, step_functions_names: bool = False
) -> List[str]:
    """Every problem of ``params`` as a request of ``service``'s ``operation``, each naming the
    member path, the value and the rule. ``step_functions_names``: the members are named as Step
    Functions' aws-sdk integration names them (the API's names with a capital first letter)."""
    model = operation_model(service, operation)
    checker = _Checker(model.service_model.metadata.get("protocol", "json"), step_functions_names)
    if model.input_shape is None:
        if params:
            checker.add(model.name, f"takes no parameters, got {', '.join(params)}")
        return checker.problems
    checker.check(params, model.input_shape, model.name)
    rules = MEMBER_RULES.get((model.service_model.service_name, model.name))
    return checker.problems + (rules(params) if rules and isinstance(params, dict) else [])


def _transform_job_rules(params: Dict[str, Any]) -> List[str]:
    """CreateTransformJob's limits that its model cannot state (API_CreateTransformJob): "The
    value of MaxPayloadInMB cannot be greater than 100 MB. If you specify the
    MaxConcurrentTransforms parameter, the value of (MaxConcurrentTransforms * MaxPayloadInMB)
    also cannot exceed 100 MB"; and BatchStrategy: "To enable the batch strategy, you must set
    the SplitType property to Line, RecordIO, or TFRecord"."""
    problems = []
    payload, concurrent = params.get("MaxPayloadInMB", 6), params.get("MaxConcurrentTransforms", 0)
    if isinstance(payload, int) and payload > 100:
        problems.append(f"CreateTransformJob.MaxPayloadInMB: {payload} is above 100")
    if isinstance(payload, int) and isinstance(concurrent, int) and concurrent * payload > 100:
        problems.append(
            f"CreateTransformJob.MaxConcurrentTransforms: {concurrent} x MaxPayloadInMB {payload} is above 100"
        )
    split = (params.get("TransformInput") or {}).get("SplitType", "None")
    if params.get("BatchStrategy") == "MultiRecord" and split == "None":
        problems.append(
            "CreateTransformJob.BatchStrategy: MultiRecord needs a TransformInput.SplitType other than None"
        )
    return problems


# rules between members, by (botocore's service name, operation)
MEMBER_RULES = {("sagemaker", "CreateTransformJob"): _transform_job_rules}


def check_request(service: str, operation: str, params: Dict[str, Any], *, step_functions_names: bool = False) -> None:
    """:func:`validate_request`, as an AssertionError listing every problem."""
    problems = validate_request(service, operation, params, step_functions_names=step_functions_names)
    if problems:
        raise AssertionError(f"invalid {service} {operation} request:\n  " + "\n  ".join(problems))
