"""The backend registry: one record per training backend, the way timm registers models. Every
fact about a backend that the workflow, the constructs and the local pipeline need lives here;
a third backend is one more record (and its training code)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

if TYPE_CHECKING:  # the schemas belong to the training code, which parses them in the container
    from image_training.hyperparameters import Schema

# image scope ("training", "inference") -> (framework version, Python version or None)
ContainerVersions = Mapping[str, Tuple[str, Optional[str]]]
# a run's hyperparameters as the training job reads them: typed by the schema, defaults filled
Values = Mapping[str, Any]


def _mxnet_data(values: Values) -> Dict[str, Any]:
    shape = values["image_shape"]
    return {
        "image_shape": (shape[0], shape[1], shape[2]) if len(shape) == 3 else None,
        "resize": values["resize"],
        "mini_batch_size": values["mini_batch_size"],
        "multi_label": bool(values["multi_label"]),
    }


def _tensorflow_data(values: Values) -> Dict[str, Any]:
    from image_training.tf_hyperparameters import MODELS

    size = values["image_size"] or MODELS[values["model_name"]][1]
    # the TensorFlow job batches whatever a channel holds (a last batch may be short)
    return {"image_shape": (3, size, size), "resize": size, "mini_batch_size": 1, "multi_label": None}


class Backend(NamedTuple):
    name: str
    program: str  # the script-mode entry point at the root of training_code/
    schema_module: str  # the module whose SCHEMA is the backend's hyperparameter table
    containers: ContainerVersions  # the AWS framework containers the code is pinned to
    distribution_flag: str  # the script-mode key that starts the framework's distributed engine
    metric_definitions: Tuple[Mapping[str, str], ...]  # CloudWatch metrics from the job's log lines
    serving_environment: Mapping[str, str]  # what the serving container needs (besides the region)
    data_options: Callable[[Values], Dict[str, Any]]  # typed hyperparameters -> what validation expects
    split_ratio: Optional[str]  # the hyperparameter that holds out part of train, if the job can
    local_defaults: Mapping[str, str]  # `imgclf pipeline run`'s small CPU configuration
    local_fast: Mapping[str, str]  # `imgclf demo --fast`: a few epochs on top of local_defaults
    local_environment: str  # the virtual environment that plays the container on this machine

    def schema(self) -> Schema:
        return importlib.import_module(self.schema_module).SCHEMA  # type: ignore[no-any-return]

    def inference_environment(self, region: str) -> Dict[str, str]:
        return {**self.serving_environment, "SAGEMAKER_REGION": region}


MXNET = Backend(
    name="mxnet",
    program="train_mxnet.py",
    schema_module="image_training.mxnet_hyperparameters",
    containers={"training": ("1.9.0", "py38"), "inference": ("1.9.0", "py38")},
    # MXNet's parameter servers on jobs of several instances
    distribution_flag="sagemaker_parameter_server_enabled",
    metric_definitions=(  # the regexes of the AWS built-in algorithm
        {"Name": "train:accuracy", "Regex": r"Epoch\[\d+\] Train-accuracy=([0-9.]+)"},
        {"Name": "validation:accuracy", "Regex": r"Epoch\[\d+\] Validation-accuracy=([0-9.]+)"},
    ),
    serving_environment={  # the MXNet serving container runs code/inference.py from model.tar.gz
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    },
    data_options=_mxnet_data,
    split_ratio=None,
    # a small CIFAR-style network for the CPU
    local_defaults={
        "num_layers": "20",
        "image_shape": "3,32,32",
        "resize": "32",
        "epochs": "20",
        "mini_batch_size": "32",
        "learning_rate": "0.05",
        "lr_scheduler_step": "12,17",
    },
    local_fast={"epochs": "3", "lr_scheduler_step": "2"},
    local_environment=".venv-mxnet",
)

TENSORFLOW = Backend(
    name="tensorflow",
    program="train_tensorflow.py",
    schema_module="image_training.tf_hyperparameters",
    containers={"training": ("2.21", "py312"), "inference": ("2.20", None)},
    # TF_CONFIG for MultiWorkerMirroredStrategy on jobs of several instances
    distribution_flag="sagemaker_multi_worker_mirrored_strategy_enabled",
    metric_definitions=(
        {"Name": "train:accuracy", "Regex": r"- accuracy: ([0-9.]+)"},
        {"Name": "train:loss", "Regex": r"- loss: ([0-9.]+)"},
        {"Name": "validation:accuracy", "Regex": r"val_accuracy: ([0-9.]+)"},
        {"Name": "validation:loss", "Regex": r"val_loss: ([0-9.]+)"},
    ),
    serving_environment={"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": "model"},
    data_options=_tensorflow_data,
    split_ratio="validation_split_ratio",
    # MobileNetV2 from scratch at 32x32 (no ImageNet download needed)
    local_defaults={
        "model_name": "mobilenet_v2",
        "use_pretrained_model": "0",
        "image_size": "32",
        "epochs": "15",
        "batch_size": "32",
    },
    local_fast={"epochs": "3"},
    local_environment=".venv-tf",
)

REGISTRY: Dict[str, Backend] = {b.name: b for b in (MXNET, TENSORFLOW)}
BACKENDS = tuple(REGISTRY)


def backend(name: str) -> Backend:
    """The record of backend ``name``; ValueError names the known ones."""
    if name not in REGISTRY:
        raise ValueError("unknown backend {!r} (known: {})".format(name, ", ".join(BACKENDS)))
    return REGISTRY[name]


def schema_for(name: str) -> Schema:
    return backend(name).schema()


def metric_definitions(name: str) -> List[Dict[str, str]]:
    """The ``MetricDefinitions`` of a CreateTrainingJob request."""
    return [dict(d) for d in backend(name).metric_definitions]
