"""The hyperparameters of SageMaker's built-in image-classification algorithm (MXNet), with
its names, defaults and allowed values, plus the rules that tie them together."""

from __future__ import annotations

from typing import Any, Dict

from .errors import HyperparameterError
from .hyperparameters import Param, Schema

IMAGENET_LAYERS = (18, 34, 50, 101, 152, 200)
CIFAR_LAYERS = (20, 32, 44, 56, 110)
PRETRAINED_LAYERS = (18, 34, 50, 101, 152)  # the ImageNet weights that exist

SCHEMA = Schema(
    "mxnet",
    [
        Param(
            "num_classes", "int", None, "Number of output classes.", required=True, minimum=2, from_report="num_classes"
        ),
        Param(
            "num_training_samples",
            "int",
            None,
            "Number of training examples in the input dataset.",
            required=True,
            minimum=1,
            from_report="num_training_samples",
        ),
        Param(
            "augmentation_type",
            "str",
            None,
            "crop: random crop and horizontal flip; crop_color: also random hue, saturation and brightness; "
            "crop_color_transform: also random rotation, shear and aspect-ratio changes. Unset: no augmentation.",
            choices=("crop", "crop_color", "crop_color_transform"),
        ),
        Param("beta_1", "float", 0.9, "Adam: decay rate of the first-moment estimates.", minimum=0.0, maximum=1.0),
        Param("beta_2", "float", 0.999, "Adam: decay rate of the second-moment estimates.", minimum=0.0, maximum=1.0),
        Param(
            "checkpoint_frequency",
            "int",
            None,
            "Save the model every N epochs (the best epoch is always kept). Unset: only the best.",
            minimum=1,
        ),
        Param("early_stopping", "bool", False, "Stop when validation accuracy stops improving."),
        Param("early_stopping_min_epochs", "int", 10, "Epochs always run before early stopping may act.", minimum=1),
        Param("early_stopping_patience", "int", 5, "Epochs without improvement before stopping.", minimum=1),
        Param(
            "early_stopping_tolerance",
            "float",
            0.0,
            "Relative improvement of validation accuracy below which an epoch counts as no improvement.",
            minimum=0.0,
            maximum=1.0,
        ),
        Param("epochs", "int", 30, "Training epochs.", minimum=1),
        Param("eps", "float", 1e-8, "Adam and RMSProp: epsilon for numerical stability.", minimum=0.0),
        Param(
            "gamma",
            "float",
            0.9,
            "RMSProp: decay factor of the moving average of squared gradients.",
            minimum=0.0,
            maximum=1.0,
        ),
        Param("image_shape", "shape", [3, 224, 224], "Input image dimensions num_channels,height,width."),
        Param(
            "kv_store",
            "str",
            None,
            "Weight-update synchronisation in distributed training: dist_sync or dist_async. Unset: single machine.",
            choices=("dist_sync", "dist_async"),
        ),
        Param("learning_rate", "float", 0.1, "Initial learning rate.", minimum=1e-12, maximum=1.0),
        Param(
            "lr_scheduler_factor",
            "float",
            0.1,
            "Multiplies the learning rate at each lr_scheduler_step epoch.",
            minimum=0.0,
            maximum=1.0,
        ),
        Param(
            "lr_scheduler_step",
            "int_list",
            None,
            "Comma-separated epochs at which the learning rate drops, e.g. 10,20.",
            minimum=1,
        ),
        Param("mini_batch_size", "int", 32, "Images per batch (over all devices of one machine).", minimum=1),
        Param("momentum", "float", 0.9, "SGD and NAG: momentum.", minimum=0.0, maximum=1.0),
        Param("multi_label", "bool", False, "1: each image may have several labels (multi-hot), with a sigmoid loss."),
        Param("num_layers", "int", 152, "ResNet depth.", choices=IMAGENET_LAYERS + CIFAR_LAYERS),
        Param("optimizer", "str", "sgd", "Optimizer.", choices=("sgd", "adam", "rmsprop", "nag")),
        Param(
            "precision_dtype",
            "str",
            "float32",
            "float16 trains in mixed precision on GPUs.",
            choices=("float32", "float16"),
        ),
        Param(
            "resize",
            "int",
            None,
            "Shorter image side after resizing, before cropping. Required for image inputs.",
            minimum=1,
        ),
        Param("top_k", "int", None, "Also report top-k accuracy for this k.", minimum=1),
        Param("use_pretrained_model", "bool", False, "1: start from ImageNet weights (transfer learning)."),
        Param("use_weighted_loss", "bool", False, "Multi-label: weight the loss by inverse class frequency."),
        Param("weight_decay", "float", 1e-4, "L2 weight decay.", minimum=0.0, maximum=1.0),
    ],
)


def parse(raw: Dict[str, Any]) -> Dict[str, Any]:
    """Typed hyperparameters, with the built-in algorithm's cross-parameter rules enforced."""
    hp = SCHEMA.parse(raw)
    shape = hp["image_shape"]
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise HyperparameterError(
            "image_shape", "{} is not num_channels,height,width with 1 or 3 channels".format(raw.get("image_shape"))
        )
    if hp["resize"] is not None and hp["resize"] < max(shape[1:]):
        raise HyperparameterError(
            "resize",
            "{} is smaller than image_shape {}x{}: the crop would not fit".format(hp["resize"], shape[1], shape[2]),
        )
    if hp["use_pretrained_model"]:
        if hp["num_layers"] not in PRETRAINED_LAYERS:
            raise HyperparameterError(
                "use_pretrained_model",
                "ImageNet weights exist for num_layers {} only, not {}".format(
                    ", ".join(map(str, PRETRAINED_LAYERS)), hp["num_layers"]
                ),
            )
        if shape != [3, 224, 224]:
            raise HyperparameterError(
                "image_shape", "pretrained networks take 3,224,224, not {}".format(",".join(map(str, shape)))
            )
    if hp["checkpoint_frequency"] is not None and hp["checkpoint_frequency"] > hp["epochs"]:
        raise HyperparameterError(
            "checkpoint_frequency", "{} is more than epochs {}".format(hp["checkpoint_frequency"], hp["epochs"])
        )
    steps = hp["lr_scheduler_step"]
    if steps is not None and steps != sorted(set(steps)):
        raise HyperparameterError("lr_scheduler_step", "epochs {} must increase".format(raw.get("lr_scheduler_step")))
    if hp["top_k"] is not None and hp["top_k"] > hp["num_classes"]:
        raise HyperparameterError("top_k", "{} is more than num_classes {}".format(hp["top_k"], hp["num_classes"]))
    if hp["use_weighted_loss"] and not hp["multi_label"]:
        raise HyperparameterError("use_weighted_loss", "applies to multi-label training only (multi_label=1)")
    return hp
