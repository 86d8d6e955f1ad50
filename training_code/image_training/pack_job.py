"""The workflow's Pack step: a SageMaker Processing job, in the backend's CPU training container,
that turns a dataset's image channels into RecordIO (``<channel>.rec/.idx/.lst`` and
``labels.json`` in ``OUTPUT/<channel>/``), so that training reads one sequential file per
channel. Channels that are RecordIO already are left out; the training plan uses them as they are.

    python3 -m image_training.pack_job [--input DIR] [--output DIR] [--format F]
                                       [--label-attribute A] [--multi-label 0|1] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, Optional, Sequence

from image_dataset.pack import pack_channels
from image_dataset.validate import ValidationOptions, load_index

from .data import raise_if_invalid
from .errors import run_job

INPUT = "/opt/ml/processing/input/dataset"
OUTPUT = "/opt/ml/processing/output"
MESSAGE_DIR = "/opt/ml/output"  # SageMaker shows output/message as the job's ExitMessage


def pack_dataset(root: str, output: str, options: ValidationOptions) -> Dict[str, int]:
    """Validate ``root`` (the same rules as the validator) and pack its image channels into
    ``output``; returns the records written per channel."""
    index = load_index(root, options)
    raise_if_invalid(index.report)
    packed = {name: result.records for name, result in pack_channels(index, output).items()}
    for name, records in packed.items():
        print(f"{name}: {records} records -> {os.path.join(output, name)}", flush=True)
    return packed


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="pack_job", description=__doc__)
    parser.add_argument("--input", default=INPUT)
    parser.add_argument("--output", default=OUTPUT)
    parser.add_argument("--format")
    parser.add_argument("--label-attribute")
    parser.add_argument("--multi-label", choices=("0", "1"), help="as the validator was told (unset: from the data)")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    options = ValidationOptions(
        format=args.format,
        label_attribute=args.label_attribute,
        multi_label=None if args.multi_label is None else args.multi_label == "1",
        workers=args.workers,
    )
    packed = pack_dataset(args.input, args.output, options)
    print(json.dumps({"packed": packed}), flush=True)


if __name__ == "__main__":
    sys.exit(run_job(lambda: main(sys.argv[1:]), MESSAGE_DIR, "message"))
