"""``imgclf``: parse the command line and dispatch to a command."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import traceback
from typing import Callable, List, Optional

from image_dataset.issues import DatasetError

from .batch import add_batch_parser
from .dataset import (
    EXIT_FAILED,
    EXIT_USAGE,
    UsageError,
    add_pack_parser,
    add_upload_parser,
    add_validate_parser,
    one_line,
    os_error_text,
    positive_int,
)
from .doctor import add_doctor_parser
from .monitor import add_monitor_parser
from .pipeline import add_pipeline_parsers
from .serve import add_serve_parsers
from .train import add_hyperparameters_parser, add_train_parser

DEBUG_HELP = "on an error, show the Python traceback too (also: IMGCLF_DEBUG=1)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgclf",
        description="Image classification on SageMaker: validate and pack datasets, train and serve models.",
        epilog="Exit codes: 0 done, 1 the work failed (the reason is printed on one line), 2 usage error.",
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_validate_parser(sub)
    add_pack_parser(sub)
    add_upload_parser(sub)
    add_train_parser(sub)
    add_hyperparameters_parser(sub)
    add_serve_parsers(sub)
    add_batch_parser(sub)
    add_monitor_parser(sub)
    add_pipeline_parsers(sub)
    add_doctor_parser(sub)
    sample = sub.add_parser("sample-data", help="write the embedded sample dataset (handwritten digits)")
    sample.add_argument("out_dir")
    sample.add_argument("--size", type=positive_int, default=32, help="image side in pixels")
    sample.set_defaults(run=run_sample_data)
    _debug_everywhere(parser)
    return parser


def _debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after the command too (``imgclf validate --debug PATH``): every subcommand
    takes it, without overriding a ``--debug`` given before the command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                if "--debug" not in child._option_string_actions:
                    child.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
                child.set_defaults(usage_of=child)  # a nested command's own, set later, wins
                _debug_everywhere(child)


def command_name(args: argparse.Namespace) -> str:
    """The command as typed: ``validate``, ``pipeline run``."""
    nested = getattr(args, "pipeline_command", None)
    return f"{args.command} {nested}" if nested else str(args.command)


def run_sample_data(args: argparse.Namespace) -> int:
    from app.sample_data import write_digits

    try:
        count = write_digits(args.out_dir, size=args.size)
    except OSError as err:
        sys.stderr.write(f"imgclf sample-data: error: cannot write the dataset: {os_error_text(err)}\n")
        return EXIT_FAILED
    print(f"wrote {count} images to {args.out_dir}")
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that its clean-up runs as on Ctrl-C (``pack``
    removes its ``.partial`` files) before the process exits 143."""


def _terminator(owner: int) -> Callable[[int, object], None]:
    """The SIGTERM handler of process ``owner``. A process it forks (a model server, a pool
    worker) inherits the handler and must die as SIGTERM makes it die, not raise: whoever
    terminates it waits for it to end."""

    def terminate(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated()

    return terminate


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command. Exit 0 done, 1 the work failed, 2 usage; a failure is one line on
    stderr (``imgclf CMD: error: ...``), with the traceback only under ``--debug``."""
    for stream in (sys.stdout, sys.stderr):  # never fail on printing an odd file name
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("IMGCLF_DEBUG", "") not in ("", "0")
    command = command_name(args)

    def fail(message: str) -> int:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"imgclf {command}: {one_line(message)}\n")
        return EXIT_FAILED

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminator(os.getpid())) if in_main_thread else None
    try:
        return int(args.run(args))
    except Terminated:
        sys.stderr.write("terminated\n")
        return 143
    except UsageError as err:  # as argparse's own usage errors: the usage lines, SystemExit(2)
        if debug:
            traceback.print_exc()
        getattr(args, "usage_of", parser).print_usage(sys.stderr)
        parser.exit(EXIT_USAGE, f"imgclf {command}: error: {one_line(str(err))}\n")
    except DatasetError as err:
        return fail(str(err))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # the reader of our output went away (| head): nothing to say
        with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as err:  # a file or a connection of the command's own: the reason and the file
        return fail(f"error: {os_error_text(err)}")
    except Exception as err:  # noqa: BLE001 - the last resort: one line, never a traceback
        hint = "" if debug else " (rerun with --debug for the traceback)"
        return fail(f"error: {type(err).__name__}: {err}{hint}")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
