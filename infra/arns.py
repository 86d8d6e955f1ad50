"""Every ARN the constructs name, built one way: ``Stack.format_arn``, so the partition is the
stack's ``AWS::Partition`` and the region and account are the stack's (the stage's). Nothing
here assembles an intrinsic function by hand."""

from __future__ import annotations

from typing import Optional

from aws_cdk import ArnFormat, Fn, Stack
from constructs import IConstruct

from imgclf_core.ecr import ImageUri


def arn(
    scope: IConstruct,
    service: str,
    resource: str,
    name: Optional[str] = None,
    *,
    colon: bool = False,
    region: Optional[str] = None,
    account: Optional[str] = None,
) -> str:
    """``arn:<partition>:<service>:<region>:<account>:<resource>/<name>`` (``:<name>`` when
    ``colon``; just ``<resource>`` without a name) in ``scope``'s stack. ``region`` and
    ``account`` default to the stack's; ``""`` leaves them empty (S3, IAM, integrations)."""
    if name is None:
        form = ArnFormat.NO_RESOURCE_NAME
    else:
        form = ArnFormat.COLON_RESOURCE_NAME if colon else ArnFormat.SLASH_RESOURCE_NAME
    return Stack.of(scope).format_arn(
        service=service, resource=resource, resource_name=name, arn_format=form, region=region, account=account
    )


def sagemaker(scope: IConstruct, kind: str, name: str) -> str:
    """A SageMaker resource of the stage: ``kind`` is ``endpoint``, ``model``, ``training-job``..."""
    return arn(scope, "sagemaker", kind, name)


def log_group(scope: IConstruct, name: str) -> str:
    """A CloudWatch Logs group (``name`` may end in ``:*``, its streams)."""
    return arn(scope, "logs", "log-group", name, colon=True)


def alarm(scope: IConstruct, name: str) -> str:
    return arn(scope, "cloudwatch", "alarm", name, colon=True)


def events_rule(scope: IConstruct, name: str) -> str:
    return arn(scope, "events", "rule", name)


def state_machine_executions(scope: IConstruct, name: str) -> str:
    """The executions of the state machine ``name`` (a pattern when it ends in ``*``)."""
    return arn(scope, "states", "execution", name, colon=True)


def states_integration(scope: IConstruct, service: str, api: str) -> str:
    """The ``Resource`` of an optimized Step Functions integration, e.g.
    ``arn:<partition>:states:::sagemaker:createTrainingJob.sync``."""
    return arn(scope, "states", service, api, colon=True, region="", account="")


def service_linked_role(scope: IConstruct, path: str) -> str:
    """``arn:<partition>:iam::<account>:role/aws-service-role/<path>``."""
    return arn(scope, "iam", "role", f"aws-service-role/{path}", region="")


def any_resource(scope: IConstruct, service: str) -> str:
    """``arn:<partition>:<service>:<region>:<account>:*``: every resource of a service in the stage."""
    return arn(scope, service, "*")


def last_arn_part(value: str) -> str:
    """The name in a ``...:stateMachine:<name>`` ARN (a token: its seventh ``:`` part)."""
    return Fn.select(6, Fn.split(":", value))


def repository_arn(scope: IConstruct, image: ImageUri) -> str:
    """The ECR repository of an image, in the registry's own account and region."""
    return arn(scope, "ecr", "repository", image.repository, region=image.region, account=image.account)
