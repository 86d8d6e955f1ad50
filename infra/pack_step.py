"""The training workflow's Pack step: a SageMaker Processing job (``createProcessingJob.sync``)
that runs ``image_training.pack_job`` in the backend's CPU training container and turns image
channels into RecordIO before the GPU job starts. The code travels as the same
``sourcedir.tar.gz`` as training's; the container unpacks it (network isolation: nothing is
fetched). Hand-written least-privilege IAM, as for the training CustomState."""

from __future__ import annotations

from typing import Any, Dict

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from app.config import StageConfig

from .nag import acknowledge, wildcard
from .sagemaker_roles import grant_sync_job

CODE_DIR = "/opt/ml/processing/input/code"
# Unpack the code input, then run the pack job with the plan's arguments ("$@"). The archive is
# taken whatever its name: CDK stages sourcedir.tar.gz under the key <hash>.gz (it keeps only the
# last extension) and SageMaker downloads it under that name. An empty folder leaves the glob
# unexpanded, and tar fails naming it. Each string is at most 256 characters (the API's limit).
ENTRYPOINT = [
    "/bin/sh",
    "-c",
    f'set -e; mkdir -p /tmp/imgclf; for a in {CODE_DIR}/*; do tar -xzf "$a" -C /tmp/imgclf; done; '
    'cd /tmp/imgclf; exec python3 -m image_training.pack_job "$@"',
    "pack_job",
]


def pack_request(stage: StageConfig, key: kms.IKey, role: iam.IRole) -> Dict[str, Any]:
    """CreateProcessingJob's static half; the plan (``$.pack``) gives the rest."""
    training = stage.training
    request: Dict[str, Any] = {
        "ProcessingJobName.$": "$.pack.ProcessingJobName",
        "RoleArn": role.role_arn,
        "AppSpecification": {
            "ImageUri": stage.image_uri("processing"),
            "ContainerEntrypoint": ENTRYPOINT,
            "ContainerArguments.$": "$.pack.Arguments",
        },
        "ProcessingInputs.$": "$.pack.ProcessingInputs",
        "ProcessingOutputConfig": {"Outputs.$": "$.pack.Outputs", "KmsKeyId": key.key_arn},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": training.pack_instance_type,
                "VolumeSizeInGB": training.volume_size_gb,
                "VolumeKmsKeyId": key.key_arn,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_seconds},
        "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
        "Tags": stage.request_tags,
    }
    if stage.vpc:
        request["NetworkConfig"]["VpcConfig"] = stage.vpc.as_request()
    return request


class PackStep(Construct):
    """``self.state``: the Pack task (retries throttling; the caller adds the catch)."""

    def __init__(self, scope: Construct, id: str, *, stage: StageConfig, key: kms.IKey, role: iam.IRole) -> None:
        super().__init__(scope, id)
        self.stage, self.role = stage, role
        self.state = sfn.CustomState(
            self,
            "PackDataset",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::sagemaker:createProcessingJob.sync",
                "Parameters": pack_request(stage, key, role),
                "ResultSelector": {
                    "ProcessingJobName.$": "$.ProcessingJobName",
                    "ProcessingJobArn.$": "$.ProcessingJobArn",
                },
                "ResultPath": "$.pack_job",
            },
        )
        self.state.add_retry(
            errors=["ThrottlingException", "SageMaker.ThrottlingException"],
            interval=Duration.seconds(30),
            max_attempts=3,
            backoff_rate=2.0,
        )

    def grant(self, state_machine_role: iam.IRole) -> None:
        """What the .sync integration does on the state machine's behalf."""
        stage = self.stage
        jobs = f"arn:aws:sagemaker:{stage.region}:{stage.account}:processing-job/{stage.prefix}-pack-*"
        grant_sync_job(state_machine_role, self.stage, "Processing", jobs, self.role)
        acknowledge(state_machine_role, wildcard(jobs), "Pack jobs are named per run under the stage prefix.")
