"""Benchmark of the MXNet backend against bare MXNet, each peer measured in the same run.

  input:  the backend's training input (record_iter + split over devices) vs a bare
          mx.io.ImageRecordIter loop with the same options            target ratio >= 0.9
  train:  the backend's train_step (CIFAR ResNet-20 or ResNet-18 at 32x32, batch 64, SGD)
          vs a bare hybridized Gluon loop of the same network and batch  target ratio >= 0.95
  serve:  imgclf serve (HTTP, decode, preprocess, forward) p50 latency vs the same
          preprocess + forward called in-process                    target overhead <= 2 ms

Each comparison runs its two sides in turn (ours, peer, ours, peer, ...) and compares their
medians (alternate.py).

Runs in .venv-mxnet (make bench does this):  .venv-mxnet/bin/python bench/mxnet_backend.py [--runs 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_code"))

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from alternate import RUNS, alternate, median, spread, verdict  # noqa: E402
from bench_data import build_rec, photo  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from image_training import mxnet_hyperparameters  # noqa: E402
from image_training.mxnet_models import resnet  # noqa: E402
from image_training.mxnet_train import (  # noqa: E402
    NORMALIZATION,
    Task,
    export,
    forward_batches,
    optimizer_params,
    record_iter,
    train_step,
)
from image_training.serving import preprocess  # noqa: E402


def hp(**kw: object) -> Dict[str, object]:
    raw = {"num_classes": "10", "num_training_samples": "4096"}
    raw.update({k: str(v) for k, v in kw.items()})
    return mxnet_hyperparameters.parse(raw)


def bench_input(rec: str, images: int, runs: int) -> Dict[str, List[float]]:
    h = hp(image_shape="3,224,224", resize=256, mini_batch_size=64, augmentation_type="crop")
    contexts = [mx.cpu()]

    def ours() -> float:
        it = record_iter(rec, rec[:-4] + ".idx", h, True, 1)
        start, seen = time.perf_counter(), 0
        while seen < images:
            for batch in it:
                xs, _ = forward_batches(None, batch, contexts, "float32")  # type: ignore[arg-type]
                xs[0].wait_to_read()
                seen += batch.data[0].shape[0]
                if seen >= images:
                    break
            it.reset()
        return seen / (time.perf_counter() - start)

    def bare() -> float:
        it = mx.io.ImageRecordIter(
            path_imgrec=rec,
            path_imgidx=rec[:-4] + ".idx",
            data_shape=(3, 224, 224),
            batch_size=64,
            shuffle=True,
            rand_crop=True,
            rand_mirror=True,
            resize=256,
            preprocess_threads=os.cpu_count() or 1,
            **NORMALIZATION,
        )
        start, seen = time.perf_counter(), 0
        while seen < images:
            for batch in it:
                batch.data[0].wait_to_read()
                seen += batch.data[0].shape[0]
                if seen >= images:
                    break
            it.reset()
        return seen / (time.perf_counter() - start)

    return alternate({"ours": ours, "bare": bare}, runs)  # the warm-up: page cache and decoders


def bench_train(rec: str, batches: int, depth: int, runs: int) -> Dict[str, List[float]]:
    h = hp(image_shape="3,32,32", mini_batch_size=64, num_layers=depth, learning_rate=0.05)
    contexts = [mx.cpu()]
    it = record_iter(rec, rec[:-4] + ".idx", h, True, 1)
    data = [it.next() for _ in range(8)]  # the same in-memory batches for both loops

    def ours() -> float:
        net = resnet(depth, 10)
        net.initialize(mx.init.Xavier(), ctx=contexts)
        net.hybridize(static_alloc=True, static_shape=True)
        name, params = optimizer_params(h, 64)
        trainer = gluon.Trainer(net.collect_params(), name, params, kvstore="device")
        task = Task(h, {}, 4096)
        train_step(net, trainer, task, data[0], contexts, "float32", None)
        start = time.perf_counter()
        for i in range(batches):
            train_step(net, trainer, task, data[i % len(data)], contexts, "float32", None)
        mx.nd.waitall()
        return batches * 64 / (time.perf_counter() - start)

    def bare() -> float:
        net = resnet(depth, 10)
        net.initialize(mx.init.Xavier(), ctx=mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-4})
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        metric = mx.metric.Accuracy()

        def step(batch: mx.io.DataBatch) -> None:
            x, y = batch.data[0].as_in_context(mx.cpu()), batch.label[0].as_in_context(mx.cpu())
            with autograd.record():
                out = net(x)
                loss = loss_fn(out, y)
            loss.backward()
            trainer.step(64)
            metric.update([y], [out])

        step(data[0])
        start = time.perf_counter()
        for i in range(batches):
            step(data[i % len(data)])
        mx.nd.waitall()
        return batches * 64 / (time.perf_counter() - start)

    return alternate({"ours": ours, "bare": bare}, runs, warm=False)  # each run warms its own network


def bench_serve(requests: int, runs: int) -> Dict[str, List[float]]:
    """p50 milliseconds of ``requests`` calls, in-process and over HTTP, alternated ``runs`` times;
    also the p99 and requests/s of all the HTTP calls together."""
    work = tempfile.mkdtemp(prefix="imgclf-bench-")
    h = hp(image_shape="3,32,32", resize=32, num_layers=20, mini_batch_size=1)
    net = resnet(20, 10)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    net(mx.nd.zeros((1, 3, 32, 32)))
    model_dir = os.path.join(work, "model")
    export(net, model_dir, 0, h, [str(i) for i in range(10)], {"accuracy": 0.0})
    body = photo(48, 1)

    sys.path.insert(0, str(ROOT))
    from app.local_serving import ModelServer  # noqa: E402  (the stdlib-only launcher)

    info = json.load(open(os.path.join(model_dir, "model-info.json")))
    served = gluon.SymbolBlock.imports(
        os.path.join(model_dir, info["symbol"]), ["data"], os.path.join(model_dir, info["params"])
    )
    served.hybridize(static_alloc=True)

    def in_process() -> float:
        x = preprocess(body, info["image_shape"], info["resize"], info["mean_rgb"], info["std_rgb"])
        return mx.nd.softmax(served(mx.nd.array(x))).asnumpy()[0].sum()

    server = ModelServer(model_dir)
    server.start()
    host, port = server.url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port))  # kept alive, as endpoint clients do
    headers = {"Content-Type": "image/jpeg", "Accept": "application/json"}

    def call() -> int:
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    samples: Dict[str, List[float]] = {"direct": [], "http": []}

    def p50(name: str, call: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            times = []
            for _ in range(requests):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            samples[name] += times
            return float(np.percentile(times, 50)) * 1000

        return run

    def checked() -> None:
        assert call() == 200

    try:
        for _ in range(20):
            in_process()
            call()
        figures = alternate({"direct": p50("direct", in_process), "http": p50("http", checked)}, runs, warm=False)
    finally:
        connection.close()
        server.stop()
    figures["direct_p99"] = [float(np.percentile(samples["direct"], 99)) * 1000]
    figures["http_p99"] = [float(np.percentile(samples["http"], 99)) * 1000]
    figures["http_rps"] = [len(samples["http"]) / sum(samples["http"])]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-images", type=int, default=3000)
    parser.add_argument("--train-batches", type=int, default=40)
    parser.add_argument("--depth", type=int, default=20, choices=(18, 20))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=RUNS, help="alternated runs of each side (>= 5)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    folder = str(ROOT / ".bench")
    os.makedirs(folder, exist_ok=True)
    big = build_rec(folder, 256, 1000)
    small = build_rec(folder, 32, 4096)
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    verdicts = []
    inp = bench_input(big, args.input_images, args.runs)
    print("input  (224x224 random crop + mirror, batch 64)")
    print(f"  ours                  median {median(inp['ours']):7,.0f} img/s  {spread(inp['ours'])}")
    print(f"  bare ImageRecordIter  median {median(inp['bare']):7,.0f} img/s  {spread(inp['bare'])}")
    ratio = median(inp["ours"]) / median(inp["bare"])
    verdicts.append(verdict("input: images/s vs a bare ImageRecordIter", ratio, 0.9))
    tr = bench_train(small, args.train_batches, args.depth, args.runs)
    print(f"train  (ResNet-{args.depth} 32x32, batch 64, SGD)")
    print(f"  ours (train_step)     median {median(tr['ours']):7,.0f} img/s  {spread(tr['ours'])}")
    print(f"  bare Gluon loop       median {median(tr['bare']):7,.0f} img/s  {spread(tr['bare'])}")
    verdicts.append(verdict("train: images/s vs a bare Gluon loop", median(tr["ours"]) / median(tr["bare"]), 0.95))
    sv = bench_serve(args.requests, args.runs)
    http, direct = median(sv["http"]), median(sv["direct"])
    print(f"serve  (ResNet-20, one 48x48 JPEG a request; p50 of {args.requests} calls a run)")
    print(
        f"  imgclf serve (HTTP)   median p50 {http:5.2f} ms  {spread(sv['http'], '{:.2f}')}"
        f"  p99 {sv['http_p99'][0]:.2f} ms, {sv['http_rps'][0]:.0f} req/s"
    )
    print(
        f"  in-process            median p50 {direct:5.2f} ms  {spread(sv['direct'], '{:.2f}')}  p99 {sv['direct_p99'][0]:.2f} ms"
    )
    overhead = http - direct
    verdicts.append(
        "{:<58} {:6.2f} ms (target <= 2 ms: {})".format(
            "serve: server overhead at p50", overhead, "met" if overhead <= 2 else "NOT MET"
        )
    )
    print(f"\nmedians of {args.runs} alternated runs (load average at the end: {os.getloadavg()[0]:.2f})")
    for line in verdicts:
        print("  " + line)


if __name__ == "__main__":
    main()
