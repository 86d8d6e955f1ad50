"""Batch classification in the cloud: the plan of a request's transform job (the request's own
rules are imgclf_core.batch_request, which ``imgclf batch --stage`` applies too), and the join
of the transform's outputs into ``predictions.jsonl``.

An input that ends in ``/`` is a prefix: every image under it (recursively, hidden files skipped) is classified in the
order ``imgclf batch`` walks a folder, and ``source`` is its key below the prefix, as
``imgclf batch`` names a folder's files. A ``.rec`` has each of its records classified: the plan
scans its framing first (a damaged file, or a record larger than ``MaxPayloadInMB``, is refused
before any job starts), the transform job answers one line per record in one ``.out``, and line
i is record i, ``source`` ``#record i`` as ``imgclf batch`` names a .rec's records. The lines
are imgclf_core.batch's, so the cloud and the local run write the same file for the same inputs
and model.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from image_dataset.issues import DatasetError, IssueSink
from image_dataset.layout import RECORDIO, is_image_file
from image_dataset.recordio import IR_HEADER_SIZE
from image_dataset.samples import printable
from imgclf_core import batch as rules
from imgclf_core import s3_layout
from imgclf_core.batch_request import PACKAGE_ARN, BatchRequest, PackageChoice, Rejected, transform_settings

MAX_JOB_NAME = 63  # CreateTransformJob's TransformJobName and CreateModel's ModelName
# the scan's codes that break a .rec's framing: SageMaker could not split it on record boundaries
FRAMING = ("REC_BAD_MAGIC", "REC_BAD_FLAG", "REC_BAD_CONTINUATION", "REC_BAD_PADDING", "REC_TRUNCATED")


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


class _Framing(IssueSink):
    """Stops a scan at the first problem that breaks the framing; a record too short for its
    header keeps its place (the model answers it with an error line), warnings pass."""

    def report(self, code: str, message: str, location: str) -> None:
        if code in FRAMING:
            raise DatasetError(code, message, location)


def count_records(read_at: Callable[[int, int], bytes], size: int, name: str, max_payload_mb: int) -> int:
    """The number of records of the .rec ``name`` (``size`` bytes, read by ``read_at(offset,
    length)``), scanned as ``imgclf validate`` scans one (image_dataset.recordio_scan). Rejected
    for a file whose framing is damaged (its location), and for a record that does not fit
    ``MaxPayloadInMB`` (its number): SageMaker would fail the job on it."""
    from image_dataset.recordio_scan import RecordIOScanner  # noqa: PLC0415 - numpy: only the plan of a .rec needs it

    limit = max_payload_mb << 20
    scanner = RecordIOScanner(read_at, size, name, _Framing())
    try:
        for batch in scanner.scan():
            payloads = IR_HEADER_SIZE + 4 * batch.flags.astype("int64") + batch.image_lengths
            framed = 8 + (payloads + 3) // 4 * 4  # frame, data, padding: what MultiRecord sends of the record
            over = (framed > limit).nonzero()[0]
            if len(over):
                row = int(over[0])
                raise Rejected(
                    f"{name}#record {int(batch.ordinals[row])} @byte {int(batch.offsets[row])} is {int(framed[row])} "
                    f"bytes, more than batch.max_payload_mb ({max_payload_mb} MB), the most a transform request "
                    "may carry; raise batch.max_payload_mb (up to 100) or leave the record out"
                )
    except DatasetError as err:
        raise Rejected(
            f"{err.issue.location}: {err.issue.message}: the .rec's framing is damaged, so it cannot be split into "
            "records (imgclf validate lists every problem)"
        ) from None
    if not scanner.records:
        raise Rejected(f"{name} holds no record")
    return scanner.records


def plan(
    request: BatchRequest,
    execution: str,
    prefix: str,
    artifacts: str,
    package: str,
    keys: Sequence[str],
    batch_strategy: str,
    records: Optional[int] = None,
) -> Tuple[Dict[str, Any], List[str]]:
    """(the transform job's names, locations and settings, the inputs' keys below
    ``input_prefix`` in order) for ``request``, whose input lists ``keys``; ``records``: the
    number of records of a .rec input (``count_records``). The inputs go into the manifest, not
    into the state (Step Functions passes at most 256 KB between states)."""
    kind = request.kind
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
    if kind == RECORDIO and records is None:
        raise ValueError("a .rec input needs its number of records")
    job = job_name(prefix, execution)
    found = {
        "job_name": job,
        "model_name": job,
        "model_package_arn": package,
        "input": f"s3://{request.bucket}/{request.input_key}",
        "input_prefix": base,
        "input_kind": kind,
        "inputs": records if kind == RECORDIO else len(relatives),
        "skipped": skipped,
        "transform": transform_settings(kind, batch_strategy),
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


def output_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-blank lines of a ``.out`` that arrives in ``chunks``. ``AssembleWith`` Line ends
    every answer with a newline; a blank line (an answer that already ended with one) is none."""
    rest = b""
    for chunk in chunks:
        *whole, rest = (rest + chunk).split(b"\n")
        yield from (line for line in whole if line.strip())
    if rest.strip():
        yield rest


class RecordJoin:
    """The lines of a .rec's records from its ``.out``: line i answers record i (``lines``).
    Afterwards ``answered`` is the number of answer lines read, and ``problem`` says how many
    there were for how many records when the two differ (never a silent shift: a record without
    its line gets an error line, and extra lines are reported, not used)."""

    def __init__(self, relative: str, records: int) -> None:
        self.relative = printable(relative)
        self.records = records
        self.answered = 0
        self.output = False  # whether there was a .out
        self.failure: Optional[str] = None

    def lines(self, answers: Optional[Iterable[bytes]], failure: Optional[str] = None) -> Iterator[Dict[str, Any]]:
        """The records' lines, in record order; ``answers``: the ``.out``'s lines (None: there is
        none), ``failure``: the transform job's failure reason, if it failed."""
        self.output, self.failure = answers is not None, failure
        found = iter(answers if answers is not None else ())
        for number in range(self.records):
            source = rules.record_source(number)
            text = next(found, None)
            if text is None:
                yield self._missing(source, failure, answers is None)
                continue
            self.answered += 1
            yield rules.record_answer_line(source, text)
        self.answered += sum(1 for _ in found)

    def _missing(self, source: str, failure: Optional[str], no_output: bool) -> Dict[str, Any]:
        if no_output:
            return missing_line(source, failure)
        why = f"the transform's output for {self.relative} ends after {self.answered} lines"
        if failure:
            why += f"; the transform job failed: {failure}"
        return rules.error_line(source, rules.MODEL_ERROR, f"no output for this record ({why})")

    @property
    def problem(self) -> Optional[str]:
        """What is wrong with the output beyond a failed job (its own failure reason says that)."""
        if not self.output:
            return None if self.failure else f"the transform job wrote no output for {self.relative}"
        if self.answered == self.records:
            return None
        return f"the transform's output for {self.relative} has {self.answered} lines for {self.records} records"


def output_relatives(output_prefix: str, keys: Iterable[str]) -> Dict[str, str]:
    """The input (relative key) each ``.out`` object below ``output_prefix`` answers."""
    found = {}
    for key in keys:
        if key.startswith(output_prefix) and key.endswith(".out"):
            found[key[len(output_prefix) : -len(".out")]] = key
    return found


def report(plan: Mapping[str, Any], counts: rules.Tally, failure: Optional[str]) -> Dict[str, Any]:
    """The join's result: counts (imgclf_core.batch.tally's) and where the predictions are."""
    return {
        "predictions_uri": plan["predictions_uri"],
        "total": counts.total,
        "classified": counts.classified,
        "failed": counts.failed,
        "skipped": counts.skipped,
        "summary": rules.summary(counts, str(plan["predictions_uri"])),
        "transform_failure": failure or "",
    }
