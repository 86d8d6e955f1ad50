"""cdk-nag acknowledgements, each with its reason, next to the resource they concern."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge cdk-nag ``rule`` for ``scope`` and everything below it."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
