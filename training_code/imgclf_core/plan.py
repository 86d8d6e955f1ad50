"""The run plan: from (the dataset version, the stage's settings, the caller's overrides) and,
once validation has read the data, its report, to everything a run decides before its jobs
start. The cloud workflow computes it one step at a time (trigger, validate, plan), the local
pipeline in one go; both call these functions, and tests/unit/test_plan_equivalence.py checks
that the two agree field by field."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional

from image_dataset.descriptor import Descriptor
from image_dataset.validate import ValidationOptions
from image_training.errors import HyperparameterError
from image_training.hyperparameters import RESERVED_PREFIXES

from .backends import backend, schema_for

# set by the workflow from the validation report, never by config or uploads
DATA_DERIVED = ("num_classes", "num_training_samples")
# where a hyperparameter of a run comes from
DEFAULT, OVERRIDE, FROM_DATA = "default", "override", "from the data"
MAX_JOB_NAME = 63  # SageMaker job names
MAX_EXECUTION_NAME = 80  # Step Functions execution names
UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
CODE_CHANNEL = "code"  # the training job's input channel that holds sourcedir.tar.gz


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_settable(backend_name: str, raw: Mapping[str, Any]) -> Dict[str, str]:
    """The string values of ``raw`` when each may be set from outside the job (stage config,
    dataset descriptor, ``--hp``), else HyperparameterError: known names only, values that
    parse, and never the values the data decide or SageMaker's reserved keys."""
    schema = schema_for(backend_name)
    values: Dict[str, str] = {}
    for name, value in raw.items():
        if name.startswith(RESERVED_PREFIXES):
            raise HyperparameterError(name, "is reserved for SageMaker and cannot be set")
        if name in DATA_DERIVED:
            raise HyperparameterError(name, "is set by the workflow from the validation report")
        if name not in schema.params:
            raise HyperparameterError(name, f"is not a hyperparameter of the {backend_name} backend")
        if isinstance(value, (dict, list)) or value is None:
            raise HyperparameterError(name, f"{value!r} is not a single value")
        text = as_text(value)
        schema.parse_value(schema.params[name], text)
        values[name] = text
    return values


class HyperparameterValues(Mapping[str, Any]):
    """A run's hyperparameters typed by the backend's schema (int, float, bool, shape, lists),
    as the training job reads them: each parsed once from the text SageMaker stores (``text``),
    the schema's default for the others; HyperparameterError for a value that does not parse."""

    def __init__(self, backend_name: str, text: Mapping[str, str]) -> None:
        schema = schema_for(backend_name)
        self.backend = backend_name
        self.text: Dict[str, str] = dict(text)
        self._values: Dict[str, Any] = {
            name: schema.parse_value(param, text[name]) if name in text else param.default
            for name, param in schema.params.items()
        }

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def validation_options(
    backend_name: str, hyperparameters: Mapping[str, str], descriptor: Mapping[str, Any]
) -> ValidationOptions:
    """What training will expect of the data (image sizes, batch size, labels), so validation
    rejects what the job would reject; ``descriptor`` says how to read it (format, label_attribute)."""
    data = backend(backend_name).data_options(HyperparameterValues(backend_name, hyperparameters))
    return ValidationOptions(
        format=descriptor.get("format"), label_attribute=descriptor.get("label_attribute"), workers=4, **data
    )


def data_hyperparameters(backend_name: str, report: Mapping[str, Any]) -> Dict[str, str]:
    """The hyperparameters the data decide, from a validation report, as strings (none from a
    report that found the data invalid: no job trains on them)."""
    known = schema_for(backend_name).params
    values: Dict[str, str] = {}
    if not report.get("valid"):
        return values
    if "num_classes" in known and isinstance(report.get("num_classes"), int):
        values["num_classes"] = str(report["num_classes"])
    train = report.get("channels", {}).get("train")
    if "num_training_samples" in known and train:
        values["num_training_samples"] = str(train["samples"])
    return values


def split_ratio(backend_name: str, hyperparameters: Mapping[str, str]) -> float:
    """The share of train the job holds out when there is no validation channel (0: the
    backend's job refuses such a dataset)."""
    name = backend(backend_name).split_ratio
    return float(HyperparameterValues(backend_name, hyperparameters)[name]) if name else 0.0


def script_mode(backend_name: str, submit_directory: str, instance_count: int) -> Dict[str, str]:
    """The keys that make the framework container run our entry point (JSON-encoded, as the
    SageMaker SDK writes them), and start its distributed engine on several instances."""
    record = backend(backend_name)
    keys = {
        "sagemaker_program": json.dumps(record.program),
        "sagemaker_submit_directory": json.dumps(submit_directory),
    }
    if instance_count > 1:
        keys[record.distribution_flag] = "true"
    return keys


def job_hyperparameters(
    effective: Mapping[str, str],
    from_data: Mapping[str, str],
    backend_name: str,
    submit_directory: str,
    instance_count: int,
) -> Dict[str, str]:
    """A training job's HyperParameters: the effective values (stage defaults, then overrides),
    the data's (which win), then script mode's keys."""
    return {**effective, **from_data, **script_mode(backend_name, submit_directory, instance_count)}


def code_channel_path(code_uri: str) -> str:
    """Where the training container finds sourcedir.tar.gz given as the code channel."""
    return f"/opt/ml/input/data/{CODE_CHANNEL}/{code_uri.rsplit('/', 1)[-1]}"


def job_name(prefix: str, execution: str, attempt: int) -> str:
    """Unique per execution and attempt, at most 63 characters of [a-zA-Z0-9-]."""
    digest = hashlib.sha256(execution.encode()).hexdigest()[:8]
    tail = f"-{digest}-{attempt}"
    readable = re.sub(r"[^A-Za-z0-9]+", "-", execution).strip("-")
    room = MAX_JOB_NAME - len(prefix) - 1 - len(tail)
    middle = readable[: max(room, 0)].strip("-")
    return f"{prefix}-{middle}{tail}" if middle else f"{prefix}{tail}"


def stage_identity(
    backend_name: str, training: Mapping[str, Any], accuracy_threshold: float, max_regression: float
) -> str:
    """What, besides the dataset and hyperparameters, makes a run different: the backend, where
    and how it trains (the cloud's training config and image; locally, this machine) and the
    gate it must pass."""
    relevant = {
        "backend": backend_name,
        "training": dict(training),
        "gate": {"accuracy_threshold": accuracy_threshold, "max_regression": max_regression},
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def execution_name(name: str, version: str, config: Mapping[str, Any], rerun: str = "") -> str:
    """The run of one dataset version under one configuration, in the cloud (the Step Functions
    execution) and locally: at most 80 characters of [A-Za-z0-9-_], readable name and version,
    then a hash of the exact name, version and configuration (so sanitising never merges two
    datasets)."""
    digest = hashlib.sha256(
        json.dumps({"name": name, "version": version, "config": config}, sort_keys=True).encode()
    ).hexdigest()[:16]
    suffix = f"-{digest}" + (f"_{rerun}" if rerun else "")
    readable = "-".join(p for p in (UNSAFE.sub("-", name).strip("-"), UNSAFE.sub("-", version).strip("-")) if p)
    readable = readable[: MAX_EXECUTION_NAME - len(suffix)].rstrip("-") or "dataset"
    return readable + suffix


class Setting(NamedTuple):
    name: str
    value: str
    source: str  # DEFAULT, OVERRIDE or FROM_DATA


class RunPlan(NamedTuple):
    """What one run of one dataset version does, before and after validation."""

    execution: str
    backend: str
    effective: Dict[str, str]  # the stage's defaults, then the overrides: what validation reads
    overrides: Dict[str, str]
    from_data: Dict[str, str]  # empty until the report is in
    validation: ValidationOptions

    @property
    def hyperparameters(self) -> Dict[str, str]:
        """What the training job gets, besides script mode's keys, as SageMaker stores them."""
        return {**self.effective, **self.from_data}

    @property
    def values(self) -> HyperparameterValues:
        """The same, typed as the job reads them."""
        return HyperparameterValues(self.backend, self.hyperparameters)

    def settings(self) -> List[Setting]:
        """Every hyperparameter with where it comes from."""
        out = [Setting(k, v, OVERRIDE if k in self.overrides else DEFAULT) for k, v in self.effective.items()]
        return out + [Setting(k, v, FROM_DATA) for k, v in self.from_data.items()]

    def with_report(self, report: Mapping[str, Any]) -> RunPlan:
        """The plan once validation has read the data."""
        return self._replace(from_data=data_hyperparameters(self.backend, report))

    def training_hyperparameters(self, submit_directory: str, instance_count: int) -> Dict[str, str]:
        """The HyperParameters of the CreateTrainingJob request (or the local job's)."""
        return job_hyperparameters(self.effective, self.from_data, self.backend, submit_directory, instance_count)


def plan_run(
    name: str,
    version: str,
    descriptor: Descriptor,
    backend_name: str,
    defaults: Mapping[str, str],
    stage: str,
    report: Optional[Mapping[str, Any]] = None,
) -> RunPlan:
    """The plan of dataset ``name`` at ``version`` under a stage whose identity is ``stage``
    (:func:`stage_identity`): ``defaults`` are the stage's hyperparameters, ``descriptor`` the
    upload's (its hyperparameters are the overrides; HyperparameterError when one may not be
    set). With the validation report, the data's values too."""
    overrides = check_settable(backend_name, descriptor.hyperparameters)
    effective = {**defaults, **overrides}
    described = descriptor.as_dict()
    described.pop("rerun", None)
    config = {"stage": stage, "hyperparameters": effective, "descriptor": described}
    plan = RunPlan(
        execution=execution_name(name, version, config, descriptor.rerun),
        backend=backend_name,
        effective=effective,
        overrides=overrides,
        from_data={},
        validation=validation_options(backend_name, effective, described),
    )
    return plan.with_report(report) if report is not None else plan
