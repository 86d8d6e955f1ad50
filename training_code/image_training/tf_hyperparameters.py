"""The hyperparameters of SageMaker's "Image Classification - TensorFlow", with its names and
defaults, plus ``model_name``, ``image_size`` and ``use_pretrained_model`` (see docs)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from .errors import HyperparameterError
from .hyperparameters import Param, Schema

# keras.applications builders by snake_case name: (builder, native input size)
MODELS: Dict[str, Tuple[str, int]] = {
    "mobilenet_v2": ("MobileNetV2", 224),
    "mobilenet_v3_small": ("MobileNetV3Small", 224),
    "mobilenet_v3_large": ("MobileNetV3Large", 224),
    "inception_v3": ("InceptionV3", 299),
    "resnet50": ("ResNet50", 224),
    "resnet101": ("ResNet101", 224),
    "resnet152": ("ResNet152", 224),
    "resnet50_v2": ("ResNet50V2", 224),
    "resnet101_v2": ("ResNet101V2", 224),
    "resnet152_v2": ("ResNet152V2", 224),
    **{
        f"efficientnet_b{i}": (f"EfficientNetB{i}", size)
        for i, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))
    },
    "efficientnet_v2_b0": ("EfficientNetV2B0", 224),
    "efficientnet_v2_b1": ("EfficientNetV2B1", 240),
    "efficientnet_v2_b2": ("EfficientNetV2B2", 260),
    "efficientnet_v2_b3": ("EfficientNetV2B3", 300),
    "efficientnet_v2_s": ("EfficientNetV2S", 384),
    "efficientnet_v2_m": ("EfficientNetV2M", 480),
    "efficientnet_v2_l": ("EfficientNetV2L", 480),
}

# the smallest input some keras.applications networks accept (the others: image_size's minimum)
MIN_IMAGE_SIZE = {"inception_v3": 75}

SCHEMA = Schema(
    "tensorflow",
    [
        Param("model_name", "str", "mobilenet_v2", "keras.applications network.", choices=tuple(sorted(MODELS))),
        Param("image_size", "int", None, "Square input size in pixels. Unset: the network's native size.", minimum=32),
        Param(
            "use_pretrained_model",
            "bool",
            True,
            "1: ImageNet weights (pretrained channel, else Keras' download); 0: from scratch.",
        ),
        Param(
            "num_classes",
            "int",
            None,
            "Number of classes. Filled by the workflow from the validation report.",
            minimum=2,
            from_report="num_classes",
        ),
        Param("augmentation", "bool", False, "Random flip, rotation and zoom of training images."),
        Param(
            "augmentation_random_flip",
            "str",
            "horizontal_and_vertical",
            "Flips when augmentation is on.",
            choices=("horizontal_and_vertical", "horizontal", "vertical", "None"),
        ),
        Param(
            "augmentation_random_rotation",
            "float",
            0.2,
            "Rotation range, as a fraction of 2*pi.",
            minimum=0.0,
            maximum=1.0,
        ),
        Param("augmentation_random_zoom", "float", 0.1, "Zoom range, as a fraction.", minimum=0.0, maximum=1.0),
        Param("batch_size", "int", 32, "Images per batch.", minimum=1),
        Param("beta_1", "float", 0.9, "Adam: first-moment decay.", minimum=0.0, maximum=1.0),
        Param("beta_2", "float", 0.999, "Adam: second-moment decay.", minimum=0.0, maximum=1.0),
        Param("binary_mode", "bool", False, "Two classes with a single sigmoid output."),
        Param("dropout_rate", "float", 0.2, "Dropout before the top layer.", minimum=0.0, maximum=1.0),
        Param("early_stopping", "bool", False, "Stop when validation loss stops improving."),
        Param(
            "early_stopping_min_delta",
            "float",
            0.0,
            "Smallest improvement of the validation loss that counts.",
            minimum=0.0,
        ),
        Param("early_stopping_patience", "int", 5, "Epochs without improvement before stopping.", minimum=1),
        Param("epochs", "int", 3, "Training epochs.", minimum=1),
        Param("epsilon", "float", 1e-7, "Adam, RMSProp, Adagrad, Adadelta: epsilon.", minimum=0.0),
        Param(
            "eval_metric",
            "str",
            "accuracy",
            "Metric reported on validation.",
            choices=("accuracy", "precision", "recall", "auc"),
        ),
        Param(
            "image_resize_interpolation",
            "str",
            "bilinear",
            "Resize interpolation.",
            choices=("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic"),
        ),
        Param("initial_accumulator_value", "float", 0.0001, "Adagrad: initial accumulator value.", minimum=0.0),
        Param("label_smoothing", "float", 0.1, "Label smoothing of the cross-entropy loss.", minimum=0.0, maximum=1.0),
        Param("learning_rate", "float", 0.001, "Learning rate.", minimum=1e-12, maximum=1.0),
        Param("momentum", "float", 0.9, "SGD, Nesterov and RMSProp: momentum.", minimum=0.0, maximum=1.0),
        Param(
            "optimizer",
            "str",
            "adam",
            "Optimizer.",
            choices=("adam", "sgd", "nesterov", "rmsprop", "adagrad", "adadelta"),
        ),
        Param("regularizers_l2", "float", 0.0001, "L2 regularisation of the top layer.", minimum=0.0),
        Param(
            "reinitialize_top_layer",
            "str",
            "Auto",
            "Incremental training: start a new top layer (Auto: if the classes changed).",
            choices=("Auto", "True", "False"),
        ),
        Param("rho", "float", 0.95, "Adadelta and RMSProp: decay.", minimum=0.0, maximum=1.0),
        Param("train_only_top_layer", "bool", False, "1: freeze the pretrained network, train the top layer only."),
        Param(
            "validation_split_ratio",
            "float",
            0.2,
            "Share of train held out when there is no validation channel.",
            minimum=0.0,
            maximum=0.9,
        ),
    ],
)


def parse(raw: Dict[str, Any]) -> Dict[str, Any]:
    """Typed hyperparameters, with the rules that tie them together."""
    hp = SCHEMA.parse(raw)
    if hp["train_only_top_layer"] and not hp["use_pretrained_model"]:
        raise HyperparameterError(
            "train_only_top_layer", "needs use_pretrained_model=1: a random network has nothing to keep"
        )
    hp["image_size"] = hp["image_size"] or MODELS[hp["model_name"]][1]
    smallest = MIN_IMAGE_SIZE.get(hp["model_name"], 0)
    if hp["image_size"] < smallest:
        raise HyperparameterError("image_size", f"{hp['model_name']} needs at least {smallest} pixels")
    return hp
