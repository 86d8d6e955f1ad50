"""The synthesized state machines, executed offline in moto's ASL interpreter (see
asl_harness.py): the success path and every failure branch."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any, Dict

import boto3
import pytest

from tests.builders import png

from .asl_harness import REGION, TrainingOutcome, WorkflowHarness


def upload_dataset(
    harness: WorkflowHarness, name: str = "flowers", version: str = "v1", broken: bool = False
) -> Dict[str, Any]:
    """A small folders dataset in the dataset bucket, and the training workflow's input."""
    s3 = boto3.client("s3", region_name=REGION)
    prefix = f"datasets/{name}/{version}/"
    for channel, count in (("train", 6), ("validation", 2)):
        for label, color in (("daisy", (200, 200, 30)), ("rose", (200, 30, 30))):
            for i in range(count):
                body = png(40, 40, color) if not (broken and channel == "train" and i == 0) else b"not an image"
                s3.put_object(Bucket=harness.datasets_bucket, Key=f"{prefix}{channel}/{label}/{i}.png", Body=body)
    return {
        "dataset": {
            "bucket": harness.datasets_bucket,
            "prefix": prefix,
            "name": name,
            "version": version,
            "descriptor": {"format": "folders"},
        },
        "hyperparameters": {"epochs": "2", "image_shape": "3,32,32", "resize": "32", "mini_batch_size": "4"},
    }


def read_object(uri: str) -> bytes:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()


def model_file(model_data_url: str, name: str) -> bytes:
    """One file of the model.tar.gz at ``model_data_url``."""
    with tarfile.open(fileobj=io.BytesIO(read_object(model_data_url)), mode="r:gz") as tar:
        stream = tar.extractfile(name)
        assert stream is not None, name
        return stream.read()


def registered_package() -> Dict[str, Any]:
    """The only version of the dev stage's model package group, described."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    (summary,) = sagemaker.list_model_packages(ModelPackageGroupName="imgclf-dev-models")["ModelPackageSummaryList"]
    return sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])


@pytest.fixture()
def harness(templates: Dict[str, Dict[str, Any]]):  # type: ignore[no-untyped-def]
    with WorkflowHarness(templates).running() as running:
        yield running


def test_success_trains_registers_and_deploys(harness: WorkflowHarness) -> None:
    execution = harness.start("training", upload_dataset(harness), name="flowers-v1-abc")
    result = harness.wait(execution)
    assert result["status"] == "SUCCEEDED", harness.explain(execution)
    entered = harness.states_entered(execution)
    assert entered[:9] == [
        "ValidateDataset",
        "FansOut",
        "ValidatedAtOnce",
        "DatasetValid",
        "PlanPacking",
        "PackingNeeded",
        "PackDataset",
        "FirstAttempt",
        "PlanTraining",
    ]
    assert "Deploy" in entered and entered[-1] == "Done"
    # the image channels were packed by the real pack job, and training reads the packed files
    (packing,) = harness.processing_requests
    assert packing["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert packing["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert "cpu" in packing["AppSpecification"]["ImageUri"]
    request = harness.training_requests[0]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "code"}
    packed = channels["train"]
    assert packed.startswith("s3://") and "/packed/imgclf-dev-pack-" in packed and packed.endswith("/train/")
    bucket, _, prefix = packed[5:].partition("/")
    s3 = boto3.client("s3", region_name=REGION)
    keys = {o["Key"][len(prefix) :] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    assert {"train.rec", "train.idx", "labels.json"} <= keys
    names = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "labels.json")["Body"].read())
    assert names == ["daisy", "rose"]
    hps = request["HyperParameters"]
    assert hps["num_classes"] == "2" and hps["num_training_samples"] == "12" and hps["epochs"] == "2"
    assert json.loads(hps["sagemaker_program"]) == "train_mxnet.py"
    assert request["EnableManagedSpotTraining"] is True and request["EnableNetworkIsolation"] is True
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    packages = sagemaker.list_model_packages(ModelPackageGroupName="imgclf-dev-models")["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in packages] == ["Approved"]
    endpoint = sagemaker.describe_endpoint(EndpointName="imgclf-dev-endpoint")
    assert endpoint["EndpointConfigName"].startswith("imgclf-dev-v1-")
    report = boto3.client("s3", region_name=REGION).get_object(
        Bucket=harness.datasets_bucket, Key="datasets/flowers/v1/validation-report.json"
    )
    assert json.loads(report["Body"].read())["valid"] is True
    assert any("new model deployed" in a.get("Subject", "") for a in harness.alerts())
    # the registry records the model's drift baseline: the gate's copy, equal to the model's own
    assert "RegisterModel" in entered and "RegisterModelWithoutBaseline" not in entered
    package = registered_package()
    statistics = package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    job = harness.training_requests[0]["TrainingJobName"]
    assert statistics["S3Uri"] == f"s3://{harness.artifacts_bucket}/evaluations/{job}/baseline.json"
    model_data = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert read_object(statistics["S3Uri"]) == model_file(model_data, "baseline.json")
    assert json.loads(read_object(statistics["S3Uri"]))["job"] == job
    evaluation = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert evaluation.rsplit("/", 1)[0] == statistics["S3Uri"].rsplit("/", 1)[0]  # side by side


def test_a_model_without_a_baseline_is_registered_without_drift_check_baselines(harness: WorkflowHarness) -> None:
    """A job whose baseline could not be made (it never costs the model) is registered and
    deployed all the same, by the request without DriftCheckBaselines."""
    harness.training_outcomes = [TrainingOutcome(baseline=False)]
    execution = harness.start("training", upload_dataset(harness))
    assert harness.wait(execution)["status"] == "SUCCEEDED", harness.explain(execution)
    entered = harness.states_entered(execution)
    assert "RegisterModelWithoutBaseline" in entered and "RegisterModel" not in entered and "Deploy" in entered
    package = registered_package()
    assert package["ModelApprovalStatus"] == "Approved" and "DriftCheckBaselines" not in package
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation.json")
    job = harness.training_requests[0]["TrainingJobName"]
    copies = harness.keys_under(f"s3://{harness.artifacts_bucket}/evaluations/{job}/")
    assert copies == [f"evaluations/{job}/evaluation.json"]


def test_invalid_dataset_alerts_and_fails_before_training(harness: WorkflowHarness) -> None:
    execution = harness.start("training", upload_dataset(harness, broken=True))
    result = harness.wait(execution)
    assert result["status"] == "FAILED"
    assert "DatasetInvalid" in harness.states_entered(execution)
    assert harness.training_requests == []
    alert = next(a for a in harness.alerts() if "validation" in a.get("Subject", ""))
    message = json.loads(alert["Message"])
    assert message["report"].endswith("datasets/flowers/v1/validation-report.json")
    assert any("train/daisy/0.png" in e for e in message["first_errors"])


def test_training_failure_notifies_without_retrying_a_client_error(harness: WorkflowHarness) -> None:
    harness.training_outcomes = [TrainingOutcome(failure="ClientError: hyperparameter epochs: 0 is below 1")]
    execution = harness.start("training", upload_dataset(harness))
    assert harness.wait(execution)["status"] == "FAILED", harness.explain(execution)
    assert len(harness.training_requests) == 1, harness.explain(execution)
    assert "NotifyFailure" in harness.states_entered(execution)


def test_transient_training_failure_runs_a_new_attempt(harness: WorkflowHarness) -> None:
    harness.training_outcomes = [
        TrainingOutcome(failure="CapacityError: no ml.p3.2xlarge spot capacity"),
        TrainingOutcome(),
    ]
    execution = harness.start("training", upload_dataset(harness))
    assert harness.wait(execution)["status"] == "SUCCEEDED", harness.explain(execution)
    names = [r["TrainingJobName"] for r in harness.training_requests]
    assert len(names) == 2 and names[0].endswith("-1") and names[1].endswith("-2")


def test_gate_rejects_a_weak_model(harness: WorkflowHarness) -> None:
    harness.training_outcomes = [TrainingOutcome(accuracy=0.3)]
    execution = harness.start("training", upload_dataset(harness))
    result = harness.wait(execution)
    assert result["status"] == "FAILED" and "ModelRejected" in harness.states_entered(execution)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    packages = sagemaker.list_model_packages(ModelPackageGroupName="imgclf-dev-models")["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in packages] == ["Rejected"]
    assert sagemaker.list_endpoints()["Endpoints"] == []


def test_registration_error_notifies(harness: WorkflowHarness) -> None:
    harness.registration_error = "ResourceLimitExceeded"
    execution = harness.start("training", upload_dataset(harness))
    assert harness.wait(execution)["status"] == "FAILED", harness.explain(execution)
    entered = harness.states_entered(execution)
    assert "NotifyFailure" in entered and "Deploy" not in entered, harness.explain(execution)


def test_second_model_goes_blue_green_and_a_rollback_fails_the_run(harness: WorkflowHarness) -> None:
    first = harness.start("training", upload_dataset(harness, version="v1"))
    assert harness.wait(first)["status"] == "SUCCEEDED", harness.explain(first)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    serving = sagemaker.describe_endpoint(EndpointName="imgclf-dev-endpoint")["EndpointConfigName"]

    second = harness.start("training", upload_dataset(harness, version="v2"))
    assert harness.wait(second)["status"] == "SUCCEEDED", harness.explain(second)
    updated = sagemaker.describe_endpoint(EndpointName="imgclf-dev-endpoint")["EndpointConfigName"]
    assert updated != serving and updated.startswith("imgclf-dev-v2-")

    harness.endpoint_update_rolls_back = True
    third = harness.start("training", upload_dataset(harness, version="v3"))
    assert harness.wait(third)["status"] == "FAILED", harness.explain(third)
    assert sagemaker.describe_endpoint(EndpointName="imgclf-dev-endpoint")["EndpointConfigName"] == updated
    configs = [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
    assert not any(c.startswith("imgclf-dev-v3-") for c in configs), "the rolled-back config is removed"


def test_failed_endpoint_creation_leaves_nothing_behind(harness: WorkflowHarness) -> None:
    harness.endpoint_create_fails = True
    execution = harness.start("training", upload_dataset(harness))
    assert harness.wait(execution)["status"] == "FAILED", harness.explain(execution)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []


def test_deploying_an_approved_package_again_is_a_no_op(harness: WorkflowHarness) -> None:
    execution = harness.start("training", upload_dataset(harness))
    assert harness.wait(execution)["status"] == "SUCCEEDED", harness.explain(execution)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    arn = sagemaker.list_model_packages(ModelPackageGroupName="imgclf-dev-models")["ModelPackageSummaryList"][0][
        "ModelPackageArn"
    ]
    again = harness.start("deployment", {"model_package_arn": arn})
    result = harness.wait(again)
    assert result["status"] == "SUCCEEDED" and json.loads(result["output"])["action"] == "skip"


def test_recordio_dataset_skips_packing(harness: WorkflowHarness) -> None:
    from image_dataset.recordio import RecordIOWriter, pack

    s3 = boto3.client("s3", region_name=REGION)
    prefix = "datasets/records/v1/"
    for channel, count in (("train", 8), ("validation", 4)):
        import tempfile

        path = tempfile.mktemp(suffix=".rec")
        with RecordIOWriter(path, path[:-4] + ".idx") as writer:
            for i in range(count):
                writer.write(pack(float(i % 2), png(40, 40, (200, 30 * (i % 2), 30)), id=i), key=i)
        for suffix in (".rec", ".idx"):
            s3.upload_file(path[:-4] + suffix, harness.datasets_bucket, f"{prefix}{channel}/data{suffix}")
    payload = {
        "dataset": {"bucket": harness.datasets_bucket, "prefix": prefix, "name": "records", "version": "v1"},
        "hyperparameters": {"epochs": "2", "image_shape": "3,32,32", "mini_batch_size": "4"},
    }
    execution = harness.start("training", payload)
    result = harness.wait(execution)
    assert result["status"] == "SUCCEEDED", harness.explain(execution)
    entered = harness.states_entered(execution)
    assert "PackDataset" not in entered and entered[4:7] == ["PlanPacking", "PackingNeeded", "FirstAttempt"]
    assert harness.processing_requests == []
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in harness.training_requests[0]["InputDataConfig"]
    }
    assert channels["train"].endswith("datasets/records/v1/train/")


def upload_records(harness: WorkflowHarness, prefix: str, bad_label_at: int = -1) -> Dict[str, Any]:
    """A RecordIO dataset of about 20 KB (train) and its workflow input."""
    import tempfile

    from image_dataset.recordio import RecordIOWriter, pack

    s3 = boto3.client("s3", region_name=REGION)
    for channel, count in (("train", 90), ("validation", 10)):
        path = tempfile.mktemp(suffix=".rec")
        with RecordIOWriter(path, path[:-4] + ".idx") as writer:
            for i in range(count):
                label = 9.5 if (channel, i) == ("train", bad_label_at) else float(i % 2)
                writer.write(pack(label, png(40, 40, (200, 30 * (i % 2), i)), id=i), key=i)
        for suffix in (".rec", ".idx"):
            s3.upload_file(path[:-4] + suffix, harness.datasets_bucket, f"{prefix}{channel}/data{suffix}")
    return {
        "dataset": {"bucket": harness.datasets_bucket, "prefix": prefix, "name": "records", "version": "v1"},
        "hyperparameters": {"epochs": "2", "image_shape": "3,32,32", "mini_batch_size": "4"},
    }


def test_a_large_dataset_is_validated_by_a_distributed_map(harness: WorkflowHarness) -> None:
    harness.set_environment("lambdas.validate.handler", SHARD_BYTES="4096")
    execution = harness.start("training", upload_records(harness, "datasets/large/v1/"))
    result = harness.wait(execution)
    assert result["status"] == "SUCCEEDED", harness.explain(execution)
    entered = harness.states_entered(execution)
    assert entered[:5] == ["ValidateDataset", "FansOut", "CheckShards", "MergeShards", "DatasetValid"]
    shards = harness.invocations.count("lambdas.validate.handler")
    assert shards >= 5, harness.invocations  # the plan, four or more shards, the merge
    hps = harness.training_requests[0]["HyperParameters"]
    assert hps["num_classes"] == "2" and hps["num_training_samples"] == "90"


def test_a_fanned_out_validation_rejects_a_bad_record_with_its_location(harness: WorkflowHarness) -> None:
    harness.set_environment("lambdas.validate.handler", SHARD_BYTES="4096")
    execution = harness.start("training", upload_records(harness, "datasets/large/v2/", bad_label_at=70))
    result = harness.wait(execution)
    assert result["status"] == "FAILED" and "DatasetInvalid" in harness.states_entered(execution)
    alert = next(a for a in harness.alerts() if "validation" in a.get("Subject", ""))
    message = json.loads(alert["Message"])
    assert message["report"].endswith("datasets/large/v2/validation-report.json")
    assert message["first_errors"][0].startswith("train/data.rec#record 70 @byte "), message
    assert harness.training_requests == []


def test_a_failed_shard_check_fails_the_run_with_an_alert(harness: WorkflowHarness) -> None:
    from unittest import mock

    harness.set_environment("lambdas.validate.handler", SHARD_BYTES="4096")
    with mock.patch("lambdas.validate.logic.run_shard", side_effect=RuntimeError("the shard's disk is on fire")):
        execution = harness.start("training", upload_records(harness, "datasets/large/v3/"))
        result = harness.wait(execution)
    assert result["status"] == "FAILED"
    entered = harness.states_entered(execution)
    assert "CheckShards" in entered and "MergeShards" not in entered and entered[-2:] == ["NotifyFailure", "Failed"]
    alert = next(a for a in harness.alerts() if "failed" in a.get("Subject", ""))
    message = json.loads(alert["Message"])
    assert message["dataset"]["prefix"] == "datasets/large/v3/"
    assert message["error"] == "States.ExceedToleratedFailureThreshold", message
    assert harness.training_requests == []
