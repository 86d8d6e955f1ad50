"""``imgclf monitor``: captured endpoint traffic against the model's baseline (app.monitor)."""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from app.monitor import MonitorError, run, summary, window_from

from .dataset import EXIT_FAILED, EXIT_OK, UsageError, one_line

EPILOG = (
    "Writes REPORT_DIR/monitor.json (drift_detected, and per check its value, threshold and verdict), "
    "monitor.html and a PNG chart per statistic. Exit 0 when the monitor ran, drift or not (read "
    "drift_detected), 1 when it could not (no baseline in the model, no records in the window), 2 for a "
    "usage error."
)


def add_monitor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="compare captured endpoint traffic with the model's baseline (data and prediction drift)",
        description="Compare a window of captured endpoint traffic (imgclf serve --capture, or a SageMaker "
        "endpoint's data capture synced from S3) with the baseline.json that training put in the model.",
        epilog=EPILOG,
    )
    p.add_argument("--baseline", required=True, metavar="MODEL", help="model.tar.gz (or its folder, or baseline.json)")
    p.add_argument("--capture", required=True, metavar="DIR", help="the capture folder (DIR/<endpoint>/AllTraffic/...)")
    p.add_argument("--labels", metavar="LABELS", help='ground truth, JSON lines {"inferenceId": ..., "label": ...}')
    p.add_argument("--since", metavar="TIME", help="the window's start (ISO 8601, UTC unless a zone is given)")
    p.add_argument("--until", metavar="TIME", help="the window's end, exclusive")
    p.add_argument("--last", type=_hours, metavar="HOURS", help="the window: the last HOURS hours")
    p.add_argument("--output", "-o", required=True, metavar="REPORT_DIR", help="where monitor.json and monitor.html go")
    p.set_defaults(run=run_monitor)


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of hours, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of hours, got {text!r}")
    return value


def run_monitor(args: argparse.Namespace) -> int:
    for option, path in (("--baseline", args.baseline), ("--capture", args.capture), ("--labels", args.labels)):
        if path is not None and not os.path.exists(path):
            raise UsageError(f"{option} {path} does not exist")
    if not os.path.isdir(args.capture):
        raise UsageError(f"--capture {args.capture} is not a folder")
    try:
        window = window_from(args.since, args.until, args.last, datetime.datetime.now(datetime.UTC))
    except ValueError as err:
        raise UsageError(str(err)) from None
    try:
        report = run(args.baseline, args.capture, args.labels, window, args.output)
    except MonitorError as err:
        sys.stderr.write(f"imgclf monitor: error: {one_line(str(err))}\n")
        return EXIT_FAILED
    for line in summary(report):
        print(line)
    problems = report["problems"]
    if problems["count"]:
        first = problems["first"][0]
        sys.stderr.write(
            f"imgclf monitor: warning: {problems['count']} unreadable line(s) skipped, "
            f"the first {first['where']}: {one_line(first['message'])}\n"
        )
    print(f"report: {os.path.join(args.output, 'monitor.html')}")
    return EXIT_OK
