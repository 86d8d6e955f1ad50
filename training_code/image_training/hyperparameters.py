"""Hyperparameter schemas: names, types, defaults, allowed values, and parsing from the strings
SageMaker passes. Each backend declares its table once (``mxnet_hyperparameters``); the
training script, the CLI, the docs and the CDK configuration all read it."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .errors import HyperparameterError

# keys SageMaker and its toolkit add to every job; never rejected as unknown
RESERVED_PREFIXES = ("sagemaker_", "_")


class Param(NamedTuple):
    name: str
    type: str  # int, float, bool, str, int_list, shape
    default: Any  # None: no default
    description: str
    required: bool = False
    choices: Optional[Tuple[Any, ...]] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    from_report: Optional[str] = None  # the validation-report key that fills it in the workflow

    def as_dict(self) -> Dict[str, Any]:
        out = {k: v for k, v in self._asdict().items() if v is not None}
        out["required"] = self.required
        if "choices" in out:
            out["choices"] = list(self.choices or ())
        return out


def _int(text: str) -> int:
    value = float(text)
    if not math.isfinite(value) or value != int(value):
        raise ValueError
    return int(value)


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "1.0"):
        return True
    if lowered in ("0", "false", "0.0"):
        return False
    raise ValueError


def _int_list(text: str) -> List[int]:
    parts = [p for p in text.replace("[", "").replace("]", "").split(",") if p.strip()]
    return [_int(p) for p in parts]


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError
    return value


PARSERS: Dict[str, Callable[[str], Any]] = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "str": lambda text: text.strip(),
    "int_list": _int_list,
    "shape": _int_list,
}
EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "0/1 or True/False",
    "str": "a string",
    "int_list": "comma-separated integers",
    "shape": "comma-separated integers",
}


def _text(value: Any) -> str:
    """SageMaker stores every value as a string (the SDK JSON-encodes them: '"sgd"'); the
    toolkit may have decoded it already."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                decoded = json.loads(value)
            except ValueError:
                return value
            return decoded if isinstance(decoded, str) else value
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return json.dumps(value)


class Schema:
    """One backend's table of hyperparameters."""

    def __init__(self, backend: str, params: Sequence[Param]) -> None:
        self.backend = backend
        self.params = {p.name: p for p in params}

    def parse_value(self, param: Param, raw: Any) -> Any:
        text = _text(raw)
        try:
            value = PARSERS[param.type](text)
        except (ValueError, TypeError, OverflowError):
            raise HyperparameterError(param.name, f"{text!r} is not {EXPECTED[param.type]}") from None
        if param.choices is not None and value not in param.choices:
            raise HyperparameterError(
                param.name, "{!r} is not one of {}".format(text, ", ".join(str(c) for c in param.choices))
            )
        for number in value if isinstance(value, list) else [value]:
            if param.minimum is not None and isinstance(number, (int, float)) and number < param.minimum:
                raise HyperparameterError(param.name, f"{number} is below the minimum {param.minimum}")
            if param.maximum is not None and isinstance(number, (int, float)) and number > param.maximum:
                raise HyperparameterError(param.name, f"{number} is above the maximum {param.maximum}")
        return value

    def parse(self, raw: Mapping[str, Any]) -> Dict[str, Any]:
        """Typed values for every parameter (defaults filled in). Unknown names, missing
        required ones and invalid values raise :class:`HyperparameterError`."""
        unknown = sorted(k for k in raw if k not in self.params and not k.startswith(RESERVED_PREFIXES))
        if unknown:
            raise HyperparameterError(
                unknown[0],
                "is not a hyperparameter of the {} backend (known: {})".format(
                    self.backend, ", ".join(sorted(self.params))
                ),
            )
        values: Dict[str, Any] = {}
        for name, param in self.params.items():
            if name in raw and _text(raw[name]).strip() != "":
                values[name] = self.parse_value(param, raw[name])
            elif param.required:
                raise HyperparameterError(name, "is required")
            else:
                values[name] = param.default
        return values

    def as_json(self) -> Dict[str, Any]:
        return {"backend": self.backend, "hyperparameters": [p.as_dict() for p in self.params.values()]}


def parse_cli_args(argv: Sequence[str]) -> Dict[str, str]:
    """``--key value`` pairs as the SageMaker toolkit passes them (keys spelled exactly)."""
    out: Dict[str, str] = {}
    i = 0
    while i < len(argv):
        key = argv[i]
        if not key.startswith("--"):
            raise HyperparameterError(key, "expected --name value arguments")
        if i + 1 >= len(argv):
            raise HyperparameterError(key[2:], "has no value")
        out[key[2:]] = argv[i + 1]
        i += 2
    return out
