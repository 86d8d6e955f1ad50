"""The retries every workflow task shares."""

from __future__ import annotations

from typing import TypeVar

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

THROTTLING = ["ThrottlingException", "SageMaker.ThrottlingException", "SageMaker.AmazonSageMakerException"]

State = TypeVar("State", bound=sfn.TaskStateBase)


def sdk_retry(state: State) -> State:
    """``state`` retrying what an AWS API throttles or refuses for a moment."""
    state.add_retry(errors=THROTTLING, interval=Duration.seconds(5), max_attempts=4, backoff_rate=2.0)
    return state
