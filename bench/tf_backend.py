"""Benchmark of the TensorFlow backend against bare TensorFlow, each peer measured in the same run.

  input:  the backend's input pipeline (tf_data.dataset: RecordIO streamed into tf.data, parallel
          decode + resize, one-hot, batch, prefetch) vs a bare tf.data JPEG decode loop of the
          same encoded images held in memory                               target ratio >= 0.9
  train:  the backend's model and compile settings fed by its input pipeline vs a bare
          model.fit of the same network on the same images, decoded in memory  target >= 0.9
  serve:  per request, the handler's image check (input_fn: a full decode, for a 400 before
          the model) against the SavedModel's call (its own decode, resize and forward): the
          share of the serving time the double decode costs        measured, no target

Runs in .venv-tf (make bench does this):  .venv-tf/bin/python bench/tf_backend.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_code"))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_data import build_rec, photo  # noqa: E402

from image_training import tf_hyperparameters  # noqa: E402
from image_training.tf_data import dataset, make_preprocess, records  # noqa: E402
from image_training.tf_train import build_model, loss_function, optimizer  # noqa: E402

CLASSES = 10


def hp(**kw: object) -> Dict[str, object]:
    return tf_hyperparameters.parse({k: str(v) for k, v in kw.items()})


def best_rate(run: Callable[[], float], repeats: int) -> float:
    return max(run() for _ in range(repeats))


def bench_input(rec: str, size: int, batch: int, repeats: int) -> Dict[str, float]:
    h = hp(image_size=size, batch_size=batch)
    encoded: List[bytes] = []
    labels: List[int] = []
    for image, label in records(rec):
        encoded.append(image)
        labels.append(label)
    preprocess = make_preprocess(size, "bilinear")

    def rate(data: tf.data.Dataset) -> float:
        start, seen = time.perf_counter(), 0
        for images, _ in data:
            seen += int(images.shape[0])
        return seen / (time.perf_counter() - start)

    def ours() -> float:
        return rate(dataset(rec, h, CLASSES, True, batch))

    def bare() -> float:
        data = tf.data.Dataset.from_tensor_slices((encoded, labels))
        data = data.map(lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        return rate(data.batch(batch).prefetch(tf.data.AUTOTUNE))

    ours(), bare()  # warm the page cache and tf.function traces
    results = {"ours": 0.0, "bare": 0.0}
    for _ in range(repeats):  # alternate, so that noise hits both alike
        results["ours"] = max(results["ours"], ours())
        results["bare"] = max(results["bare"], bare())
    return results


def bench_train(rec: str, model_name: str, size: int, batch: int, repeats: int) -> Dict[str, float]:
    h = hp(model_name=model_name, image_size=size, batch_size=batch, use_pretrained_model=0)
    count = sum(1 for _ in records(rec))
    preprocess = make_preprocess(size, "bilinear")
    pairs = list(records(rec))
    images = tf.stack([preprocess(tf.constant(x)) for x, _ in pairs])
    targets = tf.one_hot([y for _, y in pairs], CLASSES)

    def compiled() -> tf.keras.Model:
        model = build_model(h, CLASSES, None, short_run=False)
        model.compile(optimizer=optimizer(h), loss=loss_function(h, h["label_smoothing"]), metrics=["accuracy"])
        return model

    ours_model, bare_model = compiled(), compiled()

    def ours() -> float:
        start = time.perf_counter()
        ours_model.fit(dataset(rec, h, CLASSES, True, batch), epochs=1, verbose=0)
        return count / (time.perf_counter() - start)

    def bare() -> float:
        start = time.perf_counter()
        bare_model.fit(images, targets, batch_size=batch, epochs=1, shuffle=True, verbose=0)
        return count / (time.perf_counter() - start)

    ours(), bare()  # the first epoch traces the step functions
    results = {"ours": 0.0, "bare": 0.0}
    for _ in range(repeats):
        results["ours"] = max(results["ours"], ours())
        results["bare"] = max(results["bare"], bare())
    return results


def bench_serve(model_name: str, size: int, requests: int) -> Dict[str, float]:
    import tempfile

    from image_training import tf_inference
    from image_training.tf_train import export

    h = hp(model_name=model_name, image_size=size, use_pretrained_model=0)
    folder = tempfile.mkdtemp(prefix="imgclf-bench-model-")
    model = build_model(h, CLASSES, None, short_run=False)
    export(model, folder, h, [str(i) for i in range(CLASSES)], {"accuracy": 0.0})
    loaded = tf_inference.model_fn(folder)
    body = photo(size, 1)

    def timed(call: Callable[[], object]) -> float:
        call()  # warm
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
        return float(np.median(samples)) * 1000

    check = timed(lambda: tf_inference.input_fn(body, "image/jpeg"))
    predict = timed(lambda: tf_inference.predict_fn(body, loaded))
    return {"check_ms": check, "predict_ms": predict}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-images", type=int, default=4000)
    parser.add_argument("--train-images", type=int, default=640)
    parser.add_argument("--model", default="mobilenet_v3_small", choices=sorted(tf_hyperparameters.MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    folder = str(ROOT / ".bench")
    os.makedirs(folder, exist_ok=True)
    inp = bench_input(build_rec(folder, 160, args.input_images, CLASSES, "bench-tf"), 128, 64, args.repeats)
    print(
        "input  (160px JPEG -> 128x128, batch 64):    ours {:7.0f} img/s, bare tf.data loop {:7.0f} img/s".format(
            inp["ours"], inp["bare"]
        )
    )
    tr = bench_train(build_rec(folder, 80, args.train_images, CLASSES, "bench-tf"), args.model, 64, 32, args.repeats)
    print(
        "train  ({} 64x64, batch 32, adam): ours {:7.0f} img/s, bare model.fit    {:7.0f} img/s".format(
            args.model, tr["ours"], tr["bare"]
        )
    )
    sv = bench_serve("mobilenet_v2", 224, args.requests)
    print(
        "serve  (mobilenet_v2 224x224, one 224px JPEG): input_fn check p50 {:.2f} ms, SavedModel call p50 {:.2f} ms".format(
            sv["check_ms"], sv["predict_ms"]
        )
    )
    print(f"\nratios (cores: {os.cpu_count()}, TensorFlow {tf.__version__})")
    for name, value, target in (
        ("input throughput vs bare tf.data loop", inp["ours"] / inp["bare"], ">= 0.9"),
        ("training images/s vs bare model.fit", tr["ours"] / tr["bare"], ">= 0.9"),
    ):
        print(f"  {name:<44} {value:5.2f}x  (target {target})")
    share = sv["check_ms"] / (sv["check_ms"] + sv["predict_ms"])
    print(f"  {'share of serving time in the image check':<44} {share:5.1%}  (measured)")


if __name__ == "__main__":
    main()
