"""The environment contract between the constructs and the Lambda handlers: one typed model per
function. The construct builds the model and sets ``as_environment()``; the handler reads
``from_environment(os.environ)``. A variable's name is its field's name in upper case, so the
two sides cannot drift apart."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Dict, Mapping, Type, TypeVar

T = TypeVar("T", bound="Contract")
_PARSERS: Dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float, "Dict[str, str]": json.loads}


class ContractError(LookupError):
    """A variable of the contract is missing or does not parse; the message names it."""


@dataclasses.dataclass(frozen=True)
class Contract:
    @classmethod
    def names(cls) -> Dict[str, str]:
        """Field name -> environment variable name."""
        return {f.name: f.name.upper() for f in dataclasses.fields(cls)}

    def as_environment(self) -> Dict[str, str]:
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name.upper()] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
        return out

    @classmethod
    def from_environment(cls: Type[T], environ: Mapping[str, str]) -> T:
        values = {}
        for field in dataclasses.fields(cls):
            name = field.name.upper()
            if name not in environ:
                raise ContractError(f"the environment variable {name} of {cls.__name__} is not set")
            try:
                values[field.name] = _PARSERS[str(field.type)](environ[name])
            except ValueError as err:
                raise ContractError(f"the environment variable {name}={environ[name]!r} is invalid: {err}") from None
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class TriggerEnvironment(Contract):
    state_machine_arn: str
    backend: str
    default_hyperparameters: Dict[str, str]  # the stage's, before a descriptor's overrides
    stage_config_hash: str  # what else makes a run differ (plan.stage_identity)
    alert_topic_arn: str


@dataclasses.dataclass(frozen=True)
class ValidateEnvironment(Contract):
    work_bucket: str  # where a fanned-out validation keeps its plan and shard results
    shard_bytes: int
    shard_images: int


@dataclasses.dataclass(frozen=True)
class PlannerEnvironment(Contract):
    resource_prefix: str
    backend: str
    instance_count: int
    code_uri: str  # sourcedir.tar.gz
    artifact_bucket: str


@dataclasses.dataclass(frozen=True)
class GateEnvironment(Contract):
    model_package_group: str
    accuracy_threshold: float
    max_regression: float
    approval_mode: str


@dataclasses.dataclass(frozen=True)
class DeployEnvironment(Contract):
    resource_prefix: str
    endpoint_name: str


@dataclasses.dataclass(frozen=True)
class ClassifyEnvironment(Contract):
    endpoint_name: str
    max_body_bytes: int  # requests above it get 413 before InvokeEndpoint


@dataclasses.dataclass(frozen=True)
class CleanupEnvironment(Contract):
    resource_prefix: str
    endpoint_name: str
    model_package_group: str


@dataclasses.dataclass(frozen=True)
class BatchTriggerEnvironment(Contract):
    state_machine_arn: str  # the batch workflow
    alert_topic_arn: str  # where a refused batch.json is reported


@dataclasses.dataclass(frozen=True)
class BatchPlanEnvironment(Contract):
    resource_prefix: str  # the transform job's and model's names start with it
    model_package_group: str
    datasets_bucket: str  # where inputs may be
    artifact_bucket: str  # where the manifest, the outputs and predictions.jsonl go


@dataclasses.dataclass(frozen=True)
class BatchJoinEnvironment(Contract):
    artifact_bucket: str


@dataclasses.dataclass(frozen=True)
class MonitorEnvironment(Contract):
    endpoint_name: str
    artifact_bucket: str  # where the model data, the captures and the reports are
    feedback_bucket: str  # where ground-truth labels are uploaded (the datasets bucket)
    window_hours: int  # the hours before each run that it monitors
    metric_namespace: str  # the CloudWatch namespace of the metrics
