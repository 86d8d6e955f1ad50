"""Where everything lives in the stage's two buckets. The constructs grant and expire these
prefixes, the Lambdas read and write under them; both take them from here.

Datasets bucket::

    datasets/<name>/<version>/dataset.json     the upload that starts a run
    datasets/<name>/<version>/train/ ...        the channels
    batch/<name>/batch.json                    the upload that starts a batch classification
    batch/<name>/...                           its images, when the request names them relatively
    feedback/<endpoint>/<any name>.jsonl       ground truth for the scheduled monitor: JSON lines
                                               {"inferenceId": ..., "label": ...} (expire after 90 days)

Artifacts bucket::

    training-jobs/<job>/output/model.tar.gz    SageMaker's job output (S3OutputPath)
    checkpoints/<job>/                          spot checkpoints, one prefix per job
    packed/<pack job>/<channel>/                RecordIO written by the Pack step
    validation/<execution>/                     plans and shard results of a fanned-out validation
    evaluations/<job>/evaluation.json           the gate's copy of the job's evaluation
    evaluations/<job>/baseline.json             the gate's copy of the job's drift baseline, when it made one
    batch-jobs/<job>/manifest.json              a batch's inputs, in order (the transform's ManifestFile)
    batch-jobs/<job>/output/<input>.out         the transform job's answer for each input
    batch-jobs/<job>/predictions.jsonl          the joined result, one line per input (imgclf_core.batch)
    captures/<endpoint>/<variant>/YYYY/MM/DD/HH/ the endpoint's data capture (imgclf_core.capture)
    monitoring/<endpoint>/<until>/monitor.json   a scheduled monitor's report of the window ending <until>
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from image_dataset.descriptor import FILE_NAME as DESCRIPTOR  # its upload announces a dataset version

DATASETS = "datasets/"
TRAINING_JOBS = "training-jobs/"
CHECKPOINTS = "checkpoints/"
PACKED = "packed/"
VALIDATION = "validation/"
EVALUATIONS = "evaluations/"
BATCH = "batch/"  # datasets bucket: batch requests and their images
BATCH_JOBS = "batch-jobs/"  # artifacts bucket: a batch's manifest, transform outputs and predictions
CAPTURES = "captures/"  # artifacts bucket: endpoint data capture (request images: kept for 30 days)
MONITORING = "monitoring/"  # artifacts bucket: the scheduled monitor's reports
FEEDBACK = "feedback/"  # datasets bucket: ground-truth labels of captured predictions, by endpoint
BATCH_REQUEST = "batch.json"
# the lifetime of each artifacts prefix: working files go soon, results stay for the retention
WORKING_PREFIXES = {CHECKPOINTS: 14, VALIDATION: 7, CAPTURES: 30}  # days
RESULT_PREFIXES = (TRAINING_JOBS, EVALUATIONS, BATCH_JOBS, MONITORING)
DATASETS_WORKING_PREFIXES = {FEEDBACK: 90}  # days: labels outlive the captures they label


def objects(prefix: str) -> str:
    """The key pattern of every object under ``prefix`` (for grants and policies)."""
    return prefix + "*"


def s3_uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


class DatasetUpload(NamedTuple):
    """A descriptor's key, read: ``datasets/<name>/<version>/dataset.json``."""

    key: str
    name: str
    version: str

    @property
    def prefix(self) -> str:
        """The dataset root: the descriptor's folder, with a trailing slash."""
        return self.key[: -len(DESCRIPTOR)]


class LayoutError(ValueError):
    """A descriptor sits where no dataset version can."""


def descriptor_key(key: str) -> Optional[DatasetUpload]:
    """The dataset version that a descriptor key announces, None for keys that are no
    descriptor, LayoutError for a descriptor at the wrong depth or with a ``.``/``..`` part."""
    if not key.startswith(DATASETS) or not key.endswith("/" + DESCRIPTOR):
        return None
    parts = key[len(DATASETS) : -len(DESCRIPTOR) - 1].split("/")
    if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
        raise LayoutError(f"a descriptor must sit at {DATASETS}<name>/<version>/{DESCRIPTOR}")
    return DatasetUpload(key, parts[0], parts[1])


# descriptors as an EventBridge wildcard (one `*` per key part) and as an IAM resource pattern
DESCRIPTOR_EVENT_PATTERN = f"{DATASETS}*/*/{DESCRIPTOR}"
DESCRIPTOR_OBJECTS = f"{DATASETS}*/{DESCRIPTOR}"


def job_output(bucket: str) -> str:
    """A training job's ``S3OutputPath``: SageMaker writes ``<job>/output/`` under it."""
    return s3_uri(bucket, TRAINING_JOBS.rstrip("/"))


def job_output_key(job: str, what: str = "output.tar.gz") -> str:
    return f"{TRAINING_JOBS}{job}/output/{what}"


def checkpoints(bucket: str, job: str) -> str:
    return s3_uri(bucket, f"{CHECKPOINTS}{job}")


def packed(bucket: str, pack_job: str) -> str:
    return s3_uri(bucket, f"{PACKED}{pack_job}/")


def validation_work(execution: str) -> str:
    return f"{VALIDATION}{execution}/"


def evaluation_key(job: str) -> str:
    return f"{EVALUATIONS}{job}/evaluation.json"


def baseline_key(job: str) -> str:
    """The gate's copy of the job's baseline.json (image_training.baseline), beside its
    evaluation: the Model Registry's DriftCheckBaselines point at it."""
    return f"{EVALUATIONS}{job}/baseline.json"


# batch requests: ``batch/<name>/batch.json``, as an EventBridge wildcard and an IAM resource pattern
BATCH_EVENT_PATTERN = f"{BATCH}*/{BATCH_REQUEST}"
BATCH_REQUEST_OBJECTS = f"{BATCH}*/{BATCH_REQUEST}"
# where a batch's inputs may be: its own folder, or a dataset's (the transform role reads these)
BATCH_INPUT_PREFIXES = (BATCH, DATASETS)


def batch_request_key(key: str) -> Optional[str]:
    """The batch name of a request key ``batch/<name>/batch.json``; None for other keys,
    LayoutError for a request at the wrong depth or with a ``.``/``..`` part."""
    if not key.startswith(BATCH) or not key.endswith("/" + BATCH_REQUEST):
        return None
    parts = key[len(BATCH) : -len(BATCH_REQUEST) - 1].split("/")
    if len(parts) != 1 or not parts[0] or parts[0] in (".", ".."):
        raise LayoutError(f"a batch request must sit at {BATCH}<name>/{BATCH_REQUEST}")
    return parts[0]


def batch_job_prefix(job: str) -> str:
    return f"{BATCH_JOBS}{job}/"


def batch_manifest_key(job: str) -> str:
    return f"{BATCH_JOBS}{job}/manifest.json"


def batch_output_key(job: str, relative: str = "") -> str:
    """The transform's S3OutputPath (``relative`` empty) or the ``.out`` of one input."""
    return f"{BATCH_JOBS}{job}/output/" + (f"{relative}.out" if relative else "")


def batch_predictions_key(job: str) -> str:
    return f"{BATCH_JOBS}{job}/predictions.jsonl"


def captures(bucket: str) -> str:
    """An endpoint config's DataCaptureConfig.DestinationS3Uri."""
    return s3_uri(bucket, CAPTURES.rstrip("/"))


def capture_hour_prefix(endpoint: str, hour_folder: str) -> str:
    """The folder of one hour of an endpoint's captures: ``captures/<endpoint>/<variant>/YYYY/MM/DD/HH/``
    (``hour_folder``: imgclf_core.capture.capture_prefix's ``<endpoint>/<variant>/YYYY/MM/DD/HH``)."""
    if not hour_folder.startswith(endpoint + "/"):
        raise LayoutError(f"{hour_folder} is not a capture folder of {endpoint}")
    return f"{CAPTURES}{hour_folder}/"


def feedback_prefix(endpoint: str) -> str:
    """Where ground-truth label files of ``endpoint`` are uploaded (datasets bucket)."""
    return f"{FEEDBACK}{endpoint}/"


def monitoring_key(endpoint: str, until: str, name: str = "monitor.json") -> str:
    """A scheduled monitor's report: ``monitoring/<endpoint>/<until>/<name>``; ``until`` as
    ``2026-11-30T23-00-00Z`` (no colons in keys)."""
    return f"{MONITORING}{endpoint}/{until}/{name}"
