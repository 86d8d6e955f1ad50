"""Each backend's hyperparameter schema by name, and the rule for values set from outside the
training job (deployment config, dataset descriptors): known names only, values that parse,
and never the values the workflow derives from the data or SageMaker's reserved keys."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from .errors import HyperparameterError
from .hyperparameters import RESERVED_PREFIXES, Schema

BACKENDS = ("mxnet", "tensorflow")
# set by the workflow from the validation report, never by config or uploads
DATA_DERIVED = ("num_classes", "num_training_samples")
# the script-mode key that makes the framework container start its distributed engine on jobs
# of several instances: MXNet's parameter servers, TensorFlow's TF_CONFIG for
# MultiWorkerMirroredStrategy
DISTRIBUTION_FLAGS = {
    "mxnet": "sagemaker_parameter_server_enabled",
    "tensorflow": "sagemaker_multi_worker_mirrored_strategy_enabled",
}


def schema_for(backend: str) -> Schema:
    if backend == "mxnet":
        from .mxnet_hyperparameters import SCHEMA

        return SCHEMA
    if backend == "tensorflow":
        from .tf_hyperparameters import SCHEMA as TF_SCHEMA

        return TF_SCHEMA
    raise ValueError("unknown backend {!r} (known: {})".format(backend, ", ".join(BACKENDS)))


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_settable(backend: str, raw: Mapping[str, Any]) -> Dict[str, str]:
    """The string values of ``raw`` when each may be set from outside, else HyperparameterError."""
    schema = schema_for(backend)
    values: Dict[str, str] = {}
    for name, value in raw.items():
        if name.startswith(RESERVED_PREFIXES):
            raise HyperparameterError(name, "is reserved for SageMaker and cannot be set")
        if name in DATA_DERIVED:
            raise HyperparameterError(name, "is set by the workflow from the validation report")
        if name not in schema.params:
            raise HyperparameterError(name, f"is not a hyperparameter of the {backend} backend")
        if isinstance(value, (dict, list)) or value is None:
            raise HyperparameterError(name, f"{value!r} is not a single value")
        text = as_text(value)
        schema.parse_value(schema.params[name], text)
        values[name] = text
    return values


# CloudWatch metrics from each backend's log lines (the regexes of the AWS algorithms)
METRIC_DEFINITIONS = {
    "mxnet": [
        {"Name": "train:accuracy", "Regex": r"Epoch\[\d+\] Train-accuracy=([0-9.]+)"},
        {"Name": "validation:accuracy", "Regex": r"Epoch\[\d+\] Validation-accuracy=([0-9.]+)"},
    ],
    "tensorflow": [
        {"Name": "train:accuracy", "Regex": r"- accuracy: ([0-9.]+)"},
        {"Name": "train:loss", "Regex": r"- loss: ([0-9.]+)"},
        {"Name": "validation:accuracy", "Regex": r"val_accuracy: ([0-9.]+)"},
        {"Name": "validation:loss", "Regex": r"val_loss: ([0-9.]+)"},
    ],
}
