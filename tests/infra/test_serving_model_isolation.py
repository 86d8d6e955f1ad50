"""The deployment workflow's CreateModel request (DeploymentWorkflow._model_request): the serving
container runs with network isolation, under the model role, from the approved package, tagged
with the stage, and inside the stage's VPC when it has one. The request builder is called
directly, without synthesizing the app."""

from __future__ import annotations

from types import SimpleNamespace

from infra.config import TAG, StageConfig, VpcConfig
from infra.deployment_workflow import DeploymentWorkflow

ROLE = "arn:aws:iam::111111111111:role/model"


def model_request(stage: StageConfig) -> dict:
    workflow = SimpleNamespace(model_role=SimpleNamespace(role_arn=ROLE))
    return DeploymentWorkflow._model_request(workflow, stage)  # type: ignore[arg-type]


def test_create_model_request_isolates_the_serving_container() -> None:
    request = model_request(StageConfig(name="dev", account="111111111111", region="eu-west-1"))
    assert request["EnableNetworkIsolation"] is True
    assert request == {
        "ModelName.$": "$.plan.model_name",
        "ExecutionRoleArn": ROLE,
        "Containers": [{"ModelPackageName.$": "$.plan.model_package_arn"}],
        "EnableNetworkIsolation": True,
        "Tags": [{"Key": TAG, "Value": "dev"}],
    }


def test_create_model_request_keeps_isolation_inside_a_vpc() -> None:
    vpc = VpcConfig(subnet_ids=("subnet-1", "subnet-2"), security_group_ids=("sg-1",))
    stage = StageConfig(name="prod", account="111111111111", region="eu-west-1", vpc=vpc)
    request = model_request(stage)
    assert request["EnableNetworkIsolation"] is True
    assert request["VpcConfig"] == vpc.as_request()
