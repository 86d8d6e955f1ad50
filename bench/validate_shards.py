"""Benchmark: validation in shards (plan, shards, merge) against one process, same dataset.

The workflow fans a large dataset out to Lambdas; this measures what the split costs and what
it buys. Builds (once, cached under .bench/) a .rec of photo-like JPEGs, validates it with full
decoding in one process (the peer), then runs the three steps of image_dataset.shards here, one
shard after another, timing each. Prints:
  overhead   (plan + every shard + merge) / one process: the extra work the split adds (target <= 1.10)
  wall time  plan + slowest shard + merge: the fanned-out run's critical path when every shard
             runs at once, and the speed-up over one process it allows (shards run here in turn,
             so this is a model of the parallel run, not a measurement of one)

The one-process run and the sharded run take turns (one, sharded, one, sharded, ...), and the
figures are the medians of the runs (alternate.py).

    .venv/bin/python bench/validate_shards.py [--records 80000] [--shards 4] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "training_code"))

from alternate import RUNS, alternate, median, spread, verdict  # noqa: E402
from bench_data import build_rec  # noqa: E402

from image_dataset.shards import merge, plan, run_shard  # noqa: E402
from image_dataset.store import LocalStore  # noqa: E402
from image_dataset.validate import ValidationOptions, Validator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=80000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--runs", type=int, default=RUNS, help="alternated runs of each side (>= 5)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    root = os.path.join(ROOT, ".bench", f"shards-{args.records}")
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    rec = build_rec(os.path.join(root, "train"), 96, args.records, name="train")
    size = os.path.getsize(rec)
    store = LocalStore(root)
    options = ValidationOptions(workers=os.cpu_count())
    load = os.getloadavg()[0]

    reports: Dict[str, object] = {}
    steps: Dict[str, List[float]] = {"plan": [], "shards": [], "slowest": [], "merge": []}

    def one() -> float:
        start = time.perf_counter()
        reports["one"] = Validator(store, options).run()
        return time.perf_counter() - start

    def sharded() -> float:
        start = time.perf_counter()
        planned = plan(store, options, shard_bytes=-(-size // args.shards))
        plan_s = time.perf_counter() - start
        results, shard_s = {}, []
        for shard in planned.shards:
            start = time.perf_counter()
            results[shard["index"]] = run_shard(store, options, shard)
            shard_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        reports["sharded"] = merge(store, options, planned, results.__getitem__)
        merge_s = time.perf_counter() - start
        assert reports["sharded"] == reports["one"], "the sharded report differs from the one-process report"
        reports["shards"] = len(planned.shards)
        for name, value in (("plan", plan_s), ("shards", sum(shard_s)), ("slowest", max(shard_s)), ("merge", merge_s)):
            steps[name].append(value)
        return plan_s + sum(shard_s) + merge_s

    # the warm-up round warms the page cache and the imports: every timed run starts warm
    figures = alternate({"one": one, "sharded": sharded}, args.runs)
    one_s, total = median(figures["one"]), median(figures["sharded"])
    plan_s, merge_s = median(steps["plan"][1:]), median(steps["merge"][1:])
    critical = plan_s + median(steps["slowest"][1:]) + merge_s
    print(f"load average at the start: {load:.2f} (cores: {os.cpu_count()})")
    print(f"dataset: {args.records} records of 96x96 JPEGs, {size / 1e6:.0f} MB, {reports['shards']} shards")
    print(f"medians of {args.runs} alternated runs; each run's seconds in brackets")
    print(f"one process:  {one_s:7.2f} s  {spread(figures['one'], '{:.2f}')}")
    print(f"sharded:      {total:7.2f} s  {spread(figures['sharded'], '{:.2f}')}")
    print(f"  plan:       {plan_s:7.2f} s")
    print(f"  shards:     {median(steps['shards'][1:]):7.2f} s in all, slowest {median(steps['slowest'][1:]):.2f} s")
    print(f"  merge:      {merge_s:7.2f} s")
    print(f"\nratios of the medians (load average at the end: {os.getloadavg()[0]:.2f})")
    print("  " + verdict("overhead: sharded work / one process", total / one_s, 1.10, above=False))
    print(f"  wall time with every shard at once: {critical:.2f} s, {one_s / critical:.1f}x faster than one process")


if __name__ == "__main__":
    main()
