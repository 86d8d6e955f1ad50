"""``imgclf batch``: classify a folder, .lst, manifest or .rec into a JSON-lines file (app.batch)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from app.batch import Batch, BatchFailed, BatchUsageError
from imgclf_core import batch as rules

from .dataset import EXIT_FAILED, EXIT_OK, UsageError, one_line, positive_int
from .progress import progress_bar

EPILOG = (
    "Each input gets one JSON line, in input order: source, label, probability, top_k (and labels for a "
    "multi-label model), or source and error {code, message}. Exit 0 when every input was classified, 1 when "
    "any failed, 2 for a usage error. An interrupted run continues where it stopped when it is started again "
    "with the same arguments."
)


def add_batch_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="classify a folder, .lst, manifest or .rec with a model into a JSON-lines file",
        description="Classify every image of INPUT with the model, as a SageMaker batch transform does.",
        epilog=EPILOG,
    )
    p.add_argument(
        "input", metavar="INPUT", help="a folder of images, a .lst, a manifest (.manifest, .jsonl) or a .rec"
    )
    p.add_argument("--model", required=True, help="model.tar.gz (or its unpacked folder)")
    p.add_argument("--output", "-o", required=True, metavar="OUT", help="the JSON-lines file to write")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="concurrent requests to the model (default: the number of cores)",
    )
    p.set_defaults(run=run_batch)


def _say(text: str) -> None:
    sys.stderr.write(f"imgclf batch: {one_line(text)}\n")
    sys.stderr.flush()


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a kill stops as Ctrl-C does: the lines so far stay for a resume


def run_batch(args: argparse.Namespace) -> int:
    try:
        batch = Batch(args.model, args.input, args.output, args.workers)
    except BatchUsageError as err:
        raise UsageError(str(err)) from None
    batch.prepare()
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with progress_bar() as progress:
            counts = batch.run(progress, _say)
    except BatchFailed as err:
        _say(f"error: {err}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _say(f"interrupted: {batch.progress_note()}")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(rules.summary(counts, args.output))
    if counts.failed:
        _say(
            f"error: {sum(counts.failed.values())} of {counts.total} inputs could not be classified; "
            f"their lines in {args.output} say why"
        )
        return EXIT_FAILED
    return EXIT_OK
