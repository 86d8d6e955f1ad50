"""``imgclf batch``: classify a folder, .lst, manifest or .rec into a JSON-lines file (app.batch)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

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
    p.add_argument("--model", help="model.tar.gz (or its unpacked folder); required without --stage")
    p.add_argument("--output", "-o", metavar="OUT", help="the JSON-lines file to write; required without --stage")
    cloud = p.add_argument_group(
        "in AWS",
        "with --stage, INPUT is an s3:// folder (ending in /) or image in the stage's datasets bucket, under "
        "batch/ or datasets/; the stage's batch workflow classifies it (docs/batch-and-monitoring.md)",
    )
    cloud.add_argument("--stage", help="start the batch workflow of this stage of cdk.json instead")
    cloud.add_argument("--name", help="the batch's name (default: batch-<UTC time>)")
    cloud.add_argument(
        "--model-package", type=int, metavar="VERSION", help="the model package version (default: the latest Approved)"
    )
    cloud.add_argument("--cdk-json", help="the cdk.json to read (default: ./cdk.json, else the repository's)")
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


def run_cloud_batch(args: argparse.Namespace) -> int:
    """Write the request that starts the stage's batch workflow."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from app.cloud import start_batch
    from imgclf_core.batch_request import Rejected

    from .doctor import _cdk_json, load_stage

    stage = load_stage(args.stage, _cdk_json(args.cdk_json))
    name = args.name or "batch-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    s3 = boto3.client("s3", region_name=stage.region)
    try:
        started = start_batch(s3, stage.datasets_bucket, name, args.input, args.model_package)
    except Rejected as err:
        raise UsageError(str(err)) from None
    except (BotoCoreError, ClientError) as err:
        _say(f"error: cannot write the batch request to s3://{stage.datasets_bucket}: {err}")
        return EXIT_FAILED
    print(
        f"wrote s3://{stage.datasets_bucket}/{started['key']}: the batch workflow {stage.batch_state_machine} "
        f"starts as execution {started['execution']}; predictions.jsonl and a notification follow"
    )
    return EXIT_OK


def run_batch(args: argparse.Namespace) -> int:
    if args.stage is not None:
        return run_cloud_batch(args)
    missing = [flag for flag, value in (("--model", args.model), ("--output", args.output)) if not value]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UsageError(f"{' and '.join(missing)} {verb} required (or --stage, to classify in AWS)")
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
