"""The roles SageMaker assumes: one for the pack job, one for training jobs, one for endpoint
models. Each reads and writes only its prefixes, uses the stage key, and pulls only its
framework's container."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app.config import StageConfig

from .nag import acknowledge, s3_objects, wildcard


def _base_role(
    scope: Construct, id: str, stage: StageConfig, key: kms.IKey, scope_name: str, log_path: str
) -> iam.Role:
    region, account = stage.region, stage.account
    role = iam.Role(scope, id, assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    key.grant_encrypt_decrypt(role)
    role.add_to_policy(iam.PolicyStatement(actions=["kms:CreateGrant", "kms:DescribeKey"], resources=[key.key_arn]))
    # <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>: the DLC account differs by region
    registry, _, path = stage.image_uri(scope_name).partition("/")
    registry_account, repository = registry.split(".")[0], path.split(":")[0]
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[f"arn:aws:ecr:{region}:{registry_account}:repository/{repository}"],
        )
    )
    role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/{log_path}:*"],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
    )
    if stage.vpc:
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
    acknowledge(
        role,
        wildcard("*"),
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level permissions (the latter is "
        "limited to SageMaker's namespaces by condition); in a VPC, SageMaker's ENI actions take none either.",
    )
    acknowledge(
        role,
        wildcard(f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/{log_path}:*"),
        "The log streams SageMaker creates in its own log group for this role's jobs or endpoints.",
    )
    return role


def training_role(
    scope: Construct, id: str, stage: StageConfig, key: kms.IKey, datasets: s3.IBucket, artifacts: s3.IBucket
) -> iam.Role:
    role = _base_role(scope, id, stage, key, "training", "TrainingJobs")
    datasets.grant_read(role, "datasets/*")
    artifacts.grant_read_write(role, "training-jobs/*")
    artifacts.grant_read_write(role, "checkpoints/*")
    artifacts.grant_read(role, "packed/*")
    acknowledge(role, s3_objects(stage.datasets_bucket, "datasets/*"), "Training reads any uploaded dataset.")
    acknowledge(role, s3_objects(stage.artifacts_bucket, "packed/*"), "Training reads the packed channels.")
    for prefix in ("training-jobs/*", "checkpoints/*"):
        acknowledge(
            role, s3_objects(stage.artifacts_bucket, prefix), "Jobs write their model, output and checkpoints here."
        )
    return role


def model_role(scope: Construct, id: str, stage: StageConfig, key: kms.IKey, artifacts: s3.IBucket) -> iam.Role:
    # an endpoint logs to its own group, /aws/sagemaker/Endpoints/<endpoint name>
    role = _base_role(scope, id, stage, key, "inference", f"Endpoints/{stage.endpoint_name}")
    artifacts.grant_read(role, "training-jobs/*")
    acknowledge(role, s3_objects(stage.artifacts_bucket, "training-jobs/*"), "Endpoints load model.tar.gz of any job.")
    return role


def processing_role(
    scope: Construct, id: str, stage: StageConfig, key: kms.IKey, datasets: s3.IBucket, artifacts: s3.IBucket
) -> iam.Role:
    """The pack job's role: it reads datasets and writes packed channels, nothing else."""
    role = _base_role(scope, id, stage, key, "processing", "ProcessingJobs")
    datasets.grant_read(role, "datasets/*")
    artifacts.grant_put(role, "packed/*")
    acknowledge(role, s3_objects(stage.datasets_bucket, "datasets/*"), "The pack job reads any uploaded dataset.")
    acknowledge(role, s3_objects(stage.artifacts_bucket, "packed/*"), "The pack job writes the packed channels here.")
    return role


def grant_sync_job(
    state_machine_role: iam.IRole, stage: StageConfig, kind: str, jobs: str, job_role: iam.IRole
) -> None:
    """What Step Functions' optimized ``.sync`` integration does on a state machine's behalf for
    one kind of SageMaker job (``Training``, ``Processing``): create, follow and stop the jobs
    named ``jobs`` (an ARN pattern), the managed EventBridge rule it follows them with, and pass
    the jobs' role. Hand-written: a CustomState gets no generated policy."""
    region, account = stage.region, stage.account
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
            resources=[f"arn:aws:events:{region}:{account}:rule/StepFunctionsGetEventsForSageMaker{kind}JobsRule"],
        )
    )
    state_machine_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
