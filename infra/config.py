"""Typed, validated deployment configuration read from cdk.json context.

``imgclf:stages`` maps a stage name to its settings; every stage names its account and region,
so container image URIs resolve at synth time without AWS calls. A bad value stops synth with a
:class:`ConfigError` that names the key (``imgclf:stages.dev.training.instance_type``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from sagemaker.core import image_uris

from image_training.errors import HyperparameterError
from imgclf_core.backends import BACKENDS, backend
from imgclf_core.batch_request import BATCH_STRATEGIES
from imgclf_core.plan import check_settable, stage_identity

CONTEXT_KEY = "imgclf:stages"
TAG = "imgclf:stage"
TRAINING_INSTANCE = re.compile(r"^ml\.(p3|p3dn|g5)\.[0-9]*x?large$")
ENDPOINT_INSTANCE = re.compile(r"^ml\.(m5|g4dn)\.[0-9]*x?large$")
PACK_INSTANCE = re.compile(r"^ml\.(m5|c5)\.[0-9]*x?large$")
BATCH_INSTANCE = ENDPOINT_INSTANCE  # the serving container's image is chosen for CPU or GPU by it
APPROVAL_MODES = ("auto", "manual")
API_AUTH = ("iam", "cognito")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message starts with its key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class TrainingConfig:
    instance_type: str = "ml.p3.2xlarge"
    instance_count: int = 1
    spot: bool = True
    max_wait_seconds: int = 48 * 3600
    max_runtime_seconds: int = 24 * 3600
    volume_size_gb: int = 50
    max_attempts: int = 2  # runs of a job that failed for a transient reason (capacity, internal)
    pack_instance_type: str = "ml.m5.xlarge"  # the Processing job that packs image datasets (CPU)


@dataclass(frozen=True)
class EndpointConfig:
    instance_type: str = "ml.m5.xlarge"
    min_instances: int = 1
    max_instances: int = 2
    invocations_per_instance: int = 100  # the auto-scaling target (InvocationsPerInstance per minute)
    # DataCaptureConfig's InitialSamplingPercentage; 0 (the default) creates no DataCaptureConfig:
    # captures hold the callers' images, so keeping them is a decision of the stage's owner
    capture_percent: int = 0  # an Integer in the API


@dataclass(frozen=True)
class BatchConfig:
    """The batch workflow's transform jobs (CreateTransformJob)."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    max_payload_mb: int = 6  # MaxPayloadInMB: one image per request, as large as a real-time request
    max_concurrent_transforms: int = 0  # 0: SageMaker's choice (the container's, else 1 per instance)
    # BatchStrategy of a .rec's job (images go one per request): MultiRecord sends as many whole
    # records per request as fit max_payload_mb, SingleRecord one record per request
    batch_strategy: str = "MultiRecord"


@dataclass(frozen=True)
class MonitoringConfig:
    """The scheduled monitor of the endpoint's captured traffic (only with capture_percent > 0)."""

    every_hours: int = 24  # the schedule: rate(<every_hours> hours)
    window_hours: int = 0  # the hours each run reads; 0: every_hours (each capture read once)
    namespace: str = "Imgclf"  # the CloudWatch namespace of its metrics

    @property
    def window(self) -> int:
        return self.window_hours or self.every_hours


@dataclass(frozen=True)
class ValidationConfig:
    """When and how the Validate step fans out over a Distributed Map (see shards.py)."""

    shard_mb: int = 1024  # RecordIO bytes per shard; datasets above this fan out
    shard_images: int = 5000  # image files per shard of a list-format dataset
    max_concurrency: int = 40  # shards checked at once

    @property
    def shard_bytes(self) -> int:
        return self.shard_mb << 20


@dataclass(frozen=True)
class VpcConfig:
    subnet_ids: Tuple[str, ...]
    security_group_ids: Tuple[str, ...]

    def as_request(self) -> Dict[str, List[str]]:
        """The ``VpcConfig`` of CreateTrainingJob and CreateModel."""
        return {"Subnets": list(self.subnet_ids), "SecurityGroupIds": list(self.security_group_ids)}


@dataclass(frozen=True)
class StageConfig:
    name: str
    account: str
    region: str
    backend: str = "mxnet"
    training: TrainingConfig = field(default_factory=TrainingConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    approval: str = "auto"
    accuracy_threshold: float = 0.8
    max_regression: float = 0.0  # how far below the approved model a new one may land
    alert_email: Optional[str] = None
    vpc: Optional[VpcConfig] = None
    api_auth: str = "iam"
    api_rate_limit: int = 50  # requests per second, with a burst of twice that
    artifact_retention_days: int = 365

    @property
    def prefix(self) -> str:
        """The prefix of every resource name this stage creates (endpoint, models, jobs)."""
        return f"imgclf-{self.name}"

    @property
    def request_tags(self) -> List[Dict[str, str]]:
        """The tag every resource a workflow creates carries (``Tags`` of SageMaker requests)."""
        return [{"Key": TAG, "Value": self.name}]

    @property
    def datasets_bucket(self) -> str:
        return f"{self.prefix}-datasets-{self.account}-{self.region}"

    @property
    def artifacts_bucket(self) -> str:
        return f"{self.prefix}-artifacts-{self.account}-{self.region}"

    @property
    def deployment_state_machine(self) -> str:
        return f"{self.prefix}-deployment"

    @property
    def batch_state_machine(self) -> str:
        return f"{self.prefix}-batch"

    @property
    def endpoint_name(self) -> str:
        return f"{self.prefix}-endpoint"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-models"

    def image_uri(self, scope: str) -> str:
        """The AWS framework container for this stage's backend and region: ``training`` (on the
        training instance type), ``processing`` (the CPU training image that packs datasets) or
        ``inference`` (on the endpoint's instance type) or ``batch`` (the inference image on
        the batch instance type)."""
        instance = {
            "training": self.training.instance_type,
            "processing": self.training.pack_instance_type,
            "batch": self.batch.instance_type,
        }.get(scope, self.endpoint.instance_type)
        image_scope = "inference" if scope in ("inference", "batch") else "training"
        version, python = backend(self.backend).containers[image_scope]
        return str(
            image_uris.retrieve(
                self.backend,
                region=self.region,
                version=version,
                py_version=python,
                instance_type=instance,
                image_scope=image_scope,
            )
        )


def stage_config_hash(stage: StageConfig) -> str:
    """What, besides the dataset and hyperparameters, makes a training run different: the
    training resources and image, and the gate (imgclf_core.plan.stage_identity)."""
    training = {**stage.training.__dict__, "image": stage.image_uri("training")}
    return stage_identity(stage.backend, training, stage.accuracy_threshold, stage.max_regression)


def _take(raw: Mapping[str, Any], key: str, where: str, kind: type, default: Any) -> Any:
    if key not in raw or raw[key] is None:
        return default
    value = raw[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}", f"{value!r} is not {kind.__name__}")
    return value


def _no_unknown(raw: Mapping[str, Any], known: Tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}.{key}", "unknown key (known: {})".format(", ".join(known)))


def _positive(value: int, key: str, minimum: int = 1) -> int:
    if value < minimum:
        raise ConfigError(key, f"{value} is below {minimum}")
    return value


def _training(raw: Any, where: str) -> TrainingConfig:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object")
    known: Tuple[str, ...] = ("instance_type", "instance_count", "spot", "max_wait_seconds", "max_runtime_seconds")
    known += ("volume_size_gb", "max_attempts", "pack_instance_type")
    _no_unknown(raw, known, where)
    d = TrainingConfig()
    instance = _take(raw, "instance_type", where, str, d.instance_type)
    if not TRAINING_INSTANCE.match(instance):
        raise ConfigError(f"{where}.instance_type", f"{instance!r} is not an ml.p3 or ml.g5 instance type")
    runtime = _positive(
        _take(raw, "max_runtime_seconds", where, int, d.max_runtime_seconds), where + ".max_runtime_seconds"
    )
    spot = _take(raw, "spot", where, bool, d.spot)
    wait = _take(raw, "max_wait_seconds", where, int, d.max_wait_seconds)
    if spot and wait < runtime:
        raise ConfigError(f"{where}.max_wait_seconds", f"{wait} is below max_runtime_seconds {runtime}")
    pack_instance = _take(raw, "pack_instance_type", where, str, d.pack_instance_type)
    if not PACK_INSTANCE.match(pack_instance):
        raise ConfigError(f"{where}.pack_instance_type", f"{pack_instance!r} is not an ml.m5 or ml.c5 instance type")
    return TrainingConfig(
        instance_type=instance,
        pack_instance_type=pack_instance,
        instance_count=_positive(_take(raw, "instance_count", where, int, d.instance_count), where + ".instance_count"),
        spot=spot,
        max_wait_seconds=wait,
        max_runtime_seconds=runtime,
        volume_size_gb=_positive(_take(raw, "volume_size_gb", where, int, d.volume_size_gb), where + ".volume_size_gb"),
        max_attempts=_positive(_take(raw, "max_attempts", where, int, d.max_attempts), where + ".max_attempts"),
    )


def _endpoint(raw: Any, where: str) -> EndpointConfig:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object")
    _no_unknown(
        raw, ("instance_type", "min_instances", "max_instances", "invocations_per_instance", "capture_percent"), where
    )
    d = EndpointConfig()
    instance = _take(raw, "instance_type", where, str, d.instance_type)
    if not ENDPOINT_INSTANCE.match(instance):
        raise ConfigError(f"{where}.instance_type", f"{instance!r} is not an ml.m5 or ml.g4dn instance type")
    low = _positive(_take(raw, "min_instances", where, int, d.min_instances), where + ".min_instances")
    high = _take(raw, "max_instances", where, int, d.max_instances)
    if high < low:
        raise ConfigError(f"{where}.max_instances", f"{high} is below min_instances {low}")
    target = _take(raw, "invocations_per_instance", where, int, d.invocations_per_instance)
    capture = _take(raw, "capture_percent", where, int, d.capture_percent)
    if not 0 <= capture <= 100:
        raise ConfigError(f"{where}.capture_percent", f"{capture} is not a whole percentage from 0 to 100")
    return EndpointConfig(instance, low, high, _positive(target, where + ".invocations_per_instance"), capture)


def _batch(raw: Any, where: str) -> BatchConfig:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object")
    _no_unknown(
        raw, ("instance_type", "instance_count", "max_payload_mb", "max_concurrent_transforms", "batch_strategy"), where
    )
    d = BatchConfig()
    instance = _take(raw, "instance_type", where, str, d.instance_type)
    if not BATCH_INSTANCE.match(instance):
        raise ConfigError(f"{where}.instance_type", f"{instance!r} is not an ml.m5 or ml.g4dn instance type")
    count = _positive(_take(raw, "instance_count", where, int, d.instance_count), where + ".instance_count")
    payload = _take(raw, "max_payload_mb", where, int, d.max_payload_mb)
    if not 1 <= payload <= 100:  # MaxPayloadInMB: 0-100, and 0 only for streamed (chunked) payloads
        raise ConfigError(f"{where}.max_payload_mb", f"{payload} is not between 1 and 100")
    concurrent = _take(raw, "max_concurrent_transforms", where, int, d.max_concurrent_transforms)
    if not 0 <= concurrent <= 64:
        raise ConfigError(f"{where}.max_concurrent_transforms", f"{concurrent} is not between 0 and 64")
    if concurrent * payload > 100:  # CreateTransformJob: MaxConcurrentTransforms x MaxPayloadInMB <= 100 MB
        raise ConfigError(
            f"{where}.max_concurrent_transforms",
            f"{concurrent} x max_payload_mb {payload} is {concurrent * payload} MB; SageMaker allows at most 100",
        )
    strategy = _take(raw, "batch_strategy", where, str, d.batch_strategy)
    if strategy not in BATCH_STRATEGIES:
        raise ConfigError(f"{where}.batch_strategy", f"{strategy!r} is not one of {', '.join(BATCH_STRATEGIES)}")
    return BatchConfig(instance, count, payload, concurrent, strategy)


def _monitoring(raw: Any, where: str) -> MonitoringConfig:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object")
    _no_unknown(raw, ("every_hours", "window_hours", "namespace"), where)
    every = _take(raw, "every_hours", where, int, 24)
    if not 1 <= every <= 168:
        raise ConfigError(f"{where}.every_hours", f"{every} is not between 1 and 168 (a week)")
    window = _take(raw, "window_hours", where, int, 0)
    if not 0 <= window <= 168:
        raise ConfigError(f"{where}.window_hours", f"{window} is not between 1 and 168 (0: every_hours)")
    namespace = _take(raw, "namespace", where, str, "Imgclf")
    if not re.match(r"^[A-Za-z0-9._/#:-]{1,255}$", namespace) or namespace.startswith("AWS/"):
        raise ConfigError(f"{where}.namespace", f"{namespace!r} is not a custom CloudWatch namespace")
    return MonitoringConfig(every, window, namespace)


def _validation(raw: Any, where: str) -> ValidationConfig:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object")
    _no_unknown(raw, ("shard_mb", "shard_images", "max_concurrency"), where)
    d = ValidationConfig()
    shard_mb = _positive(_take(raw, "shard_mb", where, int, d.shard_mb), where + ".shard_mb", 64)
    if shard_mb > 8192:
        raise ConfigError(f"{where}.shard_mb", f"{shard_mb} is above 8192 (a shard must fit a 15-minute Lambda)")
    shard_images = _positive(_take(raw, "shard_images", where, int, d.shard_images), where + ".shard_images", 100)
    if shard_images > 20000:
        raise ConfigError(
            f"{where}.shard_images", f"{shard_images} is above 20000 (a shard must fit a 15-minute Lambda)"
        )
    concurrency = _take(raw, "max_concurrency", where, int, d.max_concurrency)
    if not 1 <= concurrency <= 1000:
        raise ConfigError(f"{where}.max_concurrency", f"{concurrency} is not between 1 and 1000")
    return ValidationConfig(shard_mb, shard_images, concurrency)


def check_hyperparameters(backend: str, raw: Any, where: str) -> Dict[str, str]:
    """String values of hyperparameters that config may set and that parse under the schema."""
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object of name: value")
    try:
        return check_settable(backend, raw)
    except HyperparameterError as err:
        raise ConfigError(f"{where}.{err.name}", str(err).split(": ", 1)[1]) from None


def _vpc(raw: Any, where: str) -> Optional[VpcConfig]:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object with subnet_ids and security_group_ids")
    _no_unknown(raw, ("subnet_ids", "security_group_ids"), where)
    lists: List[Tuple[str, ...]] = []
    for key, pattern in (("subnet_ids", r"^subnet-[0-9a-f]+$"), ("security_group_ids", r"^sg-[0-9a-f]+$")):
        items = raw.get(key)
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{where}.{key}", "must be a non-empty list")
        for item in items:
            if not isinstance(item, str) or not re.match(pattern, item):
                raise ConfigError(f"{where}.{key}", f"{item!r} is not an id like {pattern[2:-7]}...")
        lists.append(tuple(items))
    return VpcConfig(*lists)


def parse_stage(name: str, raw: Any) -> StageConfig:
    where = f"{CONTEXT_KEY}.{name}"
    if not re.match(r"^[a-z][a-z0-9-]{0,15}$", name):
        raise ConfigError(where, "a stage name is 1-16 characters of a-z, 0-9 and -, starting with a letter")
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object")
    known: Tuple[str, ...] = ("account", "region", "backend", "training", "endpoint", "hyperparameters", "approval")
    known += ("accuracy_threshold", "max_regression", "alert_email", "vpc", "api_auth", "api_rate_limit")
    known += ("artifact_retention_days", "validation", "batch", "monitoring")
    _no_unknown(raw, known, where)
    account = _take(raw, "account", where, str, None)
    if account is None or not re.match(r"^[0-9]{12}$", account):
        raise ConfigError(f"{where}.account", f"{account!r} is not a 12-digit AWS account id")
    region = _take(raw, "region", where, str, None)
    if region is None or not re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", region):
        raise ConfigError(f"{where}.region", f"{region!r} is not an AWS region name")
    backend = _take(raw, "backend", where, str, "mxnet")
    if backend not in BACKENDS:
        raise ConfigError(f"{where}.backend", f"{backend!r} is not one of {', '.join(BACKENDS)}")
    approval = _take(raw, "approval", where, str, "auto")
    if approval not in APPROVAL_MODES:
        raise ConfigError(f"{where}.approval", f"{approval!r} is not one of {', '.join(APPROVAL_MODES)}")
    threshold = _take(raw, "accuracy_threshold", where, float, 0.8)
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"{where}.accuracy_threshold", f"{threshold} is not between 0 and 1")
    regression = _take(raw, "max_regression", where, float, 0.0)
    if not 0.0 <= regression <= 1.0:
        raise ConfigError(f"{where}.max_regression", f"{regression} is not between 0 and 1")
    email = _take(raw, "alert_email", where, str, None)
    if email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        raise ConfigError(f"{where}.alert_email", f"{email!r} is not an e-mail address")
    auth = _take(raw, "api_auth", where, str, "iam")
    if auth not in API_AUTH:
        raise ConfigError(f"{where}.api_auth", f"{auth!r} is not one of {', '.join(API_AUTH)}")
    stage = StageConfig(
        name=name,
        account=account,
        region=region,
        backend=backend,
        training=_training(raw.get("training", {}), where + ".training"),
        endpoint=_endpoint(raw.get("endpoint", {}), where + ".endpoint"),
        validation=_validation(raw.get("validation", {}), where + ".validation"),
        batch=_batch(raw.get("batch", {}), where + ".batch"),
        monitoring=_monitoring(raw.get("monitoring", {}), where + ".monitoring"),
        hyperparameters=check_hyperparameters(backend, raw.get("hyperparameters", {}), where + ".hyperparameters"),
        approval=approval,
        accuracy_threshold=threshold,
        max_regression=regression,
        alert_email=email,
        vpc=_vpc(raw.get("vpc"), where + ".vpc"),
        api_auth=auth,
        api_rate_limit=_positive(_take(raw, "api_rate_limit", where, int, 50), where + ".api_rate_limit"),
        artifact_retention_days=_positive(
            _take(raw, "artifact_retention_days", where, int, 365), where + ".artifact_retention_days"
        ),
    )
    for scope in ("training", "processing", "inference", "batch"):
        try:
            stage.image_uri(scope)
        except ValueError as err:
            raise ConfigError(f"{where}.region", f"no {backend} {scope} container: {err}") from None
    return stage


def parse_stages(context: Any) -> List[StageConfig]:
    """Every stage under the ``imgclf:stages`` context key."""
    if not isinstance(context, dict) or not context:
        raise ConfigError(CONTEXT_KEY, "must be an object with at least one stage (see docs/deploy.md)")
    return [parse_stage(name, raw) for name, raw in context.items()]
