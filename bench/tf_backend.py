"""Benchmark of the TensorFlow backend against bare TensorFlow, each peer measured in the same run.

  input:  the backend's input pipeline (tf_data.dataset: RecordIO streamed into tf.data,
          shuffle, parallel decode + resize, one-hot, batch, prefetch) vs a bare tf.data JPEG
          decode loop of the same encoded images held in memory, one epoch each
                                                                          target ratio >= 0.9
  train:  the backend's model and compile settings fed by its input pipeline vs a bare
          model.fit of the same network on the same images, decoded in memory  target >= 0.9
  serve:  per request, the handler's image check (input_fn: a full decode, for a 400 before
          the model) against the SavedModel's call (its own decode, resize and forward): the
          share of the serving time the double decode costs        measured, no target

Both sides of a comparison are built once, as training builds its datasets once and iterates
them every epoch; then they run in turn (ours, peer, ours, peer, ...) and the verdict is the
ratio of the medians (alternate.py).

Runs in .venv-tf (make bench does this):  .venv-tf/bin/python bench/tf_backend.py [--runs 5]
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
from alternate import RUNS, alternate, median, spread, verdict  # noqa: E402
from bench_data import build_rec, photo  # noqa: E402

from image_training import tf_hyperparameters  # noqa: E402
from image_training.tf_data import dataset, make_preprocess, records  # noqa: E402
from image_training.tf_train import build_model, loss_function, optimizer  # noqa: E402

CLASSES = 10


def hp(**kw: object) -> Dict[str, object]:
    return tf_hyperparameters.parse({k: str(v) for k, v in kw.items()})


def bench_input(rec: str, size: int, batch: int, runs: int) -> Dict[str, List[float]]:
    """Images/s of one epoch of each pipeline, alternated; both built before the clock starts."""
    h = hp(image_size=size, batch_size=batch)
    pairs = list(records(rec))
    encoded = tf.constant([image for image, _ in pairs])
    labels = tf.constant([label for _, label in pairs], tf.int32)
    preprocess = make_preprocess(size, "bilinear")
    start = time.perf_counter()
    ours = dataset(rec, h, CLASSES, True, batch)
    index_ms = (time.perf_counter() - start) * 1000
    bare = tf.data.Dataset.from_tensor_slices((encoded, labels))
    bare = bare.map(lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    bare = bare.batch(batch).prefetch(tf.data.AUTOTUNE)

    def epoch(data: tf.data.Dataset) -> float:
        start, seen = time.perf_counter(), 0
        for images, _ in data:
            seen += int(images.shape[0])
        return seen / (time.perf_counter() - start)

    figures = alternate({"ours": lambda: epoch(ours), "bare": lambda: epoch(bare)}, runs)
    figures["index_ms"] = [index_ms]
    return figures


def bench_train(rec: str, model_name: str, size: int, batch: int, runs: int) -> Dict[str, List[float]]:
    """Images/s of one training epoch of each side, alternated."""
    h = hp(model_name=model_name, image_size=size, batch_size=batch, use_pretrained_model=0)
    preprocess = make_preprocess(size, "bilinear")
    pairs = list(records(rec))
    count = len(pairs)
    images = tf.stack([preprocess(tf.constant(x)) for x, _ in pairs])
    targets = tf.one_hot([y for _, y in pairs], CLASSES)
    data = dataset(rec, h, CLASSES, True, batch)

    def compiled() -> tf.keras.Model:
        model = build_model(h, CLASSES, None, short_run=False)
        model.compile(optimizer=optimizer(h), loss=loss_function(h, h["label_smoothing"]), metrics=["accuracy"])
        return model

    ours_model, bare_model = compiled(), compiled()

    def ours() -> float:
        start = time.perf_counter()
        ours_model.fit(data, epochs=1, verbose=0)
        return count / (time.perf_counter() - start)

    def bare() -> float:
        start = time.perf_counter()
        bare_model.fit(images, targets, batch_size=batch, epochs=1, shuffle=True, verbose=0)
        return count / (time.perf_counter() - start)

    return alternate({"ours": ours, "bare": bare}, runs)  # the warm-up epoch traces the step functions


def bench_serve(model_name: str, size: int, requests: int, runs: int) -> Dict[str, List[float]]:
    """p50 milliseconds over ``requests`` calls of the image check and of the SavedModel call,
    alternated ``runs`` times."""
    import tempfile

    from image_training import tf_inference
    from image_training.tf_train import export

    h = hp(model_name=model_name, image_size=size, use_pretrained_model=0)
    folder = tempfile.mkdtemp(prefix="imgclf-bench-model-")
    model = build_model(h, CLASSES, None, short_run=False)
    export(model, folder, h, [str(i) for i in range(CLASSES)], {"accuracy": 0.0})
    loaded = tf_inference.model_fn(folder)
    body = photo(size, 1)

    def p50(call: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            samples = []
            for _ in range(requests):
                start = time.perf_counter()
                call()
                samples.append(time.perf_counter() - start)
            return float(np.median(samples)) * 1000

        return run

    return alternate(
        {
            "check_ms": p50(lambda: tf_inference.input_fn(body, "image/jpeg")),
            "predict_ms": p50(lambda: tf_inference.predict_fn(body, loaded)),
        },
        runs,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-images", type=int, default=4000)
    parser.add_argument("--train-images", type=int, default=640)
    parser.add_argument("--model", default="mobilenet_v3_small", choices=sorted(tf_hyperparameters.MODELS))
    parser.add_argument("--runs", type=int, default=RUNS, help="alternated runs of each side (>= 5)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--only", choices=("input", "train", "serve"), help="run one comparison")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    folder = str(ROOT / ".bench")
    os.makedirs(folder, exist_ok=True)
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}, TensorFlow {tf.__version__})")
    verdicts: List[str] = []
    if args.only in (None, "input"):
        rec = build_rec(folder, 160, args.input_images, CLASSES, "bench-tf")
        inp = bench_input(rec, 128, 64, args.runs)
        print(f"input  (160px JPEG -> 128x128, batch 64; the dataset built in {inp['index_ms'][0]:.0f} ms)")
        print(f"  ours              median {median(inp['ours']):7,.0f} img/s  {spread(inp['ours'])}")
        print(f"  bare tf.data loop median {median(inp['bare']):7,.0f} img/s  {spread(inp['bare'])}")
        ratio = median(inp["ours"]) / median(inp["bare"])
        verdicts.append(verdict("input: images/s vs a bare tf.data loop", ratio, 0.9))
    if args.only in (None, "train"):
        rec = build_rec(folder, 80, args.train_images, CLASSES, "bench-tf")
        tr = bench_train(rec, args.model, 64, 32, args.runs)
        print(f"train  ({args.model} 64x64, batch 32, adam, {args.train_images} images an epoch)")
        print(f"  ours              median {median(tr['ours']):7,.0f} img/s  {spread(tr['ours'])}")
        print(f"  bare model.fit    median {median(tr['bare']):7,.0f} img/s  {spread(tr['bare'])}")
        verdicts.append(verdict("train: images/s vs a bare model.fit", median(tr["ours"]) / median(tr["bare"]), 0.9))
    if args.only in (None, "serve"):
        sv = bench_serve("mobilenet_v2", 224, args.requests, args.runs)
        check, predict = median(sv["check_ms"]), median(sv["predict_ms"])
        print(f"serve  (mobilenet_v2 224x224, one 224px JPEG, p50 of {args.requests} calls a run)")
        print(f"  input_fn check    median {check:7.2f} ms     {spread(sv['check_ms'], '{:.2f}')}")
        print(f"  SavedModel call   median {predict:7.2f} ms     {spread(sv['predict_ms'], '{:.2f}')}")
        share = check / (check + predict)
        verdicts.append(f"{'serve: share of the serving time in the image check':<58} {share:6.1%}  (measured)")
    print(f"\nmedians of {args.runs} alternated runs (load average at the end: {os.getloadavg()[0]:.2f})")
    for line in verdicts:
        print("  " + line)


if __name__ == "__main__":
    main()
