"""The static halves of the SageMaker requests the training workflow makes: CreateTrainingJob
(the Train task) and CreateModelPackage (RegisterModel); the planner and the gate fill in
the ``$.``-paths."""

from __future__ import annotations

from typing import Any, Dict

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from imgclf_core.backends import backend, metric_definitions

from .config import StageConfig
from .instances import instance_store_only

# what the serving handlers read (image_training.serving: IMAGE_TYPES, and RECORDIO for a batch
# transform of a .rec); tests/infra/test_registration.py keeps the two equal
INFERENCE_CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image", "application/x-recordio"]
INFERENCE_RESPONSE_TYPES = ["application/json", "application/json;verbose", "application/jsonlines"]


def training_request(stage: StageConfig, *, key: kms.IKey, role: iam.IRole) -> Dict[str, Any]:
    """CreateTrainingJob's static half; the plan (``$.plan``) gives the rest."""
    training = stage.training
    resources: Dict[str, Any] = {
        "InstanceType": training.instance_type,
        "InstanceCount": training.instance_count,
        "VolumeSizeInGB": training.volume_size_gb,
    }
    if not instance_store_only(training.instance_type):
        resources["VolumeKmsKeyId"] = key.key_arn
    stopping: Dict[str, Any] = {"MaxRuntimeInSeconds": training.max_runtime_seconds}
    if training.spot:
        stopping["MaxWaitTimeInSeconds"] = training.max_wait_seconds
    request: Dict[str, Any] = {
        "TrainingJobName.$": "$.plan.TrainingJobName",
        "AlgorithmSpecification": {
            "TrainingImage": stage.image_uri("training"),
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(stage.backend),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": role.role_arn,
        "HyperParameters.$": "$.plan.HyperParameters",
        "InputDataConfig.$": "$.plan.InputDataConfig",
        "OutputDataConfig": {"S3OutputPath.$": "$.plan.S3OutputPath", "KmsKeyId": key.key_arn},
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": training.spot,
        "CheckpointConfig": {"S3Uri.$": "$.plan.CheckpointS3Uri"},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "Tags": stage.request_tags,
    }
    if stage.vpc:
        request["VpcConfig"] = stage.vpc.as_request()
    return request


def package_request(stage: StageConfig, *, baseline: bool) -> Dict[str, Any]:
    """CreateModelPackage: every CustomerMetadataProperties value must be 1-256 characters of
    letters, digits, spaces and _.:/=+-@, so the values from outside the workflow come from
    the planner, which checks them before any job (lambdas/training/logic.py).

    ``baseline``: the model's drift baseline (the gate's copy of baseline.json,
    image_training.baseline) as DriftCheckBaselines.ModelDataQuality.Statistics, for a model
    that has one; a JSONPath request cannot leave a member out, so the workflow registers a
    model without one with the request this makes for ``baseline=False``."""
    request: Dict[str, Any] = {
        "ModelPackageGroupName": stage.model_package_group,
        "ModelPackageDescription.$": "$.gate.reason",
        "ModelApprovalStatus.$": "$.gate.status",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": stage.image_uri("inference"),
                    "ModelDataUrl.$": "$.training.ModelArtifacts.S3ModelArtifacts",
                    "Environment": backend(stage.backend).inference_environment(stage.region),
                }
            ],
            "SupportedContentTypes": INFERENCE_CONTENT_TYPES,
            "SupportedResponseMIMETypes": INFERENCE_RESPONSE_TYPES,
            "SupportedRealtimeInferenceInstanceTypes": [stage.endpoint.instance_type],
        },
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri.$": "$.gate.evaluation_uri"}}
        },
        "CustomerMetadataProperties": {
            "accuracy.$": "$.gate.accuracy",
            "approval.$": "$.gate.approval",
            "execution.$": "$.plan.Metadata.execution",  # the name, made valid by the planner
            "training_job.$": "$.training.TrainingJobName",
            "validation_report.$": "$.validation.report_uri",
        },
    }
    if baseline:
        request["DriftCheckBaselines"] = {
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri.$": "$.gate.baseline_uri"}}
        }
    return request
