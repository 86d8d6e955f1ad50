"""cdk-nag acknowledgements, each with its reason, next to the resource they concern."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
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


def flatten(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag names it in a finding (its
    ``flattenCfnReference``): joins joined, ``Ref`` as ``<name>``, ``GetAtt`` as
    ``<logical.attribute>``, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return re.sub(r"\$\{", "<", value).replace("}", ">")  # Fn::Sub's syntax
    if isinstance(value, dict) and value.get("Fn::Join"):
        delimiter, items = value["Fn::Join"]
        return str(delimiter).join(flatten(item) for item in items)
    if isinstance(value, dict) and value.get("Fn::Sub"):
        return flatten(value["Fn::Sub"])
    if isinstance(value, dict) and value.get("Fn::GetAtt"):
        resource, attribute = value["Fn::GetAtt"]
        return f"<{flatten(resource)}.{flatten(attribute)}>"
    if isinstance(value, dict) and value.get("Fn::ImportValue"):
        return flatten(value["Fn::ImportValue"])
    if isinstance(value, dict) and value.get("Ref"):
        return f"<{flatten(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"))


def rendered(scope: IConstruct, value: str) -> str:
    """How cdk-nag names ``value`` (an ARN, tokens and all) of ``scope``'s stack in a finding."""
    return flatten(Stack.of(scope).resolve(value))


def wildcard(resource: str) -> str:
    """The finding id of an IAM statement on the wildcard ``resource`` (as cdk-nag renders it)."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"


def wildcard_arn(scope: IConstruct, arn: str) -> str:
    """The finding id of an IAM statement on ``arn``, an ARN of ``scope``'s stack (infra.arns)."""
    return wildcard(rendered(scope, arn))


def s3_objects(bucket: s3.IBucket, pattern: str) -> str:
    """The finding id of a grant on ``pattern`` (e.g. ``s3_layout.objects(DATASETS)``) of ``bucket``."""
    return wildcard_arn(bucket, bucket.arn_for_objects(pattern))


def managed_policy(scope: IConstruct, name: str) -> str:
    """The finding id of a role that uses the AWS managed policy ``name``."""
    arn = iam.ManagedPolicy.from_aws_managed_policy_name(name).managed_policy_arn
    return f"AwsSolutions-IAM4[Policy::{rendered(scope, arn)}]"


def lambda_versions(function: lambda_.IFunction) -> str:
    """The finding id of an invoke grant on a function and its versions (``<arn>:*``)."""
    return wildcard_arn(function, f"{function.function_arn}:*")
