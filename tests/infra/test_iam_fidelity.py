"""The IAM and KMS fidelity layer: the evaluator's semantics, the calls AWS services make on
their own (EventBridge, CloudWatch Logs, API Gateway), the defects it was built to catch, and a
planted defect caught in a workflow run (every workflow test also fails on any denied call:
see asl_harness.py)."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, List

import pytest

from .asl_harness import WorkflowHarness
from .aws_calls import Calls, deliveries
from .iam_model import ACCOUNT, KEY_ARN, REGION, ROOT, Call, PolicyModel, World, action_details
from .test_workflow import upload_dataset

Templates = Dict[str, Dict[str, Any]]


def _role(world: World, fragment: str) -> str:
    (arn,) = {
        world.attrs[stack, logical, "Arn"]
        for stack, logical, _ in world.resources_of_type("AWS::IAM::Role")
        if fragment in logical
    }
    return arn


def _planner_env(world: World, name: str) -> str:
    for stack, logical, resource in world.resources_of_type("AWS::Lambda::Function"):
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if name in variables and "Planner" in logical:
            return str(world.resolve(stack, variables[name]))
    raise KeyError(name)


# -- the evaluator itself, on a small app ------------------------------------------------------


def _app(statements: List[Dict[str, Any]], key_statements: List[Dict[str, Any]]) -> PolicyModel:
    templates = {
        "S": {
            "Resources": {
                "R": {"Type": "AWS::IAM::Role", "Properties": {}},
                "P": {
                    "Type": "AWS::IAM::Policy",
                    "Properties": {"PolicyDocument": {"Statement": statements}, "Roles": [{"Ref": "R"}]},
                },
                "K": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": key_statements}}},
            }
        }
    }
    return PolicyModel(World(templates))


ROLE = f"arn:aws:iam::{ACCOUNT}:role/S-R"
TRUST_ACCOUNT = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}


def test_evaluation_follows_iam_rules() -> None:
    allow = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/data/*"}
    deny = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/data/secret*"}
    listing = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::b",
        "Condition": {"StringLike": {"s3:prefix": ["data/*"]}},
    }
    model = _app([allow, deny, listing], [TRUST_ACCOUNT])
    assert model.decide(Call(ROLE, "s3:getobject", "arn:aws:s3:::b/data/x", "t")) is None  # actions: any case
    assert "explicitly denied" in str(model.decide(Call(ROLE, "s3:GetObject", "arn:aws:s3:::b/data/secret1", "t")))
    assert model.decide(Call(ROLE, "s3:GetObject", "arn:aws:s3:::b/other", "t"))
    assert model.decide(Call(ROLE, "s3:ListBucket", "arn:aws:s3:::b", "t", {"s3:prefix": "data/train/"})) is None
    assert model.decide(Call(ROLE, "s3:ListBucket", "arn:aws:s3:::b", "t", {"s3:prefix": "other/"}))
    assert model.decide(Call(ROLE, "s3:ListBucket", "arn:aws:s3:::b", "t"))  # no prefix: the condition fails
    assert "not an IAM action" in str(model.decide(Call(ROLE, "s3:GetObjekt", "arn:aws:s3:::b/data/x", "t")))


def test_a_key_is_usable_only_as_its_key_policy_says() -> None:
    use = {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": KEY_ARN}
    trusting = _app([use], [TRUST_ACCOUNT])
    assert trusting.decide(Call(ROLE, "kms:Decrypt", KEY_ARN, "t")) is None
    assert "no IAM policy" in str(trusting.decide(Call(ROLE, "kms:GenerateDataKey", KEY_ARN, "t")))
    not_trusting = _app([use], [])  # a key policy that does not trust the account's IAM policies
    assert "key policy" in str(not_trusting.decide(Call(ROLE, "kms:Decrypt", KEY_ARN, "t")))
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "kms:GenerateDataKey",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }
    with_service = _app([], [TRUST_ACCOUNT, service])
    events = "service:events.amazonaws.com"
    assert (
        with_service.decide(Call(events, "kms:GenerateDataKey", KEY_ARN, "t", {"aws:SourceAccount": ACCOUNT})) is None
    )
    assert with_service.decide(Call(events, "kms:GenerateDataKey", KEY_ARN, "t", {"aws:SourceAccount": "999"}))
    assert with_service.decide(Call("service:sns.amazonaws.com", "kms:GenerateDataKey", KEY_ARN, "t"))


def test_an_unmodelled_call_fails_loudly(world: World) -> None:
    with pytest.raises(NotImplementedError, match="no IAM rule for s3.PutBucketPolicy"):
        Calls(world).api(ROLE, "s3", "PutBucketPolicy", {"Bucket": "b"}, "t")


# -- the synthesized app -----------------------------------------------------------------------


def test_every_action_the_policies_name_exists(model: PolicyModel) -> None:
    unknown = {
        f"{action} ({source})"
        for action, source in model.policy_actions()
        if "*" not in action and action_details(action) is None
    }
    assert not unknown, sorted(unknown)


def test_services_deliver_to_targets_dead_letter_queues_and_log_groups(model: PolicyModel, world: World) -> None:
    """EventBridge into the SSE-KMS dead-letter queues needs the key policy (it was missing),
    CloudWatch Logs needs it for the encrypted log groups, API Gateway the function's policy."""
    calls = deliveries(world)
    assert any(c.action == "sqs:SendMessage" for c in calls) and any("logs." in c.principal for c in calls)
    assert any("apigateway" in c.principal for c in calls)
    assert model.check(calls) == []


def test_jobs_may_list_the_code_prefix(model: PolicyModel, world: World) -> None:
    """Defect 2: the code input is an S3Prefix, so SageMaker lists the asset's key first."""
    code = _planner_env(world, "CODE_URI")
    bucket, _, key = code[5:].partition("/")
    assert key.endswith(".gz") and not key.endswith(".tar.gz")  # CDK keeps only the last extension
    for role in (_role(world, "TrainingTrainingRole"), _role(world, "TrainingPackRole")):
        calls = Calls(world).s3_prefix_download(role, code, "code input", [key])
        assert [c.action for c in calls] == ["s3:ListBucket", "s3:GetObject"]
        assert model.check(calls) == []
        other = Calls(world).s3_list(role, bucket, "someone-elses-asset.zip", "t")
        assert model.check(other), "the listing is scoped to the code asset's key"


def test_the_gate_may_list_model_packages(model: PolicyModel, world: World) -> None:
    """Defect 3: ListModelPackages takes no resource-level permissions."""
    gate = _role(world, "TrainingGateRole")
    calls = Calls(world).api(
        gate, "sagemaker", "ListModelPackages", {"ModelPackageGroupName": "imgclf-dev-models"}, "t"
    )
    assert [c.resource for c in calls] == ["*"]
    assert model.check(calls) == []


def test_notify_states_may_publish_to_the_encrypted_topic(model: PolicyModel, world: World) -> None:
    """Defect 4: SNS makes the data key for an SSE topic with the publisher's permissions."""
    state_machine = _role(world, "TrainingStateMachineRole")
    (topic,) = world.topic_keys
    calls = Calls(world).task(
        state_machine, "arn:aws:states:::sns:publish", {"TopicArn": topic, "Message": "{}"}, "state NotifyDeployed"
    )
    assert {c.action for c in calls} == {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    assert model.check(calls) == []


def test_sagemaker_names_resources_in_lower_case(world: World) -> None:
    """IAM compares ARNs case-sensitively and SageMaker lower-cases names in its ARNs."""
    (call,) = Calls(world).api(ROLE, "sagemaker", "DescribeEndpoint", {"EndpointName": "Imgclf-Dev"}, "t")
    assert call.resource == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/imgclf-dev"


def _without_action(templates: Templates, role_fragment: str, action: str) -> Templates:
    """A copy of the app whose policies of the roles named like ``role_fragment`` no longer
    grant ``action``."""
    changed = copy.deepcopy(templates)
    removed = 0
    for template in changed.values():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            if not any(role_fragment in json.dumps(role) for role in resource["Properties"].get("Roles", [])):
                continue
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if action in actions:
                    statement["Action"] = [a for a in actions if a != action] or ["sts:GetCallerIdentity"]
                    removed += 1
    assert removed, f"no policy of {role_fragment} grants {action}"
    return changed


def test_a_removed_permission_fails_the_run_as_aws_would(templates: Templates) -> None:
    """The planted defect: without kms:GenerateDataKey* the state machine cannot publish to its
    encrypted alert topic; the run fails at the notification, and the layer names principal,
    action and resource."""
    broken = _without_action(templates, "TrainingStateMachineRole", "kms:GenerateDataKey*")
    with WorkflowHarness(broken).running(check_iam=False) as harness:
        execution = harness.start("training", upload_dataset(harness))
        assert harness.wait(execution)["status"] == "FAILED"
        assert any(state.startswith("Notify") for state in harness.states_entered(execution))
        assert harness.alerts() == []  # no alert reached anyone
    (line, *_) = [d for d in harness.denied if "kms:GenerateDataKey" in d]
    assert "TrainingStateMachineRole" in line and KEY_ARN in line and "state Notify" in line


# -- the functions that run outside the workflows, as the harness runs them -------------------


@pytest.fixture()
def harness(templates: Templates):  # type: ignore[no-untyped-def]
    with WorkflowHarness(templates).running() as running:
        yield running


def test_the_upload_trigger_starts_a_run_and_reports_a_rejected_upload(harness: WorkflowHarness) -> None:
    """The trigger reads the descriptor, starts the workflow, and publishes a rejection to the
    encrypted topic, each with its own role (the harness fails the test on any refusal)."""
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    upload_dataset(harness)
    s3.put_object(Bucket=harness.datasets_bucket, Key="datasets/flowers/v1/dataset.json", Body=b'{"format": "folders"}')
    s3.put_object(Bucket=harness.datasets_bucket, Key="datasets/flowers/v2/dataset.json", Body=b"not json")

    def event(key: str) -> Dict[str, Any]:
        return {
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {"bucket": {"name": harness.datasets_bucket}, "object": {"key": key}},
        }

    started = harness.invoke("lambdas.trigger.handler.handler", event("datasets/flowers/v1/dataset.json"))
    assert len(started["executions"]) == 1
    rejected = harness.invoke("lambdas.trigger.handler.handler", event("datasets/flowers/v2/dataset.json"))
    assert rejected["executions"] == [] and "rejected" in harness.alerts()[0]["Subject"]
    made = {(c.principal.rsplit("/", 1)[-1], c.action) for c in harness.calls}
    trigger = next(p for p, _ in made if "UploadTriggerTrigger" in p or "TriggerRole" in p)
    assert {
        (trigger, a) for a in ("s3:GetObject", "states:StartExecution", "sns:Publish", "kms:GenerateDataKey")
    } <= made


def test_the_api_proxy_invokes_the_endpoint_with_its_role(harness: WorkflowHarness) -> None:
    import base64

    from tests.builders import png

    event = {
        "httpMethod": "POST",
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(png(8, 8, (1, 2, 3))).decode(),
        "isBase64Encoded": True,
    }
    import io
    from unittest import mock

    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import ANY, Stubber

    # moto's sagemaker-runtime cannot take a binary body: the endpoint answers through a Stubber,
    # which botocore consults after the harness has authorized the call
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    answer = b'{"label": "a", "probability": 1.0}'
    with Stubber(runtime) as stubber, mock.patch("lambdas.classify.handler.runtime", return_value=runtime):
        stubber.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "application/json"},
            {"EndpointName": "imgclf-dev-endpoint", "Body": ANY, "ContentType": "image/png", "Accept": ANY},
        )
        result = harness.invoke("lambdas.classify.handler.handler", event)
    assert result["statusCode"] == 200, result
    assert any(c.action == "sagemaker:InvokeEndpoint" and "ClassifyRole" in c.principal for c in harness.calls)


def test_jobs_and_endpoints_pull_their_images_in_a_region_with_its_own_dlc_account(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The Deep Learning Containers live in another account in some regions (ap-east-1:
    871362719292): each role may pull exactly the image its requests name."""
    import re

    from infra.app import synthesize

    from .conftest import stage_context

    templates = synthesize(stage_context(region="ap-east-1"), str(tmp_path_factory.mktemp("cdk.out")))
    world = World(templates)
    model = PolicyModel(world)
    images = {}
    for stack, _, resource in world.resources_of_type("AWS::StepFunctions::StateMachine"):
        definition = str(world.resolve(stack, resource["Properties"]["DefinitionString"]))
        for field, role in (
            ("TrainingImage", "TrainingTrainingRole"),
            ("ImageUri", "TrainingPackRole"),
            ("Image", "DeploymentModelRole"),
        ):
            for uri in re.findall(rf'"{field}":"([^"]+)"', definition):
                images[uri] = role
    assert len(images) == 3 and all(uri.startswith("871362719292.dkr.ecr.ap-east-1") for uri in images), images
    for uri, role in images.items():
        calls = [
            c
            for c in Calls(world)._container(_role(world, role), uri, "/aws/sagemaker/X", "s", "pull")
            if c.action.startswith("ecr:")
        ]
        assert model.check(calls) == [], uri


def test_teardown_cleanup_removes_the_deployment_with_its_role(harness: WorkflowHarness) -> None:
    """After a deployment, the custom resource's Delete removes the scaling target, endpoint,
    configs, models and package versions, each call with the cleanup function's role, and the
    group can then be deleted as CloudFormation would."""
    from unittest import mock

    import boto3

    execution = harness.start("training", upload_dataset(harness))
    assert harness.wait(execution)["status"] == "SUCCEEDED", harness.explain(execution)
    answered: List[Dict[str, Any]] = []

    def urlopen(request: Any, timeout: float) -> Any:
        answered.append(json.loads(request.data))
        return mock.MagicMock()

    event = {
        "RequestType": "Delete",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/x",
        "StackId": "stack",
        "RequestId": "r",
        "LogicalResourceId": "EndpointCleanup",
        "PhysicalResourceId": "imgclf-dev",
    }
    with mock.patch("urllib.request.urlopen", urlopen):
        harness.invoke("lambdas.cleanup.handler.handler", event)
    assert answered[0]["Status"] == "SUCCESS", answered
    actions = {c.action for c in harness.calls if "Cleanup" in c.principal}
    assert {"sagemaker:DeleteEndpoint", "sagemaker:DeleteModel", "sagemaker:DeleteModelPackage"} <= actions
    boto3.client("sagemaker", region_name=REGION).delete_model_package_group(ModelPackageGroupName="imgclf-dev-models")
