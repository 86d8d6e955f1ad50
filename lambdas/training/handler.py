"""The workflow's PlanPacking and PlanTraining steps: the run-dependent parts of
CreateProcessingJob (packing image channels) and CreateTrainingJob."""

from __future__ import annotations

import os
from typing import Any, Dict

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgclf_core.environment import PlannerEnvironment

from .logic import pack_plan, plan

logger = Logger()


@logger.inject_lambda_context
def handler(event: Dict[str, Any], context: LambdaContext) -> Dict[str, Any]:
    dataset = event["dataset"]
    settings = PlannerEnvironment.from_environment(os.environ)
    if event.get("step") == "pack":
        packing = pack_plan(event["execution"], dataset, event["hyperparameters"], event["validation"], settings)
        logger.info("packing planned", extra={"job": packing.get("ProcessingJobName"), "needed": packing["needed"]})
        return packing
    listing = boto3.client("s3").list_objects_v2(Bucket=dataset["bucket"], Prefix=dataset["prefix"], Delimiter="/")
    folders = [p["Prefix"][len(dataset["prefix"]) :].rstrip("/") for p in listing.get("CommonPrefixes", [])]
    result = plan(
        event["execution"],
        int(event.get("attempt", 1)),
        dataset,
        event["hyperparameters"],
        event["validation"],
        folders,
        settings,
        (event.get("pack") or {}).get("channels", {}),
    )
    logger.info("training planned", extra={"job": result["TrainingJobName"]})
    return result
