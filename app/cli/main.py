"""``imgclf``: parse the command line and dispatch to a command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from image_dataset.issues import DatasetError

from .dataset import EXIT_FAILED, EXIT_USAGE, UsageError, add_pack_parser, add_upload_parser, add_validate_parser
from .doctor import add_doctor_parser
from .pipeline import add_pipeline_parsers
from .serve import add_serve_parsers
from .train import add_hyperparameters_parser, add_train_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgclf",
        description="Image classification on SageMaker: validate and pack datasets, train and serve models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_validate_parser(sub)
    add_pack_parser(sub)
    add_upload_parser(sub)
    add_train_parser(sub)
    add_hyperparameters_parser(sub)
    add_serve_parsers(sub)
    add_pipeline_parsers(sub)
    add_doctor_parser(sub)
    sample = sub.add_parser("sample-data", help="write the embedded sample dataset (handwritten digits)")
    sample.add_argument("out_dir")
    sample.add_argument("--size", type=int, default=32, help="image side in pixels")
    sample.set_defaults(run=run_sample_data)
    return parser


def run_sample_data(args: argparse.Namespace) -> int:
    from app.sample_data import write_digits

    count = write_digits(args.out_dir, size=args.size)
    print(f"wrote {count} images to {args.out_dir}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # never fail on printing an odd file name
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as err:
        parser.exit(EXIT_USAGE, f"imgclf {args.command}: error: {err}\n")
    except DatasetError as err:
        sys.stderr.write(f"imgclf {args.command}: {err}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
