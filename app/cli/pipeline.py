"""``imgclf pipeline run`` and ``imgclf demo``: the cloud workflow, on this machine."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from pathlib import Path
from typing import Optional

from app.pipeline.report import TF_LINE
from app.pipeline.run import EXIT_DEPLOYED, PipelineRun, RunResult, defaults_help
from image_dataset.layout import FORMATS
from image_training.errors import HyperparameterError
from imgclf_core.backends import REGISTRY

from .dataset import UsageError, key_value
from .progress import ProgressCallback, progress_bar

EPOCH = re.compile(r"Epoch\[(\d+)\] Validation-accuracy=([0-9.]+)")


class EpochLog:
    """The training log as progress: the shared progress bar on a terminal, one line an epoch
    otherwise."""

    def __init__(self, epochs: int, update: ProgressCallback) -> None:
        self.epochs = epochs
        self.update = update
        self.on_terminal = sys.stderr.isatty()

    def write(self, text: str) -> int:
        found = [(int(e), a) for e, a in EPOCH.findall(text)]
        found += [(int(e) - 1, v) for e, _, v in TF_LINE.findall(text)]
        for epoch, accuracy in found:
            if self.on_terminal:
                self.update(f"training (validation accuracy {accuracy})", epoch + 1, self.epochs)
            else:
                print(f"  epoch {epoch + 1}/{self.epochs}: validation accuracy {accuracy}", flush=True)
        return len(text)

    def flush(self) -> None:
        pass


def add_pipeline_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="run the training pipeline on this machine")
    runs = p.add_subparsers(dest="pipeline_command", required=True, metavar="COMMAND")
    r = runs.add_parser(
        "run",
        help="validate -> pack -> train -> gate -> register -> deploy -> classify",
        description="Exit codes: 0 deployed, 3 the gate rejected the model (registered as rejected, nothing "
        "deployed), 1 a step failed, 2 usage.",
        epilog=defaults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument(
        "dataset",
        help="what `imgclf validate` takes: a dataset root (train/, and validation/ or not, in any format), "
        "one channel folder (class folders, .rec/.idx, .lst, manifest or annotations.json at its root), "
        "or one such file",
    )
    _common(r)
    r.set_defaults(run=run_pipeline)
    d = sub.add_parser(
        "demo",
        help="the whole pipeline on the embedded handwritten digits (or --dataset)",
        epilog=defaults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--dataset", help="your own dataset root instead of the embedded digits")
    d.add_argument("--fast", action="store_true", help="a few epochs only (for tests)")
    _common(d)
    d.set_defaults(watch=True)
    d.set_defaults(run=run_demo)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=sorted(REGISTRY), default="mxnet")
    p.add_argument(
        "--hp",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="hyperparameter over the defaults below (repeatable); the data set num_classes and the like",
    )
    p.add_argument(
        "--format", choices=FORMATS, help="the dataset format, as a dataset.json says it (default: detected)"
    )
    p.add_argument("--label-attribute", help="manifest label attribute (default: the only non-metadata key)")
    p.add_argument("--work", default=".imgclf", help="registry, jobs and reports (default .imgclf)")
    p.add_argument("--threshold", type=float, default=0.9, help="accuracy the gate requires (default 0.9)")
    p.add_argument(
        "--max-regression",
        type=float,
        default=0.0,
        help="accuracy a new model may lose against the approved one and still pass (default 0)",
    )
    p.add_argument("--port", type=int, default=0, help="the endpoint's port (default: any free port)")
    p.add_argument(
        "--watch",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="after deploying, capture held-out and then inverted images through the endpoint and run the "
        "drift monitor on each (default: on for demo, off for pipeline run)",
    )
    p.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the endpoint running until Ctrl-C (default: when stdin is a terminal)",
    )


def _execute(dataset: str, args: argparse.Namespace, overrides: dict) -> int:
    if not Path(dataset).exists():
        raise UsageError(f"{dataset} does not exist")
    if not (Path(dataset).is_dir() or Path(dataset).is_file()):
        raise UsageError(f"{dataset} is neither a dataset folder nor a dataset file")
    with progress_bar() as progress:
        try:
            pipeline = PipelineRun(
                dataset,
                args.work,
                args.backend,
                overrides,
                args.threshold,
                args.port,
                max_regression=args.max_regression,
                progress=progress,
                descriptor={"format": args.format, "label_attribute": args.label_attribute},
                watch=args.watch,
            )
        except HyperparameterError as err:
            raise UsageError(f"--hp {err}") from None
        pipeline.log = EpochLog(pipeline.epochs(), progress)  # type: ignore[assignment]
        result = pipeline.run()
    _summary(result)
    serve = sys.stdin.isatty() if args.serve is None else args.serve
    if result.endpoint is not None:
        if serve:
            print(
                f"\nThe endpoint is serving at {result.endpoint.url} (POST /invocations, GET /ping). Ctrl-C stops it.",
                flush=True,
            )
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        result.endpoint.stop()
    return result.exit_code


def _summary(result: RunResult) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = result.summary
    table = Table(title=f"imgclf pipeline run {result.execution}")
    table.add_column("step")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for step in summary["steps"]:
        table.add_row(step["step"], step["status"], step["detail"])
    console = Console(width=120)
    console.print(table)
    evaluation = summary.get("evaluation")
    if evaluation:
        console.print(
            "validation accuracy {:.4f}, top-{} accuracy {:.4f}".format(
                evaluation["accuracy"], evaluation.get("top_k"), evaluation.get("top_k_accuracy", 0.0)
            )
        )
    console.print(f"report: {result.report}")
    if result.endpoint is not None:
        console.print(f"endpoint: {result.endpoint.url}")
    outcome = {0: "deployed", 1: "a step failed", 3: "the gate rejected the model"}[result.exit_code]
    console.print(f"result: {outcome}")


def run_pipeline(args: argparse.Namespace) -> int:
    return _execute(args.dataset, args, dict(args.hp))


def run_demo(args: argparse.Namespace) -> int:
    dataset: Optional[str] = args.dataset
    if dataset is None:
        from app.sample_data import write_digits

        dataset = str(Path(args.work) / "digits")
        if not (Path(dataset) / "train").exists():
            count = write_digits(dataset)
            print(f"wrote the embedded dataset: {count} handwritten digits (scikit-learn) to {dataset}")
    overrides = dict(REGISTRY[args.backend].local_fast) if args.fast else {}
    overrides.update(dict(args.hp))
    code = _execute(dataset, args, overrides)
    return code if code in (EXIT_DEPLOYED, 1, 3) else 1
