"""``imgclf validate`` and ``imgclf pack``: thin wrappers over the dataset-format core."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO, Tuple

from image_dataset.images import DEFAULT_MAX_PIXELS
from image_dataset.issues import CollectingSink
from image_dataset.layout import FORMATS, RECORDIO, discover
from image_dataset.pack import (
    PackError,
    PackOptions,
    check_label_names,
    pack_channels,
    path_in_channel,
    plan,
    split,
    write_label_names,
    write_packs,
)
from image_dataset.samples import AUTO, LABEL_FORMATS, printable
from image_dataset.store import LocalStore
from image_dataset.validate import ValidationOptions, load_index, validate_path

from .progress import progress_bar

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad options or a path that does not exist: exit code 2."""


def one_line(text: str) -> str:
    """A message on one line: its lines joined with '; '."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def os_error_text(err: OSError) -> str:
    """One line for an OSError: what failed, and on which file."""
    reason = err.strerror or one_line(str(err)) or type(err).__name__
    names = [n for n in (err.filename, err.filename2) if n is not None]
    shown = [os.fsdecode(n) if isinstance(n, (str, bytes)) else str(n) for n in names]
    return reason + (": " + " -> ".join(shown) if shown else "")


def key_value(text: str) -> tuple:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def image_shape(text: str) -> Tuple[int, int, int]:
    parts = text.split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) <= 0:
        raise argparse.ArgumentTypeError("image shape must be C,H,W with C 1 or 3, e.g. 3,224,224")
    return shape  # type: ignore[return-value]


def ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError("the ratio must be in (0, 1]")
    return value


def add_label_options(p: argparse.ArgumentParser) -> None:
    """The options that say how a dataset's labels and images are read: ``validate`` and
    ``pack`` take the same ones, so they read a dataset the same way."""
    p.add_argument("--num-classes", type=positive_int, help="number of classes (default: from the data)")
    p.add_argument("--multi-label", action="store_true", default=None, help="labels are multi-label")
    p.add_argument("--label-attribute", help="manifest label attribute (default: the only non-metadata key)")
    p.add_argument(
        "--label-format",
        choices=LABEL_FORMATS,
        default=AUTO,
        help="how manifest label lists are meant: class ids or multi-hot vectors (auto: multi-hot when every "
        "list of a file is 0s and 1s of one length, at least 2)",
    )
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, help="decompression-bomb cap")


def label_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The ValidationOptions that ``add_label_options`` sets."""
    return {
        "num_classes": args.num_classes,
        "multi_label": args.multi_label,
        "label_attribute": args.label_attribute,
        "label_format": args.label_format,
        "max_pixels": args.max_pixels,
    }


def add_validate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a dataset and report every problem with its file and line/record/byte",
        description="Validate a dataset root (train/, validation/, *_lst/), one channel folder, "
        "or one file (.rec, .lst, .manifest/.jsonl, annotations.json). "
        "Exit 0 valid (warnings allowed), 1 invalid, 2 usage error.",
    )
    p.add_argument("path", help="dataset root, channel folder or file")
    add_label_options(p)
    p.add_argument("--image-shape", type=image_shape, help="C,H,W the network takes, e.g. 3,224,224")
    p.add_argument("--resize", type=positive_int, help="shorter side the images are resized to before cropping")
    p.add_argument("--mini-batch-size", type=positive_int)
    p.add_argument("--format", choices=("auto",) + FORMATS, default="auto")
    p.add_argument("--no-decode", action="store_true", help="structural checks only: skip the full image decode")
    p.add_argument(
        "--allow-bucket",
        action="append",
        default=[],
        metavar="BUCKET",
        help="bucket that manifest s3:// references may point into (repeatable)",
    )
    p.add_argument("--workers", type=positive_int, help="decode processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the JSON report")
    p.set_defaults(run=run_validate)


def options_from(args: argparse.Namespace) -> ValidationOptions:
    if args.image_shape and args.resize and args.resize < max(args.image_shape[1:]):
        raise UsageError(
            "--resize {} is smaller than --image-shape {}: the crop would not fit".format(
                args.resize, ",".join(map(str, args.image_shape))
            )
        )
    return ValidationOptions(
        **label_options(args),
        image_shape=args.image_shape,
        resize=args.resize,
        mini_batch_size=args.mini_batch_size,
        format=None if args.format == "auto" else args.format,
        decode_images=not args.no_decode,
        allowed_buckets=args.allow_bucket,
        workers=args.workers,
    )


def _existing(path: str) -> str:
    """``path`` unless it does not exist (a broken symbolic link does not) or is no folder or
    file (``/dev/null``): a UsageError then.
    What exists but cannot be read or reached is the validation's to report (FILE_UNREADABLE,
    exit 1)."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(
            f"{path} does not exist" + (" (a broken symbolic link)" if os.path.islink(path) else "")
        ) from None
    except OSError:
        return path
    if not (stat.S_ISDIR(found.st_mode) or stat.S_ISREG(found.st_mode)):
        raise UsageError(f"{path} is neither a folder nor a file (a device, a named pipe or a socket)")
    return path


def print_report(report: Dict[str, Any], out: Optional[TextIO] = None) -> None:
    """The human-readable report."""
    out = out or sys.stdout
    status = "VALID" if report["valid"] else "INVALID"
    out.write("{}: {}\n".format(report["dataset"], status))
    channels: Dict[str, Dict[str, Any]] = report["channels"]  # type: ignore[assignment]
    for name, ch in channels.items():
        line = "  {:<11} {:<12} {:>9} samples".format(name, ch["format"], ch["samples"])
        size = ch.get("image_size")
        if isinstance(size, dict):
            line += ", images {}x{} to {}x{}".format(
                size["min_width"], size["min_height"], size["max_width"], size["max_height"]
            )
        out.write(line + "\n")
    names = report.get("label_names")
    out.write(
        "  classes: {}{}\n".format(
            report["num_classes"],
            " ({})".format(", ".join(map(printable, names[:10])) + (", ..." if len(names) > 10 else ""))
            if names
            else "",
        )
    )
    counts: Dict[str, int] = report["counts"]  # type: ignore[assignment]
    for kind in ("errors", "warnings"):
        issues: List[Dict[str, str]] = report[kind]  # type: ignore[assignment]
        for issue in issues:
            where, message = printable(issue["location"]), printable(issue["message"])  # one line each
            out.write("  {} {} {}: {}\n".format(kind[:-1], issue["code"], where, message))
    shown = len(report["errors"]) + len(report["warnings"])  # type: ignore[arg-type]
    total = sum(counts.values())
    if total > shown:
        out.write(f"  ... {total - shown} more problems not shown (counts by code: {counts})\n")


def run_validate(args: argparse.Namespace) -> int:
    path = _existing(args.path)
    options = options_from(args)
    with progress_bar(not args.json) as progress:
        report = validate_path(path, options, progress)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report)
    return EXIT_OK if report["valid"] else EXIT_FAILED


def add_pack_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pack",
        help="pack images into RecordIO (.rec/.idx/.lst) like MXNet's im2rec",
        description="Pack a folder-per-class tree, a .lst, a manifest or annotations.json into "
        "OUT_PREFIX.rec/.idx/.lst (OUT_PREFIX_train.* and OUT_PREFIX_val.* with --train-ratio < 1). "
        "A dataset root (train/, validation/) is packed into the folder OUT_PREFIX as a RecordIO "
        "dataset root, OUT_PREFIX/<channel>/<channel>.rec/.idx/.lst, all channels with one label map. "
        "The source is validated first, with the same options as validate; nothing is written if it is "
        "invalid. Exit 0 packed, 1 invalid source or failed pack, 2 usage.",
    )
    p.add_argument("src", help="dataset root, channel folder or file")
    p.add_argument("out_prefix", help="output file prefix (a folder for a dataset root)")
    add_label_options(p)
    p.add_argument("--resize", type=positive_int, default=0, help="resize the shorter side to N pixels")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100, or PNG compression 0-9")
    p.add_argument("--encoding", choices=(".jpg", ".png"), default=".jpg")
    p.add_argument("--pass-through", action="store_true", help="store the image files' bytes unchanged")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--train-ratio", type=ratio, default=1.0)
    p.add_argument("--format", choices=("auto",) + FORMATS, default="auto")
    p.add_argument("--workers", type=positive_int)
    p.set_defaults(run=run_pack)


def _is_dataset_root(src: str, forced: Optional[str]) -> bool:
    """Whether ``src`` is a dataset root (its channels live in train/, validation/), by the
    rule validate uses to find channels."""
    if not os.path.isdir(src):
        return False
    return any(channel.root for channel in discover(LocalStore(src), forced, CollectingSink()))


def _check_out_prefix(out_prefix: str) -> str:
    """The folder of a file prefix; a UsageError for a prefix without a file name, which
    would write hidden files such as ``.rec``."""
    base = os.path.basename(out_prefix)
    example = os.path.join(out_prefix, "data")
    if out_prefix.endswith(("/", os.sep)) or base in ("", ".", "..") or os.path.isdir(out_prefix):
        raise UsageError(
            f"OUT_PREFIX {out_prefix!r} names a folder, not files: give a prefix such as {example!r} "
            "(writes data.rec, data.idx and data.lst there)"
        )
    if base.startswith("."):
        raise UsageError(
            f"OUT_PREFIX {out_prefix!r} would write hidden files ({base}.rec); give a name without a leading dot"
        )
    out_dir = os.path.dirname(os.path.abspath(out_prefix))
    if not os.path.isdir(out_dir):
        raise UsageError(f"output folder {out_dir} does not exist")
    return out_dir


def _check_out_root(out: str) -> None:
    """The folder a dataset root is packed into: it may exist (as a folder); its parent must."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{out} is a file; a dataset root is packed into a folder (OUT/<channel>/<channel>.rec)")
    if not os.path.isdir(os.path.dirname(path)):
        raise UsageError(f"output folder {os.path.dirname(path)} does not exist")


def _pack_options(args: argparse.Namespace) -> PackOptions:
    if not 1 <= args.quality <= 100 or (args.encoding == ".png" and args.quality > 9 and args.quality != 95):
        raise UsageError("--quality is 1-100 for .jpg and 0-9 for .png")
    return PackOptions(
        resize=args.resize,
        quality=args.quality,
        encoding=args.encoding,
        pass_through=args.pass_through,
        shuffle=args.shuffle,
        train_ratio=args.train_ratio,
        max_pixels=args.max_pixels,
    )


def _packable(src: str, index: Any) -> bool:
    """The index holds local images to pack (False, with the report printed, when invalid)."""
    report = index.report
    if not report["valid"]:
        print_report(report, sys.stderr)
        sys.stderr.write("nothing was packed: fix the errors above first\n")
        return False
    channels = list(index.channels.values())
    if not channels:
        if any(ch["format"] == RECORDIO for ch in report["channels"].values()):
            raise UsageError(f"{src} is RecordIO already")
        raise UsageError(f"{src} holds no images to pack")
    remote = next((s for _, samples in channels for s in samples if s.path.startswith("s3://")), None)
    if remote is not None:
        sys.stderr.write(
            f"imgclf pack: {remote.location}: {remote.path} is an s3:// reference; pack reads local images "
            "only: download them and refer to them by relative paths\n"
        )
        return False
    return True


def _pack_root(index: Any, out_dir: str, options: PackOptions, workers: Optional[int]) -> None:
    """Every channel of a dataset root into OUT/<channel>/, with one label map."""
    os.makedirs(out_dir, exist_ok=True)
    with progress_bar() as progress:
        packed = pack_channels(index, out_dir, progress, options, workers)
    for result in packed.values():
        print(f"{result.prefix}.rec: {result.records} records (+ .idx, .lst)")
    if index.label_names:
        print(
            "labels: " + ", ".join(f"{i}={printable(n)}" for i, n in enumerate(index.label_names)) + " (in labels.json)"
        )


def _pack_channel(src: str, index: Any, args: argparse.Namespace, out_dir: str, options: PackOptions) -> None:
    """One channel into OUT_PREFIX.rec, or its train/validation split."""
    channels = list(index.channels.values())
    if len(channels) > 1:
        raise UsageError(f"{src} holds several channels; pack each channel folder separately")
    channel, samples = channels[0]
    store = index.store
    assert isinstance(store, LocalStore)
    items = plan(samples, index.num_classes or 0, options)
    try:
        parts = split(items, args.out_prefix, args.train_ratio)
    except PackError as err:
        raise UsageError(str(err)) from None
    if index.label_names:
        check_label_names(out_dir, index.label_names)  # before any record is written

    with progress_bar() as progress:
        written = write_packs(
            parts,
            lambda p: store.local_path(p) or p,
            lambda _, sample: path_in_channel(sample.path, channel.root),
            options,
            args.workers,
            lambda prefix, done, total: progress(os.path.basename(prefix) + ".rec", done, total),
        )
    for result in written:
        print(f"{result.prefix}.rec: {result.records} records (+ .idx, .lst)")
    if index.label_names:
        names_file = write_label_names(out_dir, index.label_names)
        print(
            "labels: "
            + ", ".join(f"{i}={printable(n)}" for i, n in enumerate(index.label_names))
            + f" (in {names_file})"
        )


def run_pack(args: argparse.Namespace) -> int:
    src = _existing(args.src)
    pack_options = _pack_options(args)
    forced = None if args.format == "auto" else args.format
    whole_dataset = _is_dataset_root(src, forced)
    if whole_dataset:
        if args.train_ratio < 1.0:
            raise UsageError(
                f"{src} is a dataset root: --train-ratio splits one channel; pack {os.path.join(src, 'train')} with it"
            )
        _check_out_root(args.out_prefix)
        out_dir = os.path.abspath(args.out_prefix)
    else:
        out_dir = _check_out_prefix(args.out_prefix)
    options = ValidationOptions(**label_options(args), format=forced, workers=args.workers)
    with progress_bar() as progress:
        index = load_index(src, options, progress)
    if not _packable(src, index):
        return EXIT_FAILED
    if whole_dataset:
        _pack_root(index, out_dir, pack_options, args.workers)
    else:
        _pack_channel(src, index, args, out_dir, pack_options)
    return EXIT_OK


def add_upload_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upload",
        help="validate a dataset, upload it to S3, then its dataset.json (which starts one workflow run)",
        description="Upload DIR to s3://<dataset bucket>/datasets/<name>/<version>/: every file first, the "
        "dataset.json descriptor last. Exit 0 uploaded, 1 invalid dataset or upload error, 2 usage.",
    )
    p.add_argument("dataset")
    p.add_argument("uri", help="s3://<dataset bucket>/datasets/<name>/<version>/")
    p.add_argument("--format", choices=FORMATS, help="the dataset format (default: detected)")
    p.add_argument(
        "--hp", action="append", type=key_value, default=[], metavar="KEY=VALUE", help="hyperparameter override"
    )
    p.add_argument("--rerun", default="", help="a tag that starts a new run for an uploaded version")
    p.add_argument("--skip-validation", action="store_true", help="upload without validating here first")
    p.set_defaults(run=run_upload)


def run_upload(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from app.cloud import parse_dataset_uri, upload_dataset
    from image_dataset.descriptor import RERUN_TAG, Descriptor, DescriptorError

    root = Path(args.dataset)
    if not root.is_dir():
        raise UsageError(f"{args.dataset} is not a folder")
    try:
        parse_dataset_uri(args.uri)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not RERUN_TAG.match(args.rerun):
        raise UsageError("--rerun: up to 16 characters of A-Z, a-z, 0-9 and -")
    overrides = dict(args.hp)
    label_names = None
    if not args.skip_validation:
        report = validate_path(str(root), ValidationOptions(format=args.format))
        if not report["valid"]:
            for error in report["errors"][:20]:
                sys.stderr.write(f"{error['location']}: {error['code']}: {error['message']}\n")
            sys.stderr.write(f"not uploaded: {len(report['errors'])} errors (imgclf validate shows all)\n")
            return EXIT_FAILED
        label_names = report["label_names"]
    try:
        descriptor = Descriptor(
            format=args.format, label_names=label_names, hyperparameters=overrides, rerun=args.rerun
        )
        result = upload_dataset(boto3.client("s3"), root, args.uri, descriptor)
    except DescriptorError as err:
        raise UsageError(str(err)) from None
    except (BotoCoreError, ClientError, OSError) as err:
        text = os_error_text(err) if isinstance(err, OSError) else one_line(str(err))
        sys.stderr.write(f"imgclf upload: error: upload failed: {text}\n")
        return EXIT_FAILED
    print(
        f"uploaded {result['files']} files to s3://{result['bucket']}/{result['prefix']}; "
        f"s3://{result['bucket']}/{result['descriptor']} starts the workflow"
    )
    return EXIT_OK
