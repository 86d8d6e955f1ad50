"""``imgclf train``: one training job on this machine, with the SageMaker container contract."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Dict

from app.local_sagemaker import BACKENDS, LocalTrainingJob, collect
from image_training.errors import HyperparameterError
from image_training.hyperparameters import RESERVED_PREFIXES
from imgclf_core.backends import schema_for

from .dataset import EXIT_FAILED, EXIT_OK, UsageError, key_value, os_error_text, positive_int


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="run a training job locally, as SageMaker runs it",
        description="Lay out a SageMaker job under OUTPUT/job, run the backend's training code in its own "
        "environment through the sagemaker-training toolkit, and leave model.tar.gz, output.tar.gz, "
        "evaluation.json and job.log in OUTPUT. Exit 0 trained, 1 the job failed (reason printed), 2 usage.",
    )
    p.add_argument("--backend", choices=sorted(BACKENDS), default="mxnet")
    p.add_argument("--train", required=True, help="train channel: any dataset format (folder or file)")
    p.add_argument(
        "--validation",
        help="validation channel; the TensorFlow backend can do without (validation_split_ratio of train)",
    )
    p.add_argument("--model", help="model channel: an earlier model.tar.gz (incremental training)")
    p.add_argument("--pretrained", help="pretrained channel: ImageNet weights (transfer learning)")
    p.add_argument(
        "--hp", action="append", type=key_value, default=[], metavar="KEY=VALUE", help="hyperparameter (repeatable)"
    )
    p.add_argument(
        "--hyperparameters", metavar="FILE.json", help="hyperparameters as a JSON object (values as strings)"
    )
    p.add_argument("--output", required=True, help="folder for the results")
    p.add_argument("--checkpoint-dir", help="checkpoints (default OUTPUT/job/checkpoints); a rerun resumes from them")
    p.add_argument("--instance-count", type=positive_int, default=1, help="hosts, each a container on this machine")
    p.add_argument("--max-runtime", type=positive_int, help="seconds before the job is stopped, as MaxRuntimeInSeconds")
    p.add_argument(
        "--input-mode",
        choices=("File", "FastFile", "Pipe"),
        default="File",
        help="how the train and validation channels reach the job (Pipe: RecordIO streams)",
    )
    p.set_defaults(run=run_train)


def hyperparameters_from(args: argparse.Namespace) -> Dict[str, str]:
    hps: Dict[str, str] = {}
    if args.hyperparameters:
        try:
            with open(args.hyperparameters) as f:
                loaded = json.load(f)
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot read {args.hyperparameters}: {err}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"{args.hyperparameters} must hold a JSON object")
        hps.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in loaded.items()})
    hps.update(dict(args.hp))
    check_hyperparameters(args.backend, hps)
    return hps


def check_hyperparameters(backend: str, hps: Dict[str, str]) -> None:
    """A UsageError for a name the backend does not know or a value that does not parse, before
    any job starts (a missing required one is the job's to report, as SageMaker's would)."""
    schema = schema_for(backend)
    for name, value in hps.items():
        if name.startswith(RESERVED_PREFIXES) or not str(value).strip():  # empty: the default, as the job reads it
            continue
        if name not in schema.params:
            raise UsageError(
                f"--hp {name}: not a hyperparameter of the {backend} backend (imgclf hyperparameters --backend {backend})"
            )
        try:
            schema.parse_value(schema.params[name], value)
        except HyperparameterError as err:
            raise UsageError(str(err)) from None


def run_train(args: argparse.Namespace) -> int:
    channels = {"train": args.train}
    if args.validation:
        channels["validation"] = args.validation
    if args.model:
        channels["model"] = args.model
    if args.pretrained:
        channels["pretrained"] = args.pretrained
    for name, path in channels.items():
        if not os.path.exists(path):
            raise UsageError(f"--{name} {path} does not exist")
    hyperparameters = hyperparameters_from(args)
    job = LocalTrainingJob(
        args.backend,
        os.path.join(args.output, "job"),
        channels,
        hyperparameters,
        checkpoint_dir=args.checkpoint_dir,
        instance_count=args.instance_count,
        max_runtime=args.max_runtime,
        input_mode=args.input_mode,
    )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # the job's containers are stopped with us

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        result = job.run()
        collect(result, args.output)
    except OSError as err:  # the job's folders: an output that cannot be written, a channel that cannot be read
        sys.stderr.write(f"imgclf train: error: the job could not be set up or collected: {os_error_text(err)}\n")
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result.exit_code != 0:
        sys.stderr.write(f"training failed: {result.failure}\n")
        return EXIT_FAILED
    evaluation = result.evaluation or {}
    print(
        "validation accuracy {:.4f} (best epoch {}); model: {}".format(
            evaluation.get("accuracy", float("nan")),
            evaluation.get("best_epoch"),
            os.path.join(args.output, "model.tar.gz"),
        )
    )
    return EXIT_OK


def add_hyperparameters_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hyperparameters", help="print a backend's hyperparameter schema")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="mxnet")
    p.add_argument("--json", action="store_true", help="machine-readable schema")
    p.set_defaults(run=run_hyperparameters)


def run_hyperparameters(args: argparse.Namespace) -> int:
    schema = schema_for(args.backend)
    if args.json:
        json.dump(schema.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for param in schema.params.values():
        default = "required" if param.required else ("unset" if param.default is None else param.default)
        choices = " ({})".format(" | ".join(map(str, param.choices))) if param.choices else ""
        print(f"{param.name:<28} {param.type:<9} {str(default):<14} {param.description}{choices}")
    return EXIT_OK
