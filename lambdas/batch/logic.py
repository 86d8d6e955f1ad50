"""Batch classification in the cloud: the plan of a request's transform job (the request's own
rules are imgclf_core.batch_request, which ``imgclf batch --stage`` applies too), and the join
of the transform's outputs into ``predictions.jsonl``.

An input that ends in ``/`` is a prefix: every image under it (recursively, hidden files skipped) is classified in the
order ``imgclf batch`` walks a folder, and ``source`` is its key below the prefix, as
``imgclf batch`` names a folder's files. The lines are imgclf_core.batch's, so the cloud and the
local run write the same file for the same inputs and model.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from image_dataset.layout import is_image_file
from image_dataset.samples import printable
from imgclf_core import batch as rules
from imgclf_core import s3_layout
from imgclf_core.batch_request import PACKAGE_ARN, BatchRequest, PackageChoice, Rejected

MAX_JOB_NAME = 63  # CreateTransformJob's TransformJobName and CreateModel's ModelName
CONTENT_TYPE = "application/x-image"  # what the serving contract takes for JPEG and PNG alike


def job_name(prefix: str, execution: str) -> str:
    """The transform job's and the model's name: unique per execution, at most 63 characters."""
    digest = hashlib.sha256(execution.encode()).hexdigest()[:10]
    tail = f"-batch-{digest}"
    return f"{prefix[: MAX_JOB_NAME - len(tail)]}{tail}"


# -- the model package ----------------------------------------------------------------------------


def package_arn(group: str, choice: PackageChoice, describe_version: Any, latest_approved: Any) -> str:
    """The package to use: a named ARN (of ``group``), a version of ``group``, or its latest
    Approved. ``describe_version(version)`` answers DescribeModelPackage of a version ARN or
    None; ``latest_approved()`` the newest Approved package's ARN or None."""
    if choice is None:
        found = latest_approved()
        if not found:
            raise Rejected(f"the model package group {group} has no Approved model")
        return str(found)
    if isinstance(choice, str):
        match = PACKAGE_ARN.match(choice)
        assert match
        if match.group(1) != group:
            raise Rejected(f"{choice} is not in this stage's model package group {group}")
        version = int(match.group(2))
    else:
        version = choice
    description = describe_version(version)
    if description is None:
        raise Rejected(f"version {version} of {group} does not exist")
    if description.get("ModelPackageStatus") != "Completed":
        raise Rejected(f"version {version} of {group} is {description.get('ModelPackageStatus')}, not Completed")
    if description.get("ModelApprovalStatus") == "Rejected":
        raise Rejected(f"version {version} of {group} was rejected")
    return str(description["ModelPackageArn"])


# -- the inputs -------------------------------------------------------------------------------


def _walk_order(relative: str) -> Tuple[Tuple[int, str], ...]:
    """imgclf batch's order (image_dataset.store.LocalStore.walk_files): a folder's files, by
    name, before its sub-folders, by name."""
    parts = relative.split("/")
    return tuple((1, p) for p in parts[:-1]) + ((0, parts[-1]),)


def ordered_inputs(prefix: str, keys: Iterable[str]) -> Tuple[List[str], int]:
    """(the keys below ``prefix`` of the images to classify, relative and in walk order; the
    number of files skipped for not being images). Hidden files and folder markers are ignored,
    as imgclf batch ignores them."""
    found: List[str] = []
    skipped = 0
    for key in keys:
        relative = key[len(prefix) :]
        if not relative or key.endswith("/") or any(p.startswith(".") for p in relative.split("/")):
            continue
        if is_image_file(relative):
            found.append(relative)
        else:
            skipped += 1
    return sorted(found, key=_walk_order), skipped


def manifest(bucket: str, prefix: str, relatives: Sequence[str]) -> bytes:
    """The transform's ManifestFile: the prefix, then each input's key below it, in order."""
    return json.dumps([{"prefix": f"s3://{bucket}/{prefix}"}, *relatives]).encode()


def read_manifest(data: bytes) -> Tuple[str, List[str]]:
    """(prefix URI, relative keys) of a manifest written by :func:`manifest`."""
    items = json.loads(data.decode("utf-8"))
    return str(items[0]["prefix"]), [str(item) for item in items[1:]]


def plan(
    request: BatchRequest, execution: str, prefix: str, artifacts: str, package: str, keys: Sequence[str]
) -> Tuple[Dict[str, Any], List[str]]:
    """(the transform job's names and locations, the inputs' keys below ``input_prefix`` in
    order) for ``request``, whose input lists ``keys``. The inputs go into the manifest, not
    into the state (Step Functions passes at most 256 KB between states)."""
    if request.is_prefix:
        relatives, skipped = ordered_inputs(request.input_key, keys)
        base = request.input_key
    else:
        if request.input_key not in keys:
            raise Rejected(f"s3://{request.bucket}/{request.input_key} does not exist")
        base, _, single = request.input_key.rpartition("/")
        base += "/"
        relatives, skipped = [single], 0
    if not relatives:
        raise Rejected(f"s3://{request.bucket}/{request.input_key} holds no JPEG or PNG image")
    job = job_name(prefix, execution)
    found = {
        "job_name": job,
        "model_name": job,
        "model_package_arn": package,
        "input": f"s3://{request.bucket}/{request.input_key}",
        "input_prefix": base,
        "inputs": len(relatives),
        "skipped": skipped,
        "manifest_uri": s3_layout.s3_uri(artifacts, s3_layout.batch_manifest_key(job)),
        "output_uri": s3_layout.s3_uri(artifacts, s3_layout.batch_output_key(job)),
        "predictions_uri": s3_layout.s3_uri(artifacts, s3_layout.batch_predictions_key(job)),
    }
    return found, relatives


# -- the join -------------------------------------------------------------------------------


def missing_line(source: str, failure: Optional[str]) -> Dict[str, Any]:
    why = f"the transform job failed: {failure}" if failure else "the transform job ended without it"
    return rules.error_line(source, rules.MODEL_ERROR, f"no output for this input ({why})")


def join(relatives: Sequence[str], outputs: Mapping[str, bytes], failure: Optional[str] = None) -> List[Dict[str, Any]]:
    """One line per input, in input order: the answer in ``outputs[relative]`` (its ``.out``),
    or an error line for an input without one."""
    lines = []
    for relative in relatives:
        source = printable(relative)
        answer = outputs.get(relative)
        lines.append(missing_line(source, failure) if answer is None else rules.answer_line(source, 200, answer))
    return lines


def output_relatives(output_prefix: str, keys: Iterable[str]) -> Dict[str, str]:
    """The input (relative key) each ``.out`` object below ``output_prefix`` answers."""
    found = {}
    for key in keys:
        if key.startswith(output_prefix) and key.endswith(".out"):
            found[key[len(output_prefix) : -len(".out")]] = key
    return found


def report(plan: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], failure: Optional[str]) -> Dict[str, Any]:
    """The join's result: counts and where the predictions are."""
    counts = rules.tally(lines, int(plan.get("skipped", 0)))
    return {
        "predictions_uri": plan["predictions_uri"],
        "total": counts.total,
        "classified": counts.classified,
        "failed": counts.failed,
        "skipped": counts.skipped,
        "summary": rules.summary(counts, str(plan["predictions_uri"])),
        "transform_failure": failure or "",
    }
