"""Benchmark: validation in shards (plan, shards, merge) against one process, same dataset.

The workflow fans a large dataset out to Lambdas; this measures what the split costs and what
it buys. Builds (once, cached under .bench/) a .rec of photo-like JPEGs, validates it with full
decoding in one process (the peer), then runs the three steps of image_dataset.shards here, one
shard after another, timing each. Prints:
  overhead   (plan + every shard + merge) / one process: the extra work the split adds (target <= 1.10)
  wall time  plan + slowest shard + merge: the fanned-out run's critical path when every shard
             runs at once, and the speed-up over one process it allows (shards run here in turn,
             so this is a model of the parallel run, not a measurement of one)

    .venv/bin/python bench/validate_shards.py [--records 80000] [--shards 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "training_code"))

from bench_data import build_rec  # noqa: E402

from image_dataset.shards import merge, plan, run_shard  # noqa: E402
from image_dataset.store import LocalStore  # noqa: E402
from image_dataset.validate import ValidationOptions, Validator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=80000)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    root = os.path.join(ROOT, ".bench", f"shards-{args.records}")
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    rec = build_rec(os.path.join(root, "train"), 96, args.records, name="train")
    size = os.path.getsize(rec)
    store = LocalStore(root)
    options = ValidationOptions(workers=os.cpu_count())

    Validator(store, options).run()  # warm the page cache and the imports: both runs start warm
    start = time.perf_counter()
    one = Validator(store, options).run()
    one_s = time.perf_counter() - start

    start = time.perf_counter()
    planned = plan(store, options, shard_bytes=-(-size // args.shards))
    plan_s = time.perf_counter() - start
    results, shard_s = {}, []
    for shard in planned.shards:
        start = time.perf_counter()
        results[shard["index"]] = run_shard(store, options, shard)
        shard_s.append(time.perf_counter() - start)
    start = time.perf_counter()
    sharded = merge(store, options, planned, results.__getitem__)
    merge_s = time.perf_counter() - start

    assert sharded == one, "the sharded report differs from the one-process report"
    total = plan_s + sum(shard_s) + merge_s
    critical = plan_s + max(shard_s) + merge_s
    print(f"dataset: {args.records} records of 96x96 JPEGs, {size / 1e6:.0f} MB, {len(planned.shards)} shards")
    print(f"one process:  {one_s:7.2f} s")
    print(f"plan:         {plan_s:7.2f} s")
    print(f"shards:       {sum(shard_s):7.2f} s in all, slowest {max(shard_s):.2f} s")
    print(f"merge:        {merge_s:7.2f} s")
    print(f"overhead:     {total / one_s:7.2f}x one process (target <= 1.10)")
    print(f"wall time:    {critical:7.2f} s with every shard at once: {one_s / critical:.1f}x faster than one process")


if __name__ == "__main__":
    main()
