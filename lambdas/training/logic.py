"""The dynamic half of a CreateTrainingJob request (the static half, from the deployment
config, is in the state machine): job name, hyperparameters, input channels and output paths."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, Iterable, List, Mapping

from image_dataset.naming import RULE, metadata_value, metadata_value_problem
from image_training.schemas import DISTRIBUTION_FLAGS
from lambdas.validate.logic import options_for

MAX_JOB_NAME = 63
CHANNEL_FOLDERS = ("train", "validation", "train_lst", "validation_lst")
CODE_CHANNEL = "code"


def job_name(prefix: str, execution: str, attempt: int) -> str:
    """Unique per execution and attempt, at most 63 characters of [a-zA-Z0-9-]."""
    digest = hashlib.sha256(execution.encode()).hexdigest()[:8]
    tail = f"-{digest}-{attempt}"
    readable = re.sub(r"[^A-Za-z0-9]+", "-", execution).strip("-")
    room = MAX_JOB_NAME - len(prefix) - 1 - len(tail)
    middle = readable[: max(room, 0)].strip("-")
    return f"{prefix}-{middle}{tail}" if middle else f"{prefix}{tail}"


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
            channels.append(s3_channel(name, f"s3://{bucket}/{prefix}{name}/"))
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
    settings: Mapping[str, Any],
) -> Dict[str, Any]:
    """The Pack step: needed when a channel is not RecordIO. Its CreateProcessingJob parts (job
    name, inputs, outputs, arguments) and where each packed channel will be."""
    registry_metadata(execution, validation)  # fail before the job, not at registration
    images = sorted(name for name, c in validation.get("channels", {}).items() if c["format"] != "recordio")
    if not images:
        return {"needed": False, "channels": {}}
    name = job_name(f"{settings['prefix']}-pack", execution, 1)
    output = f"s3://{settings['artifact_bucket']}/packed/{name}/"

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
    options = options_for(settings["backend"], hyperparameters, dataset.get("descriptor") or {})
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
            s3_input("dataset", f"s3://{dataset['bucket']}/{dataset['prefix']}"),
            s3_input(CODE_CHANNEL, settings["code_uri"]),
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


def hyperparameters(
    effective: Mapping[str, str],
    from_data: Mapping[str, str],
    program: str,
    instance_count: int,
    backend: str,
    code_uri: str,
) -> Dict[str, str]:
    """Config defaults and allowed overrides, then the data's values, then script mode's keys
    (JSON-encoded, as the SageMaker SDK writes them)."""
    values = {**effective, **from_data}
    values["sagemaker_program"] = json.dumps(program)
    values["sagemaker_submit_directory"] = json.dumps(
        f"/opt/ml/input/data/{CODE_CHANNEL}/{code_uri.rsplit('/', 1)[-1]}"
    )
    if instance_count > 1:
        values[DISTRIBUTION_FLAGS[backend]] = "true"
    return values


def plan(
    execution: str,
    attempt: int,
    dataset: Mapping[str, Any],
    effective: Mapping[str, str],
    validation: Mapping[str, Any],
    folders: Iterable[str],
    settings: Mapping[str, Any],
    packed: Mapping[str, str] = {},
) -> Dict[str, Any]:
    """Everything of the request that depends on this run. ``settings``: prefix, backend,
    program, instance_count, code_uri, artifact_bucket; ``packed``: the Pack step's channels."""
    bucket = settings["artifact_bucket"]
    name = job_name(settings["prefix"], execution, attempt)
    return {
        "TrainingJobName": name,
        "HyperParameters": hyperparameters(
            effective,
            validation.get("hyperparameters", {}),
            settings["program"],
            int(settings["instance_count"]),
            settings["backend"],
            settings["code_uri"],
        ),
        "InputDataConfig": input_channels(
            dataset["bucket"],
            dataset["prefix"],
            folders,
            settings["code_uri"],
            packed,
            validation.get("channels", {}),
        ),
        "S3OutputPath": f"s3://{bucket}/training-jobs",
        # one per execution: a spot job resumes from it, a retried attempt starts clean
        "CheckpointS3Uri": f"s3://{bucket}/checkpoints/{name}",
        "attempt": attempt,
        "Metadata": registry_metadata(execution, validation),
    }
