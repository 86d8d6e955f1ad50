"""The stage configuration: typed, checked, and a bad value names its key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict

import pytest

from infra.config import ConfigError, parse_stage, parse_stages

from .conftest import ROOT

BASE: Dict[str, Any] = {"account": "123456789012", "region": "eu-west-1"}


def test_defaults_and_image_uris_resolve_offline() -> None:
    stage = parse_stage("dev", BASE)
    assert stage.training.instance_type == "ml.p3.2xlarge" and stage.endpoint.instance_type == "ml.m5.xlarge"
    assert stage.image_uri("training").endswith("mxnet-training:1.9.0-gpu-py38")
    assert "eu-west-1" in stage.image_uri("inference")
    tf = parse_stage(
        "prod",
        {
            **BASE,
            "backend": "tensorflow",
            "training": {"instance_type": "ml.g5.2xlarge"},
            "endpoint": {"instance_type": "ml.g4dn.xlarge"},
        },
    )
    assert "tensorflow-training:2.21-gpu-py312" in tf.image_uri("training")
    assert "tensorflow-inference:2.20-gpu" in tf.image_uri("inference")
    assert "tensorflow-training:2.21-cpu-py312" in tf.image_uri("processing")  # the pack job: CPU


@pytest.mark.parametrize(
    "change, key",
    [
        ({"account": "12"}, "dev.account"),
        ({"region": "mars"}, "dev.region"),
        ({"backend": "pytorch"}, "dev.backend"),
        ({"training": {"instance_type": "ml.c5.xlarge"}}, "dev.training.instance_type"),
        ({"training": {"instance_count": 0}}, "dev.training.instance_count"),
        (
            {"training": {"spot": True, "max_runtime_seconds": 100, "max_wait_seconds": 50}},
            "dev.training.max_wait_seconds",
        ),
        ({"training": {"gpus": 2}}, "dev.training.gpus"),
        ({"training": {"pack_instance_type": "ml.p3.2xlarge"}}, "dev.training.pack_instance_type"),
        ({"endpoint": {"instance_type": "ml.p3.2xlarge"}}, "dev.endpoint.instance_type"),
        ({"validation": {"shard_mb": 16}}, "dev.validation.shard_mb"),
        ({"validation": {"shard_images": 50000}}, "dev.validation.shard_images"),
        ({"validation": {"max_concurrency": 0}}, "dev.validation.max_concurrency"),
        ({"validation": {"shards": 2}}, "dev.validation.shards"),
        ({"endpoint": {"min_instances": 3, "max_instances": 2}}, "dev.endpoint.max_instances"),
        ({"hyperparameters": {"epochs": "zero"}}, "dev.hyperparameters.epochs"),
        ({"hyperparameters": {"num_classes": "3"}}, "dev.hyperparameters.num_classes"),
        ({"hyperparameters": {"sagemaker_program": "x"}}, "dev.hyperparameters.sagemaker_program"),
        ({"hyperparameters": {"model_name": "vgg16"}}, "dev.hyperparameters.model_name"),
        ({"approval": "sometimes"}, "dev.approval"),
        ({"accuracy_threshold": 2}, "dev.accuracy_threshold"),
        ({"alert_email": "nobody"}, "dev.alert_email"),
        ({"vpc": {"subnet_ids": ["x"], "security_group_ids": ["sg-1"]}}, "dev.vpc.subnet_ids"),
        ({"api_auth": "none"}, "dev.api_auth"),
        ({"colour": "blue"}, "dev.colour"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_values_name_their_key(change: Dict[str, Any], key: str) -> None:
    raw = {**BASE, **change}
    if "model_name" in json.dumps(change):
        raw["backend"] = "mxnet"
    with pytest.raises(ConfigError) as caught:
        parse_stage("dev", raw)
    assert caught.value.key == f"imgclf:stages.{key}", str(caught.value)


def test_stage_names_and_empty_context() -> None:
    with pytest.raises(ConfigError, match="stage name"):
        parse_stage("Dev_1", BASE)
    with pytest.raises(ConfigError, match="at least one stage"):
        parse_stages({})


def test_bad_config_stops_synth_with_the_key_and_no_traceback(tmp_path: Any) -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["imgclf:stages"]["dev"]["endpoint"]["instance_type"] = "ml.t2.medium"
    env = dict(os.environ, CDK_CONTEXT_JSON=json.dumps(context), CDK_OUTDIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "infra.app"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "imgclf:stages.dev.endpoint.instance_type: 'ml.t2.medium'" in done.stderr
    assert "Traceback" not in done.stderr
