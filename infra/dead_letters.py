"""A KMS-encrypted, SSL-only queue that keeps the events an EventBridge target could not take."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .nag import acknowledge


def dead_letter_queue(scope: Construct, id: str, key: kms.IKey) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(queue, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue.")
    return queue
