"""The dynamic half of a CreateTrainingJob request (the static half, from the deployment
config, is in the state machine): job name, hyperparameters, input channels and output paths."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping

from image_dataset.naming import RULE, metadata_value, metadata_value_problem
from imgclf_core import s3_layout
from imgclf_core.environment import PlannerEnvironment
from imgclf_core.plan import CODE_CHANNEL, code_channel_path, job_hyperparameters, job_name, validation_options

CHANNEL_FOLDERS = ("train", "validation", "train_lst", "validation_lst")


def s3_channel(name: str, uri: str, input_mode: str = "File") -> Dict[str, Any]:
    return {
        "ChannelName": name,
        "InputMode": input_mode,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
    }


def input_channels(
    bucket: str,
    prefix: str,
    folders: Iterable[str],
    code_uri: str,
    packed: Mapping[str, str],
    validated: Iterable[str] = (),
) -> List[Dict[str, Any]]:
    """The dataset's channel folders that exist (a packed channel from the Pack step's output,
    without its image list), then the code channel. Every ``validated`` channel must be one of
    them: RecordIO files at the dataset's root (valid locally, where a channel may be a file)
    have no folder that a training channel can name."""
    present = set(folders)
    for name in validated:
        if name not in packed and name not in present:
            raise ValueError(
                f"the {name} channel's RecordIO files are at the dataset's root, s3://{bucket}/{prefix}; "
                f"a training channel is a folder: upload them under {prefix}{name}/ (docs/dataset-formats.md)"
            )
    channels = []
    for name in CHANNEL_FOLDERS:
        if name in packed:
            channels.append(s3_channel(name, packed[name]))
        elif name in present and name.removesuffix("_lst") not in packed:
            channels.append(s3_channel(name, s3_layout.s3_uri(bucket, f"{prefix}{name}/")))
    return channels + [s3_channel(CODE_CHANNEL, code_uri)]


def registry_metadata(execution: str, validation: Mapping[str, Any]) -> Dict[str, str]:
    """The model package's ``CustomerMetadataProperties`` values that come from outside the
    workflow, checked before any job runs: the execution name, made valid (a run started by hand
    may have characters SageMaker refuses there), and the validation report's URI, which must
    stay the object's name (a dataset that the upload checks did not see fails here)."""
    report = validation.get("report_uri")
    problem = metadata_value_problem(report) if report else None
    if problem:
        raise ValueError(f"the model registry cannot record the validation report {report} ({problem}); {RULE}")
    return {"execution": metadata_value(execution)}


PACK_INPUT = "/opt/ml/processing/input"
PACK_OUTPUT = "/opt/ml/processing/output"


def pack_plan(
    execution: str,
    dataset: Mapping[str, Any],
    hyperparameters: Mapping[str, str],
    validation: Mapping[str, Any],
    settings: PlannerEnvironment,
) -> Dict[str, Any]:
    """The Pack step: needed when a channel is not RecordIO. Its CreateProcessingJob parts (job
    name, inputs, outputs, arguments) and where each packed channel will be."""
    registry_metadata(execution, validation)  # fail before the job, not at registration
    images = sorted(name for name, c in validation.get("channels", {}).items() if c["format"] != "recordio")
    if not images:
        return {"needed": False, "channels": {}}
    name = job_name(f"{settings.resource_prefix}-pack", execution, 1)
    output = s3_layout.packed(settings.artifact_bucket, name)

    def s3_input(input_name: str, uri: str) -> Dict[str, Any]:
        return {
            "InputName": input_name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": f"{PACK_INPUT}/{input_name}",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        }

    # the pack job reads the dataset with the options the validator used
    options = validation_options(settings.backend, hyperparameters, dataset.get("descriptor") or {})
    arguments = ["--input", f"{PACK_INPUT}/dataset", "--output", PACK_OUTPUT]
    if options.format:
        arguments += ["--format", options.format]
    if options.label_attribute:
        arguments += ["--label-attribute", options.label_attribute]
    if options.multi_label is not None:
        arguments += ["--multi-label", str(int(options.multi_label))]
    return {
        "needed": True,
        "ProcessingJobName": name,
        "ProcessingInputs": [
            s3_input("dataset", s3_layout.s3_uri(dataset["bucket"], dataset["prefix"])),
            s3_input(CODE_CHANNEL, settings.code_uri),
        ],
        "Outputs": [
            {
                "OutputName": "packed",
                "S3Output": {"S3Uri": output, "LocalPath": PACK_OUTPUT, "S3UploadMode": "EndOfJob"},
            }
        ],
        "Arguments": arguments,
        "channels": {channel: f"{output}{channel}/" for channel in images},
    }


def plan(
    execution: str,
    attempt: int,
    dataset: Mapping[str, Any],
    effective: Mapping[str, str],
    validation: Mapping[str, Any],
    folders: Iterable[str],
    settings: PlannerEnvironment,
    packed: Mapping[str, str] = {},
) -> Dict[str, Any]:
    """Everything of the request that depends on this run; ``packed``: the Pack step's channels.
    The hyperparameters: the effective ones (stage defaults, then the descriptor's), the data's
    from the validation summary, then script mode's keys."""
    bucket = settings.artifact_bucket
    name = job_name(settings.resource_prefix, execution, attempt)
    return {
        "TrainingJobName": name,
        "HyperParameters": job_hyperparameters(
            effective,
            validation.get("hyperparameters", {}),
            settings.backend,
            code_channel_path(settings.code_uri),
            settings.instance_count,
        ),
        "InputDataConfig": input_channels(
            dataset["bucket"],
            dataset["prefix"],
            folders,
            settings.code_uri,
            packed,
            validation.get("channels", {}),
        ),
        "S3OutputPath": s3_layout.job_output(bucket),
        # one per execution: a spot job resumes from it, a retried attempt starts clean
        "CheckpointS3Uri": s3_layout.checkpoints(bucket, name),
        "attempt": attempt,
        "Metadata": registry_metadata(execution, validation),
    }
