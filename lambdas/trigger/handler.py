"""S3 "Object Created" for ``dataset.json`` (through EventBridge, or an S3 notification) ->
check the descriptor -> start the training workflow once per dataset version and config."""

from __future__ import annotations

import json
import os
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgclf_core.environment import TriggerEnvironment
from lambdas.s3_events import uploaded_objects

from .logic import Rejected, parse_upload, workflow_input

logger = Logger()


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    s3 = boto3.client("s3")
    sfn = boto3.client("stepfunctions")
    env = TriggerEnvironment.from_environment(os.environ)
    started, skipped = [], []
    for bucket, key in uploaded_objects(event):
        try:
            upload = parse_upload(bucket, key)
            if upload is None:
                skipped.append(key)
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            run = workflow_input(upload, body, env.backend, env.default_hyperparameters, env.stage_config_hash)
        except Rejected as err:
            logger.warning("upload rejected", extra={"reason": str(err)})
            boto3.client("sns").publish(
                TopicArn=env.alert_topic_arn,
                Subject="imgclf: dataset upload rejected",
                Message=str(err),
            )
            skipped.append(key)
            continue
        try:
            sfn.start_execution(stateMachineArn=env.state_machine_arn, name=run["name"], input=json.dumps(run["input"]))
            logger.info("workflow started", extra={"execution": run["name"], "dataset": upload.prefix})
        except sfn.exceptions.ExecutionAlreadyExists:
            logger.info("already started: a repeated event or the same upload", extra={"execution": run["name"]})
        started.append(run["name"])
    return {"executions": started, "skipped": skipped}
