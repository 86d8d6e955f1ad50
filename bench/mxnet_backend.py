"""Benchmark of the MXNet backend against bare MXNet, each peer measured in the same run.

  input:  the backend's training input (record_iter + split over devices) vs a bare
          mx.io.ImageRecordIter loop with the same options            target ratio >= 0.9
  train:  the backend's train_step (CIFAR ResNet-20 or ResNet-18 at 32x32, batch 64, SGD)
          vs a bare hybridized Gluon loop of the same network and batch  target ratio >= 0.95
  serve:  imgclf serve (HTTP, decode, preprocess, forward) p50 latency vs the same
          preprocess + forward called in-process                    target overhead <= 2 ms

Runs in .venv-mxnet (make bench does this):  .venv-mxnet/bin/python bench/mxnet_backend.py
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
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_code"))

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
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


def bench_input(rec: str, images: int) -> Dict[str, float]:
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

    ours(), bare()  # warm up the page cache and the decoders
    a, b = [], []
    for _ in range(2):  # interleaved, so both see the same machine
        a.append(ours())
        b.append(bare())
    return {"ours": max(a), "bare": max(b)}


def bench_train(rec: str, batches: int, depth: int) -> Dict[str, float]:
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

    a, b = [], []
    for _ in range(2):  # interleaved, so both see the same machine
        a.append(ours())
        b.append(bare())
    return {"ours": max(a), "bare": max(b)}


def bench_serve(requests: int) -> Dict[str, float]:
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

    for _ in range(20):
        in_process()
    direct: List[float] = []
    for _ in range(requests):
        start = time.perf_counter()
        in_process()
        direct.append(time.perf_counter() - start)
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

    try:
        for _ in range(20):
            call()
        http_times: List[float] = []
        for _ in range(requests):
            start = time.perf_counter()
            assert call() == 200
            http_times.append(time.perf_counter() - start)
    finally:
        connection.close()
        server.stop()
    d, h50 = np.array(direct) * 1000, np.array(http_times) * 1000
    return {
        "direct_p50": float(np.percentile(d, 50)),
        "direct_p99": float(np.percentile(d, 99)),
        "http_p50": float(np.percentile(h50, 50)),
        "http_p99": float(np.percentile(h50, 99)),
        "http_rps": float(len(http_times) / sum(http_times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-images", type=int, default=3000)
    parser.add_argument("--train-batches", type=int, default=40)
    parser.add_argument("--depth", type=int, default=20, choices=(18, 20))
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    folder = str(ROOT / ".bench")
    os.makedirs(folder, exist_ok=True)
    big = build_rec(folder, 256, 1000)
    small = build_rec(folder, 32, 4096)
    results = []
    inp = bench_input(big, args.input_images)
    print(
        "input  (224x224 random crop + mirror, batch 64): ours {:7.0f} img/s, bare ImageRecordIter {:7.0f} img/s".format(
            inp["ours"], inp["bare"]
        )
    )
    results.append(("input throughput vs bare ImageRecordIter", inp["ours"] / inp["bare"], ">= 0.9"))
    tr = bench_train(small, args.train_batches, args.depth)
    print(
        "train  (ResNet-{} 32x32, batch 64, SGD):        ours {:7.0f} img/s, bare Gluon loop   {:7.0f} img/s".format(
            args.depth, tr["ours"], tr["bare"]
        )
    )
    results.append(("training images/s vs bare Gluon loop", tr["ours"] / tr["bare"], ">= 0.95"))
    sv = bench_serve(args.requests)
    print(
        "serve  (ResNet-20, one 48x48 JPEG a request): http p50 {:.2f} ms p99 {:.2f} ms ({:.0f} req/s); in-process p50 {:.2f} ms p99 {:.2f} ms".format(
            sv["http_p50"], sv["http_p99"], sv["http_rps"], sv["direct_p50"], sv["direct_p99"]
        )
    )
    print(f"\nratios (cores: {os.cpu_count()})")
    for name, value, target in results:
        print(f"  {name:<44} {value:5.2f}x  (target {target})")
    print(
        "  {:<44} {:5.2f} ms (target <= 2 ms at p50)".format(
            "server overhead at p50", sv["http_p50"] - sv["direct_p50"]
        )
    )


if __name__ == "__main__":
    main()
