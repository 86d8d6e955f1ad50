"""The roles SageMaker assumes: one for the pack job, one for training jobs, one for endpoint
models. Each reads and writes only its prefixes (imgclf_core.s3_layout), uses the stage key,
and pulls only its framework's container, from the registry account in the image's URI."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from imgclf_core.s3_layout import (
    BATCH_INPUT_PREFIXES,
    BATCH_JOBS,
    CAPTURES,
    CHECKPOINTS,
    DATASETS,
    PACKED,
    TRAINING_JOBS,
    objects,
)

from . import arns
from .nag import acknowledge, s3_objects, wildcard, wildcard_arn

VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
]


def _base_role(scope: Construct, id: str, *, key: kms.IKey, image_uri: str, log_path: str, vpc: bool) -> iam.Role:
    """A role for SageMaker jobs or endpoints that run ``image_uri`` and log under
    ``/aws/sagemaker/<log_path>``, with the ENI permissions of a VPC when ``vpc``."""
    role = iam.Role(scope, id, assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    key.grant_encrypt_decrypt(role)
    role.add_to_policy(iam.PolicyStatement(actions=["kms:CreateGrant", "kms:DescribeKey"], resources=[key.key_arn]))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[arns.repository_arn(role, arns.ImageUri.parse(image_uri))],
        )
    )
    role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
    logs = arns.log_group(role, f"/aws/sagemaker/{log_path}:*")
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[logs],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
    )
    if vpc:
        role.add_to_policy(iam.PolicyStatement(actions=VPC_ACTIONS, resources=["*"]))
    acknowledge(
        role,
        wildcard("*"),
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level permissions (the latter is "
        "limited to SageMaker's namespaces by condition); in a VPC, SageMaker's ENI actions take none either.",
    )
    acknowledge(
        role,
        wildcard_arn(role, logs),
        "The log streams SageMaker creates in its own log group for this role's jobs or endpoints.",
    )
    return role


def training_role(
    scope: Construct,
    id: str,
    *,
    key: kms.IKey,
    image_uri: str,
    vpc: bool,
    datasets: s3.IBucket,
    artifacts: s3.IBucket,
) -> iam.Role:
    role = _base_role(scope, id, key=key, image_uri=image_uri, log_path="TrainingJobs", vpc=vpc)
    datasets.grant_read(role, objects(DATASETS))
    artifacts.grant_read_write(role, objects(TRAINING_JOBS))
    artifacts.grant_read_write(role, objects(CHECKPOINTS))
    artifacts.grant_read(role, objects(PACKED))
    acknowledge(role, s3_objects(datasets, objects(DATASETS)), "Training reads any uploaded dataset.")
    acknowledge(role, s3_objects(artifacts, objects(PACKED)), "Training reads the packed channels.")
    for prefix in (TRAINING_JOBS, CHECKPOINTS):
        acknowledge(
            role, s3_objects(artifacts, objects(prefix)), "Jobs write their model, output and checkpoints here."
        )
    return role


def model_role(
    scope: Construct,
    id: str,
    *,
    key: kms.IKey,
    image_uri: str,
    vpc: bool,
    endpoint_name: str,
    artifacts: s3.IBucket,
    capture: bool = False,
) -> iam.Role:
    """The endpoint's models' role; with ``capture``, SageMaker writes the endpoint's data
    capture under captures/ with it (s3:PutObject, and the stage key through S3, which the
    base role's key grant covers: DataCaptureConfig.KmsKeyId is the stage key)."""
    # an endpoint logs to its own group, /aws/sagemaker/Endpoints/<endpoint name>
    role = _base_role(scope, id, key=key, image_uri=image_uri, log_path=f"Endpoints/{endpoint_name}", vpc=vpc)
    artifacts.grant_read(role, objects(TRAINING_JOBS))
    acknowledge(role, s3_objects(artifacts, objects(TRAINING_JOBS)), "Endpoints load model.tar.gz of any job.")
    if capture:
        captured = f"{CAPTURES}{endpoint_name}/*"
        artifacts.grant_put(role, captured)
        acknowledge(role, s3_objects(artifacts, captured), "SageMaker writes the endpoint's capture files by hour.")
    return role


def batch_role(
    scope: Construct,
    id: str,
    *,
    key: kms.IKey,
    image_uri: str,
    vpc: bool,
    datasets: s3.IBucket,
    artifacts: s3.IBucket,
) -> iam.Role:
    """The batch models' role, which their transform jobs run under: it reads the manifest, the
    inputs (batch/ and datasets/ of the datasets bucket) and the model, and writes the outputs
    (with the stage key: TransformOutput.KmsKeyId), nothing else."""
    role = _base_role(scope, id, key=key, image_uri=image_uri, log_path="TransformJobs", vpc=vpc)
    for prefix in BATCH_INPUT_PREFIXES:
        datasets.grant_read(role, objects(prefix))
        acknowledge(role, s3_objects(datasets, objects(prefix)), "A batch classifies images of any request or dataset.")
    artifacts.grant_read(role, objects(TRAINING_JOBS))
    artifacts.grant_read(role, objects(BATCH_JOBS))
    artifacts.grant_put(role, objects(BATCH_JOBS))
    acknowledge(role, s3_objects(artifacts, objects(TRAINING_JOBS)), "Transform jobs load model.tar.gz of any job.")
    acknowledge(role, s3_objects(artifacts, objects(BATCH_JOBS)), "Transform jobs read manifests, write outputs here.")
    return role


def processing_role(
    scope: Construct,
    id: str,
    *,
    key: kms.IKey,
    image_uri: str,
    vpc: bool,
    datasets: s3.IBucket,
    artifacts: s3.IBucket,
) -> iam.Role:
    """The pack job's role: it reads datasets and writes packed channels, nothing else."""
    role = _base_role(scope, id, key=key, image_uri=image_uri, log_path="ProcessingJobs", vpc=vpc)
    datasets.grant_read(role, objects(DATASETS))
    artifacts.grant_put(role, objects(PACKED))
    acknowledge(role, s3_objects(datasets, objects(DATASETS)), "The pack job reads any uploaded dataset.")
    acknowledge(role, s3_objects(artifacts, objects(PACKED)), "The pack job writes the packed channels here.")
    return role


def grant_sync_job(state_machine_role: iam.IRole, kind: str, jobs: str, job_role: iam.IRole) -> None:
    """What Step Functions' optimized ``.sync`` integration does on a state machine's behalf for
    one kind of SageMaker job (``Training``, ``Processing``): create, follow and stop the jobs
    named ``jobs`` (an ARN pattern), the managed EventBridge rule it follows them with, and pass
    the jobs' role. Hand-written: a CustomState gets no generated policy."""
    state_machine_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                f"sagemaker:Create{kind}Job",
                f"sagemaker:Describe{kind}Job",
                f"sagemaker:Stop{kind}Job",
                "sagemaker:AddTags",
            ],
            resources=[jobs],
        )
    )
    state_machine_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[arns.events_rule(state_machine_role, f"StepFunctionsGetEventsForSageMaker{kind}JobsRule")],
        )
    )
    state_machine_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
