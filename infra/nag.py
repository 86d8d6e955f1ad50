"""cdk-nag acknowledgements, each with its reason, next to the resource they concern."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge cdk-nag ``rule`` for ``scope`` and everything below it."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_findings(scope: IConstruct, reason: str, *findings: str) -> None:
    """Acknowledge granular findings, e.g. ``AwsSolutions-IAM5[Action::s3:GetObject*]``."""
    for finding in findings:
        acknowledge(scope, finding, reason)


# The wildcard actions of CDK's own grant methods, on resources the grant names exactly
GRANT_ACTIONS = (
    "Action::s3:GetObject*",
    "Action::s3:GetBucket*",
    "Action::s3:List*",
    "Action::s3:Abort*",
    "Action::s3:DeleteObject*",
    "Action::kms:GenerateDataKey*",
    "Action::kms:ReEncrypt*",
)


def acknowledge_grant_actions(scope: IConstruct) -> None:
    acknowledge_findings(
        scope,
        "CDK's grant methods use these action families (read, list, multipart abort, delete of object "
        "versions; KMS data keys and re-encryption); each statement names its bucket prefix or the stage key.",
        *(f"AwsSolutions-IAM5[{a}]" for a in GRANT_ACTIONS),
    )


def wildcard(resource: str) -> str:
    """The finding id of an IAM statement on the wildcard ``resource``."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"


def s3_objects(bucket_name: str, pattern: str) -> str:
    """The finding id of a grant on ``bucket_name/pattern`` (bucket referenced by name)."""
    return wildcard(f"arn:<AWS::Partition>:s3:::{bucket_name}/{pattern}")


def lambda_versions(function: IConstruct) -> str:
    """The finding id of an invoke grant on a function and its versions (``<arn>:*``)."""
    from aws_cdk import Stack

    default = function.node.default_child
    assert default is not None
    return wildcard(f"<{Stack.of(function).get_logical_id(default)}.Arn>:*")  # type: ignore[arg-type]
