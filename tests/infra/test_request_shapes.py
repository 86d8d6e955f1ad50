"""request_shapes.py finds every kind of defect that botocore's model describes, and the
workflow harness fails a run whose request has one."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, List

import boto3
import pytest

from .asl_harness import REGION, WorkflowHarness
from .request_shapes import check_request, java_pattern, service_model, validate_request
from .test_workflow import upload_dataset

ROLE = "arn:aws:iam::111111111111:role/harness"
METADATA_PATTERN = r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}"


def training_request(**changes: Any) -> Dict[str, Any]:
    request: Dict[str, Any] = {
        "TrainingJobName": "imgclf-dev-flowers-v1-0123abcd-1",
        "AlgorithmSpecification": {"TrainingImage": "image:1", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://artifacts/training-jobs"},
        "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "EnableNetworkIsolation": True,
    }
    request.update(changes)
    return request


def package_request(**metadata: str) -> Dict[str, Any]:
    return {
        "ModelPackageGroupName": "imgclf-dev-models",
        "ModelPackageDescription": "accuracy 0.9500 >= threshold 0.9000",
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": {"accuracy": "0.9500", **metadata},
    }


def test_valid_requests_have_no_problems() -> None:
    assert validate_request("sagemaker", "CreateTrainingJob", training_request()) == []
    report = "s3://imgclf-dev-datasets-111111111111-us-east-1/datasets/fête des fleurs/v1/validation-report.json"
    assert validate_request("sagemaker", "createModelPackage", package_request(validation_report=report)) == []


@pytest.mark.parametrize(
    "service, operation, params, problem",
    [
        ("sagemaker", "CreateModel", {"ExecutionRoleArn": ROLE}, "CreateModel.ModelName: required member"),
        (
            "sagemaker",
            "CreateTrainingJob",
            training_request(EnableNetworkIsolation="true"),
            "CreateTrainingJob.EnableNetworkIsolation: 'true' is a string, not a boolean",
        ),
        (
            "sagemaker",
            "CreateTrainingJob",
            training_request(StoppingCondition={"MaxRuntimeInSeconds": "3600"}),
            "CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds: '3600' is a string, not an integer",
        ),
        (
            "sagemaker",
            "CreateTrainingJob",
            training_request(HyperParameters={"epochs": 30}),
            "CreateTrainingJob.HyperParameters.epochs: 30 is an integer, not a string",
        ),
        (
            "sagemaker",
            "CreateModelPackage",
            {**package_request(), "ModelPackageDescription": "x" * 1025},
            "CreateModelPackage.ModelPackageDescription: 'xxx",
        ),
        (
            "sagemaker",
            "CreateTrainingJob",
            training_request(StoppingCondition={"MaxRuntimeInSeconds": 0}),
            "CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds: 0 is below the minimum 1",
        ),
        (
            "sagemaker",
            "CreateModelPackage",
            {**package_request(), "ModelApprovalStatus": "approved"},
            "CreateModelPackage.ModelApprovalStatus: 'approved' is not one of the enum values (Approved, Rejected",
        ),
        (
            "sagemaker",
            "CreateModelPackage",
            package_request(validation_report="s3://data/datasets/fleurs d'été/v1/validation-report.json"),
            "CreateModelPackage.CustomerMetadataProperties.validation_report: "
            '"s3://data/datasets/fleurs d\'été/v1/validation-report.json" does not match pattern ' + METADATA_PATTERN,
        ),
        (
            "sagemaker",
            "CreateTrainingJob",
            training_request(TrainingJobName="imgclf-dev_flowers-1"),
            "CreateTrainingJob.TrainingJobName: 'imgclf-dev_flowers-1' does not match pattern "
            "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        ),
        (
            "sagemaker",
            "CreateTrainingJob",
            training_request(TrainingJobName="a" * 64),
            "CreateTrainingJob.TrainingJobName: 'aaa",
        ),
        (
            "sagemaker",
            "CreateModelPackage",
            {**package_request(), "ModelPackageGroupname": "x"},
            "CreateModelPackage.ModelPackageGroupname: unknown member of CreateModelPackageInput "
            "(did you mean ModelPackageGroupName?)",
        ),
        (
            "sagemaker",
            "CreateEndpointConfig",
            {"EndpointConfigName": "c", "ProductionVariants": []},
            "CreateEndpointConfig.ProductionVariants: [] has 0 items, fewer than the minimum 1",
        ),
        (
            "sagemaker",
            "ListTrainingJobs",
            {"CreationTimeAfter": "yesterday"},
            "ListTrainingJobs.CreationTimeAfter: 'yesterday' is not a timestamp",
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": "f", "Payload": 5},
            "Invoke.Payload: <sensitive> is an integer, not a blob",
        ),
        (
            "sns",
            "Publish",
            {"TopicArn": "arn:aws:sns:us-east-1:111111111111:alerts", "Message": {"a": 1}},
            "Publish.Message: {'a': 1} is an object, not a string",
        ),
    ],
    ids=[
        "missing",
        "boolean",
        "integer",
        "string",
        "too-long",
        "out-of-range",
        "enum",
        "metadata-pattern",
        "job-name-underscore",
        "job-name-too-long",
        "unknown",
        "list-too-short",
        "timestamp",
        "blob",
        "object-for-string",
    ],
)
def test_each_kind_of_defect_is_found(service: str, operation: str, params: Dict[str, Any], problem: str) -> None:
    problems = validate_request(service, operation, params)
    assert any(p.startswith(problem) for p in problems), problems


def test_sizes_name_the_rule() -> None:
    length, pattern = validate_request("sagemaker", "CreateTrainingJob", training_request(TrainingJobName="a" * 64))
    assert length.endswith("has 64 characters, more than the maximum 63")
    assert pattern.endswith("does not match pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # {0,62}: 63 at most
    (problem,) = validate_request(
        "sagemaker", "CreateModelPackage", {**package_request(), "ModelPackageDescription": "x" * 1025}
    )
    assert problem.endswith("has 1025 characters, more than the maximum 1024")


def test_map_keys_are_checked() -> None:
    problems = validate_request("sagemaker", "CreateModelPackage", package_request(**{"bad key!": "v", "": "v"}))
    assert any(p.startswith("CreateModelPackage.CustomerMetadataProperties key 'bad key!': ") for p in problems)
    assert any("key '': '' has 0 characters, fewer than the minimum 1" in p for p in problems), problems


def test_timestamps_follow_the_members_format() -> None:
    for value in ("2024-05-01T12:00:00Z", 1714564800, 1714564800.5):
        assert validate_request("sagemaker", "ListTrainingJobs", {"CreationTimeAfter": value}) == [], value
    # a query-protocol service serializes ISO 8601: an epoch number is not what it takes
    assert validate_request("cloudwatch", "GetMetricData", {"MetricDataQueries": [], "StartTime": 5, "EndTime": 6})


def test_step_functions_names_members_in_pascal_case() -> None:
    arn = "arn:aws:states:us-east-1:111111111111:stateMachine:deployment"
    assert validate_request("sfn", "startExecution", {"StateMachineArn": arn}, step_functions_names=True) == []
    assert validate_request("states", "StartExecution", {"stateMachineArn": arn}) == []
    (problem,) = validate_request("sfn", "startExecution", {"stateMachineArn": arn}, step_functions_names=True)[:1]
    assert problem.startswith("StartExecution.stateMachineArn: unknown member")
    problems = validate_request(
        "applicationautoscaling",
        "registerScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/e/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": "1",
        },
        step_functions_names=True,
    )
    assert problems == ["RegisterScalableTarget.MinCapacity: '1' is a string, not an integer"]


def test_check_request_lists_every_problem() -> None:
    with pytest.raises(AssertionError) as raised:
        check_request("sagemaker", "CreateTrainingJob", training_request(TrainingJobName="a_b", RoleArn=5))
    text = str(raised.value)
    assert text.startswith("invalid sagemaker CreateTrainingJob request:")
    assert "CreateTrainingJob.TrainingJobName" in text and "CreateTrainingJob.RoleArn" in text


# -- Java patterns ------------------------------------------------------------------------
def test_the_dollar_quantifier_quirk_is_a_length() -> None:
    key = java_pattern(r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}")
    assert key.length == (1, 128)
    assert key.matches("validation_report") and key.matches("fête 2")
    assert not key.matches("") and not key.matches("a" * 129) and not key.matches("it's")
    assert java_pattern(r"^[-_a-zA-Z0-9]*${2,64}$").length == (2, 64)


@pytest.mark.parametrize(
    "pattern, good, bad",
    [
        (r"\p{Alnum}+", "abc123", "é"),  # Java's POSIX classes are US-ASCII
        (r"\w+", "a_1", "é"),
        (r".*", "a b", "a\rb"),  # "." stops at every Java line terminator
        (r"(?s).*", "a\rb\n", ""),  # unless DOTALL
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF]*", "a😀", "a\n"),  # a surrogate pair range
        (r"[\p{Print}&&[^|:/]]+", "name", "a|b"),  # class intersection
        (r"[a-z[0-9]]+", "a1", "A"),  # class union
        (r"[a-zA-Z0-9\s'\x{0022},.:\\\/{$}\[\]=_\-\+]+", 'say "hi"', "a|b"),  # \x{...}
        (r"\Qa.b\E", "a.b", "axb"),
        (r"arn:[0-9a-zA-Z]{2}{0,3}", "arn:abcd", "arn:abc"),  # Java repeats a repetition
        (r"[\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]*", "accuracy 0.95 >= 0.9 (approved model's)", "tab\t"),
    ],
)
def test_java_patterns_keep_their_meaning(pattern: str, good: str, bad: str) -> None:
    compiled = java_pattern(pattern)
    assert compiled.matches(good), compiled.translated
    if bad:
        assert not compiled.matches(bad), compiled.translated


@pytest.mark.parametrize("service", ["sagemaker", "application-autoscaling", "sns", "stepfunctions", "s3", "lambda"])
def test_every_pattern_of_the_services_we_call_translates(service: str) -> None:
    model = service_model(service)
    patterns = {
        model.shape_for(name).metadata["pattern"]
        for name in model.shape_names
        if "pattern" in model.shape_for(name).metadata
    }
    for pattern in patterns:
        java_pattern(pattern)  # raises PatternError if it cannot be translated


# -- the workflows --------------------------------------------------------------------------
def _replace_in_definition(template: Dict[str, Any], old: str, new: str) -> None:
    """Replace ``old`` by ``new`` everywhere in the state machine's definition (a string or an
    Fn::Join): in each task that one request function made (RegisterModel and
    RegisterModelWithoutBaseline share package_request)."""
    (machine,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    definition = machine["Properties"]["DefinitionString"]
    parts: List[Any] = definition["Fn::Join"][1] if isinstance(definition, dict) else [definition]
    found = [i for i, part in enumerate(parts) if isinstance(part, str) and old in part]
    assert found, f"{old!r} is not in the definition"
    for i in found:
        parts[i] = parts[i].replace(old, new)
    if not isinstance(definition, dict):
        machine["Properties"]["DefinitionString"] = parts[0]


def test_a_planted_defect_in_a_synthesized_request_fails_the_run(templates: Dict[str, Dict[str, Any]]) -> None:
    """The registration as it was before the planner made the execution name valid: a run
    started by hand as "flowers(v1)" could not register its model."""
    planted = copy.deepcopy(templates)
    _replace_in_definition(
        planted["Imgclf-dev-Training"], '"execution.$":"$.plan.Metadata.execution"', '"execution.$":"$$.Execution.Name"'
    )
    harness = WorkflowHarness(planted)
    with pytest.raises(AssertionError) as raised, harness.running():
        execution = harness.start("training", upload_dataset(harness), name="flowers(v1)")
        result = harness.wait(execution)
        assert result["status"] == "FAILED", harness.explain(execution)
        assert "RegisterModel" in harness.states_entered(execution) and "Deploy" not in harness.states_entered(
            execution
        )
    assert str(raised.value).startswith("AWS would refuse these requests:\n")
    assert (
        "CreateModelPackage.CustomerMetadataProperties.execution: 'flowers(v1)' does not match pattern "
        + METADATA_PATTERN
    ) in str(raised.value)


def test_an_execution_started_by_hand_registers_a_valid_name(harness: WorkflowHarness) -> None:
    execution = harness.start("training", upload_dataset(harness), name="flowers(v1)")
    assert harness.wait(execution)["status"] == "SUCCEEDED", harness.explain(execution)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    (package,) = sagemaker.list_model_packages(ModelPackageGroupName="imgclf-dev-models")["ModelPackageSummaryList"]
    metadata = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert metadata["execution"] == "flowers-v1-"


def test_a_dataset_name_the_registry_cannot_record_fails_before_any_job(harness: WorkflowHarness) -> None:
    """Started by hand, past the upload checks: the planner refuses it before the Pack job."""
    execution = harness.start("training", upload_dataset(harness, name="fleurs d'été"))
    assert harness.wait(execution)["status"] == "FAILED", harness.explain(execution)
    entered = harness.states_entered(execution)
    assert "PlanPacking" in entered and entered[-2:] == ["NotifyFailure", "Failed"], entered
    assert harness.processing_requests == [] and harness.training_requests == []
    alert = next(a for a in harness.alerts() if "failed" in a.get("Subject", ""))
    cause = json.loads(alert["Message"])["cause"]
    assert "the model registry cannot record the validation report" in cause and "1-64 characters" in cause, cause


@pytest.fixture()
def harness(templates: Dict[str, Dict[str, Any]]):  # type: ignore[no-untyped-def]
    with WorkflowHarness(templates).running() as running:
        yield running
