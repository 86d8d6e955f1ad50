"""The TensorFlow backend's model artifact: a SavedModel whose serving signature takes encoded
image bytes (preprocessing inside the model), the Keras weights, labels, evaluation and code/."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf

from . import baseline as drift_baseline
from .evaluation import write_evaluation
from .serving import copy_inference_code
from .tf_data import make_preprocess
from .tf_incremental import KERAS_WEIGHTS


def export(
    model: tf.keras.Model,
    folder: str,
    hp: Dict[str, Any],
    names: List[str],
    report: Dict[str, Any],
    baseline: Optional[Dict[str, Any]] = None,
) -> None:
    """SavedModel in 1/ with a signature on encoded bytes, the Keras weights (for incremental
    training), labels, evaluation and code/; and baseline.json (image_training.baseline) when
    given, for ``imgclf monitor``."""
    preprocess = make_preprocess(hp["image_size"], hp["image_resize_interpolation"])
    binary = hp["binary_mode"]

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes: tf.Tensor) -> Dict[str, tf.Tensor]:
            images = tf.map_fn(preprocess, image_bytes, fn_output_signature=tf.float32)
            scores = tf.cast(self.model(images, training=False), tf.float32)
            if binary:  # the same response as any two-class model: [P(class 0), P(class 1)]
                scores = tf.concat([1.0 - scores, scores], axis=1)
            return {"probabilities": scores}

    module = Serving()
    tf.saved_model.save(module, os.path.join(folder, "1"), signatures={"serving_default": module.serve})
    os.makedirs(os.path.join(folder, os.path.dirname(KERAS_WEIGHTS)), exist_ok=True)
    model.save_weights(os.path.join(folder, KERAS_WEIGHTS))
    info = {
        "backend": "tensorflow",
        "saved_model": "1",
        "labels": names,
        "image_size": hp["image_size"],
        "top_k": min(5, len(names)),
        "multi_label": False,
    }
    for name, content in (("model-info.json", info), ("labels.json", names), ("hyperparameters.json", hp)):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(content, f, indent=2)
    copy_inference_code(os.path.join(folder, "code"), "tf_inference.py")
    with open(os.path.join(folder, "code", "inference.py"), "w") as f:
        f.write(
            '"""Inference handlers of this model (imgclf): TF Serving\'s and model_fn/... for imgclf serve."""\n'
            "from image_training.tf_inference import input_fn, input_handler, model_fn, output_fn, output_handler, predict_fn  # noqa: F401\n"
        )
    write_evaluation(report, folder)
    if baseline is not None:
        drift_baseline.write(baseline, folder)
