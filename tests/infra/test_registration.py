"""RegisterModel records the model's drift baseline in the Model Registry
(DriftCheckBaselines.ModelDataQuality.Statistics): the synthesized states, the request as
SageMaker's API model checks it, and the gate's permission to write the copy it points at."""

from __future__ import annotations

import copy
from typing import Any, Dict

import pytest

from imgclf_core.s3_layout import baseline_key, evaluation_key

from .aws_calls import Calls
from .iam_model import PolicyModel, World
from .request_shapes import validate_request

Templates = Dict[str, Dict[str, Any]]
JOB = "imgclf-dev-run-0123abcd-1"
ARTIFACTS = "s3://imgclf-dev-artifacts-111111111111-us-east-1/"
STATISTICS = {"ContentType": "application/json", "S3Uri.$": "$.gate.baseline_uri"}
# the state when RegisterModel runs: what the earlier states left, as the harness run makes it
STATE = {
    "gate": {
        "status": "Approved",
        "reason": "accuracy 0.9500 >= threshold 0.8000",
        "accuracy": "0.9500",
        "evaluation_uri": ARTIFACTS + evaluation_key(JOB),
        "baseline_uri": ARTIFACTS + baseline_key(JOB),
        "approval": "auto",
    },
    "training": {
        "TrainingJobName": JOB,
        "ModelArtifacts": {"S3ModelArtifacts": f"{ARTIFACTS}training-jobs/{JOB}/output/model.tar.gz"},
    },
    "plan": {"Metadata": {"execution": "flowers-v1-abc"}},
    "validation": {
        "report_uri": "s3://imgclf-dev-datasets-111111111111-us-east-1/datasets/f/v1/validation-report.json"
    },
}


def training_states(templates: Templates) -> Dict[str, Any]:
    from infra.diagram import asl_definition

    (machine,) = [
        r
        for r in templates["Imgclf-dev-Training"]["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    return dict(asl_definition(machine)["States"])


def resolve(parameters: Any, state: Dict[str, Any]) -> Any:
    """A Task's Parameters with each ``"Key.$": "$.path"`` replaced by the value at the path."""
    if isinstance(parameters, list):
        return [resolve(item, state) for item in parameters]
    if not isinstance(parameters, dict):
        return parameters
    resolved = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            found: Any = state
            for part in value[2:].split("."):
                found = found[part]
            resolved[key[:-2]] = found
        else:
            resolved[key] = resolve(value, state)
    return resolved


def test_a_choice_picks_the_registration_with_or_without_the_baseline(templates: Templates) -> None:
    states = training_states(templates)
    assert states["EvaluateAndGate"]["Next"] == "BaselineRecorded"
    choice = states["BaselineRecorded"]
    assert choice["Choices"] == [{"Variable": "$.gate.baseline_uri", "IsString": True, "Next": "RegisterModel"}]
    assert choice["Default"] == "RegisterModelWithoutBaseline"
    with_baseline, without = states["RegisterModel"], states["RegisterModelWithoutBaseline"]
    # one request: the two differ only in DriftCheckBaselines; both go on to the gate's decision
    assert with_baseline["Parameters"]["DriftCheckBaselines"] == {"ModelDataQuality": {"Statistics": STATISTICS}}
    assert "DriftCheckBaselines" not in without["Parameters"]
    same = {k: v for k, v in with_baseline["Parameters"].items() if k != "DriftCheckBaselines"}
    assert same == without["Parameters"]
    for state in (with_baseline, without):
        assert state["Next"] == "GateDecision" and state["ResultPath"] == "$.registered"
        assert state["Catch"][0]["Next"] == "NotifyFailure" and state["Retry"]
    assert {k: v for k, v in with_baseline.items() if k != "Parameters"} == {
        k: v for k, v in without.items() if k != "Parameters"
    }


def test_both_registration_requests_are_valid_for_sagemaker(templates: Templates) -> None:
    states = training_states(templates)
    with_baseline = resolve(states["RegisterModel"]["Parameters"], STATE)
    assert with_baseline["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": ARTIFACTS + f"evaluations/{JOB}/baseline.json",
    }
    assert validate_request("sagemaker", "createModelPackage", with_baseline, step_functions_names=True) == []
    without = resolve(
        states["RegisterModelWithoutBaseline"]["Parameters"], {**STATE, "gate": {**STATE["gate"], "baseline_uri": None}}
    )
    assert validate_request("sagemaker", "createModelPackage", without, step_functions_names=True) == []


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            lambda s: s.pop("ContentType"),
            "CreateModelPackage.DriftCheckBaselines.ModelDataQuality.Statistics.ContentType: required member of "
            "MetricsSource is missing",
        ),
        (
            lambda s: s.update(S3Uri="evaluations/job/baseline.json"),
            "CreateModelPackage.DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri: 'evaluations/job/baseline.json'"
            " does not match pattern (https|s3)://([^/]+)/?(.*)",
        ),
        (
            lambda s: s.update(S3Uri=None),  # a null baseline_uri passed through: the Choice prevents it
            "CreateModelPackage.DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri: None is null, not a string",
        ),
        (
            lambda s: s.update(ContentDigest="md5:abc"),
            "CreateModelPackage.DriftCheckBaselines.ModelDataQuality.Statistics.ContentDigest: 'md5:abc' does not "
            "match pattern [Ss][Hh][Aa]256:[0-9a-fA-F]{64}",
        ),
    ],
    ids=["no-content-type", "not-a-uri", "null-uri", "bad-digest"],
)
def test_a_wrong_drift_baseline_is_refused(templates: Templates, change: Any, problem: str) -> None:
    request = resolve(training_states(templates)["RegisterModel"]["Parameters"], STATE)
    planted = copy.deepcopy(request)
    change(planted["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"])
    problems = validate_request("sagemaker", "createModelPackage", planted, step_functions_names=True)
    assert problems and problems[0].startswith(problem), problems


def test_the_gate_may_write_the_baseline_copy(model: PolicyModel, world: World) -> None:
    """The gate's grant on the evaluations prefix covers the baseline beside the evaluation."""
    (gate,) = {
        world.attrs[stack, logical, "Arn"]
        for stack, logical, _ in world.resources_of_type("AWS::IAM::Role")
        if "TrainingGateRole" in logical
    }
    bucket = ARTIFACTS[len("s3://") : -1]
    for key in (evaluation_key(JOB), baseline_key(JOB)):
        calls = Calls(world).s3_write(gate, bucket, key, "t")
        assert model.check(calls) == [], key
    assert model.check(Calls(world).s3_write(gate, bucket, f"training-jobs/{JOB}/output/baseline.json", "t"))


def test_the_package_lists_every_content_type_the_handlers_read() -> None:
    from image_training.serving import IMAGE_TYPES, RECORDIO
    from infra.sagemaker_requests import INFERENCE_CONTENT_TYPES

    assert [*IMAGE_TYPES, RECORDIO] == INFERENCE_CONTENT_TYPES
