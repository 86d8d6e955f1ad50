"""The training workflow's Pack step: a SageMaker Processing job (``createProcessingJob.sync``)
that runs ``image_training.pack_job`` in the backend's CPU training container and turns image
channels into RecordIO before the GPU job starts. The code travels as the same
``sourcedir.tar.gz`` as training's; the container unpacks it (network isolation: nothing is
fetched). Hand-written least-privilege IAM, as for the training CustomState."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from . import arns
from .config import TrainingConfig, VpcConfig
from .nag import acknowledge, wildcard_arn
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


def pack_request(
    *,
    key: kms.IKey,
    role: iam.IRole,
    image_uri: str,
    training: TrainingConfig,
    tags: Sequence[Mapping[str, str]],
    vpc: Optional[VpcConfig],
) -> Dict[str, Any]:
    """CreateProcessingJob's static half; the plan (``$.pack``) gives the rest."""
    request: Dict[str, Any] = {
        "ProcessingJobName.$": "$.pack.ProcessingJobName",
        "RoleArn": role.role_arn,
        "AppSpecification": {
            "ImageUri": image_uri,
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
        "Tags": list(tags),
    }
    if vpc:
        request["NetworkConfig"]["VpcConfig"] = vpc.as_request()
    return request


class PackStep(Construct):
    """``self.state``: the Pack task (retries throttling; the caller adds the catch). Jobs are
    named ``<job_prefix>-...`` (the planner's names) and run ``image_uri`` under ``role``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        role: iam.IRole,
        image_uri: str,
        training: TrainingConfig,
        job_prefix: str,
        tags: Sequence[Mapping[str, str]],
        vpc: Optional[VpcConfig] = None,
    ) -> None:
        super().__init__(scope, id)
        self.role, self.jobs = role, arns.sagemaker(self, "processing-job", f"{job_prefix}-*")
        request = pack_request(key=key, role=role, image_uri=image_uri, training=training, tags=tags, vpc=vpc)
        self.state = sfn.CustomState(
            self,
            "PackDataset",
            state_json={
                "Type": "Task",
                "Resource": arns.states_integration(self, "sagemaker", "createProcessingJob.sync"),
                "Parameters": request,
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
        grant_sync_job(state_machine_role, "Processing", self.jobs, self.role)
        acknowledge(
            state_machine_role, wildcard_arn(self, self.jobs), "Pack jobs are named per run under the stage prefix."
        )
