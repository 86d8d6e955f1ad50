"""Containers as AWS starts them. The harness runs the Pack step's Processing job from its resolved
request: the code archive is in the assets bucket under the key CDK gives it, every input is
downloaded, and ContainerEntrypoint + ContainerArguments run where /opt/ml is the job's own
(asl_harness.WorkflowHarness.run_processing_job). The serving handlers and the pack job also run
on the container stack (.venv-container: Python 3.8, numpy 1.19.5, Pillow 9.5.0, no OpenCV)
against what .venv-mxnet trains and reads."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, List

import boto3
import numpy as np
import pytest

from infra.pack_step import CODE_DIR
from tests.builders import folder_dataset, noisy_jpeg

from .asl_harness import REGION, TrainingOutcome, WorkflowHarness
from .test_workflow import upload_dataset

Templates = Dict[str, Dict[str, Any]]
UNPACK_LOOP = f"for a in {CODE_DIR}/*; do"
OLD_GLOB = f"{CODE_DIR}/*.tar.gz"  # the entry point's glob before CDK's <hash>.gz key was noticed


def with_unpack_glob(templates: Templates, glob: str) -> Templates:
    """A copy of the templates whose Pack step unpacks ``glob`` instead of every file of the code input."""
    changed = copy.deepcopy(templates)
    resources = changed["Imgclf-dev-Training"]["Resources"]
    (machine,) = (r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    found: List[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            found.extend([value] * value.count(UNPACK_LOOP))
            return value.replace(UNPACK_LOOP, f"for a in {glob}; do")
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    machine["Properties"]["DefinitionString"] = swap(machine["Properties"]["DefinitionString"])
    assert len(found) == 1, "the Pack step's entry point no longer has the unpack loop this test plants into"
    return changed


def pack_then_stop(harness: WorkflowHarness) -> str:
    """Run the training workflow on a folders dataset; the fake training job's model is rejected
    by the gate, so the run ends before any deployment. Returns the execution's ARN."""
    harness.training_outcomes = [TrainingOutcome(accuracy=0.3)]
    execution = harness.start("training", upload_dataset(harness), name="flowers-v1-containers")
    harness.wait(execution)
    return execution


def test_the_pack_job_runs_from_the_code_archive_cdk_stages(templates: Templates) -> None:
    with WorkflowHarness(templates).running() as harness:
        execution = pack_then_stop(harness)
        entered = harness.states_entered(execution)
        assert "PackDataset" in entered and "PlanTraining" in entered, harness.explain(execution)
        (request,) = harness.processing_requests
        log = harness.processing_logs[request["ProcessingJobName"]]
        assert "train: 12 records" in log and "validation: 4 records" in log, log
        # CDK stages sourcedir.tar.gz as <hash>.gz: it keeps the last extension only
        (code,) = (i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"] if i["InputName"] == "code")
        assert code.endswith(".gz") and not code.endswith(".tar.gz"), code
        channels = {c["ChannelName"]: c for c in harness.training_requests[0]["InputDataConfig"]}
        packed = channels["train"]["DataSource"]["S3DataSource"]["S3Uri"]
        prefix = packed[5:].partition("/")[2]
        assert "/packed/" in packed and prefix.endswith("/train/")
        assert {key[len(prefix) :] for key in harness.keys_under(packed)} == {
            "train.rec",
            "train.idx",
            "train.lst",
            "labels.json",
        }

        # the job runs the archive's code, not this checkout's: an archive without the pack job fails it
        bucket, _, key = code[5:].partition("/")
        s3 = boto3.client("s3", region_name=REGION)
        archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=bucket, Key=key, Body=without_member(archive, "image_training/pack_job.py"))
        again = harness.run_processing_job({**request, "ProcessingJobName": request["ProcessingJobName"] + "-again"})
        assert again["ProcessingJobStatus"] == "Failed"
        assert "No module named image_training.pack_job" in harness.processing_logs[again["ProcessingJobName"]]

        # a job that fails with its reason in /opt/ml/output/message: FailureReason and ExitMessage
        s3.put_object(Bucket=bucket, Key=key, Body=archive)
        (dataset,) = (i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"] if i["InputName"] == "dataset")
        dataset_bucket, _, dataset_prefix = dataset[5:].partition("/")
        s3.put_object(Bucket=dataset_bucket, Key=f"{dataset_prefix}train/rose/broken.png", Body=b"not an image")
        bad = harness.run_processing_job({**request, "ProcessingJobName": request["ProcessingJobName"] + "-bad"})
        assert bad["ProcessingJobStatus"] == "Failed" and bad["FailureReason"] == bad["ExitMessage"]
        assert bad["FailureReason"].startswith("ClientError: the dataset is invalid: ")
        assert "train/rose/broken.png" in bad["FailureReason"]


def without_member(archive: bytes, name: str) -> bytes:
    """The .tar.gz ``archive`` without its member ``name``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source, tarfile.open(
        fileobj=out, mode="w:gz"
    ) as target:
        for member in source.getmembers():
            if member.name != name:
                target.addfile(member, source.extractfile(member))
    return out.getvalue()


def test_a_code_glob_that_misses_cdks_key_fails_the_pack_job(templates: Templates) -> None:
    with WorkflowHarness(with_unpack_glob(templates, OLD_GLOB)).running() as harness:
        execution = pack_then_stop(harness)
        entered = harness.states_entered(execution)
        assert "PackDataset" in entered and "PlanTraining" not in entered, harness.explain(execution)
        assert harness.training_requests == []
        (request,) = harness.processing_requests
        # no /opt/ml/output/message: SageMaker's own reason, and the log says what happened
        assert "AlgorithmError: See job logs for more information" in harness.explain(execution)
        log = harness.processing_logs[request["ProcessingJobName"]]
        assert f"{OLD_GLOB}: Cannot open: No such file or directory" in log, log


# -- the container stack ------------------------------------------------------------------------

TRAIN_TINY_MODEL = """
import os, sys
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from PIL import Image
from image_training.mxnet_models import resnet
from image_training.mxnet_train import MEAN_RGB, STD_RGB, export

root, model_dir = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(os.path.join(root, "train")))
images, labels = [], []
for label, name in enumerate(names):
    for file in sorted(os.listdir(os.path.join(root, "train", name)))[:24]:
        pixels = np.asarray(Image.open(os.path.join(root, "train", name, file)).convert("RGB"), np.float32)
        images.append(((pixels - MEAN_RGB) / STD_RGB).transpose(2, 0, 1))
        labels.append(label)
data, target = np.stack(images), np.array(labels, np.float32)
mx.random.seed(0)
rng = np.random.RandomState(0)
net = resnet(20, len(names))
net.initialize(mx.init.Xavier())
net.hybridize()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
loss = gluon.loss.SoftmaxCrossEntropyLoss()
for _ in range(8):
    batch = rng.choice(len(labels), 24, replace=False)
    with autograd.record():
        value = loss(net(mx.nd.array(data[batch])), mx.nd.array(target[batch]))
    value.backward()
    trainer.step(24)
hp = {"mini_batch_size": 24, "image_shape": [3, 32, 32], "resize": 32, "top_k": 0,
      "precision_dtype": "float32", "multi_label": 0}
export(net, model_dir, 0, hp, names, {"epochs": 1})
"""

# what the SageMaker MXNet inference toolkit does with model.tar.gz's code/inference.py
SERVE = """
import importlib, json, sys
import numpy as np
model_dir, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, model_dir + "/code")
inference = importlib.import_module("inference")
import image_training
assert image_training.__file__.startswith(model_dir + "/code/"), image_training.__file__
model = inference.model_fn(model_dir)
answers, inputs = [], []
for path in sys.argv[3:]:
    content_type = "image/png" if path.endswith(".png") else "image/jpeg"
    data = inference.input_fn(open(path, "rb").read(), content_type)
    inputs.append(data)
    body, accept = inference.output_fn(inference.predict_fn(data, model), "application/json;verbose")
    answers.append(json.loads(body))
np.save(out + ".npy", np.concatenate(inputs))
json.dump(answers, open(out + ".json", "w"))
try:
    import cv2
    print("cv2", cv2.__version__)
except ImportError:
    print("no cv2")
"""

VERSIONS = "import sys, numpy, PIL; print(sys.version_info[:2], numpy.__version__, PIL.__version__)"


@pytest.fixture(scope="module")
def in_mxnet() -> Callable[..., str]:
    from tests.interop.conftest import runner

    return runner(".venv-mxnet")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.sample_data import write_digits

    root = tmp_path_factory.mktemp("digits")
    write_digits(str(root), classes=(0, 1, 2))
    return root


@pytest.mark.slow
@pytest.mark.mxnet
def test_serving_handlers_on_the_container_stack_answer_as_in_mxnet_env(
    tmp_path: Path, digits: Path, in_container: Callable[..., str], in_mxnet: Callable[..., str]
) -> None:
    assert in_container(VERSIONS).strip() == "(3, 8) 1.19.5 9.5.0"
    model = tmp_path / "model"
    in_mxnet(TRAIN_TINY_MODEL, str(digits), str(model))
    from PIL import Image

    exact = [str(next((digits / "validation" / c).glob("*.png"))) for c in "012"]  # 32x32: no resize
    resized = [str(tmp_path / "noisy.jpg"), str(tmp_path / "tall.png")]
    (tmp_path / "noisy.jpg").write_bytes(noisy_jpeg(40, 30, 1))
    Image.open(exact[2]).resize((48, 64)).save(resized[1])
    assert in_container(SERVE, str(model), str(tmp_path / "container"), *exact, *resized).strip() == "no cv2"
    assert in_mxnet(SERVE, str(model), str(tmp_path / "mxnet"), *exact, *resized).startswith("cv2")

    ours = json.loads((tmp_path / "container.json").read_text())
    theirs = json.loads((tmp_path / "mxnet.json").read_text())
    n = len(exact)
    assert ours[:n] == theirs[:n]  # lossless 32x32 images: the same tensor, the same answer
    # decoding and resizing with Pillow instead of OpenCV: the same label, probabilities within 1e-3
    assert [a["predicted_label"] for a in ours] == [a["predicted_label"] for a in theirs]
    for a, b in zip(ours[n:], theirs[n:]):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-3)
    ours_in, theirs_in = np.load(tmp_path / "container.npy"), np.load(tmp_path / "mxnet.npy")
    assert np.array_equal(ours_in[:n], theirs_in[:n])
    # normalised pixels (std ~57): a few levels of 255 apart at most
    assert np.abs(ours_in[n:] - theirs_in[n:]).max() < 0.25


READ_PACKED = """
import json, sys
import mxnet as mx
prefix, shape = sys.argv[1], (3, 24, 24)
rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
labels = {}
for key in rec.keys:
    header, img = mx.recordio.unpack(rec.read_idx(key))
    assert mx.image.imdecode(img).shape[2] == 3
    labels[key] = float(header.label)
it = mx.io.ImageRecordIter(path_imgrec=prefix + '.rec', path_imgidx=prefix + '.idx', data_shape=shape,
                           batch_size=1, shuffle=False)
in_order = []
for batch in it:
    in_order += batch.label[0].asnumpy()[: batch.data[0].shape[0] - batch.pad].tolist()
print(json.dumps({'labels': labels, 'in_order': in_order}))
"""


@pytest.mark.mxnet
def test_the_pack_job_on_the_container_stack_writes_what_mxnet_reads(
    tmp_path: Path, in_container: Callable[..., str], in_mxnet: Callable[..., str]
) -> None:
    from image_training.pack_job import main as pack_main

    root = folder_dataset(str(tmp_path / "d"), {"ant": 4, "bee": 3, "cow": 3}, size=30)
    out = tmp_path / "container"
    arguments = ["--input", root, "--workers", "1", "--output"]
    in_container("import sys; from image_training.pack_job import main; main(sys.argv[1:])", *arguments, str(out))
    pack_main([*arguments, str(tmp_path / "main")])
    for channel, count in (("train", 10), ("validation", 4)):
        folder = out / channel
        assert json.loads((folder / "labels.json").read_text()) == ["ant", "bee", "cow"]
        read = json.loads(in_mxnet(READ_PACKED, str(folder / channel)))
        rows = [line.split("\t") for line in (folder / f"{channel}.lst").read_text().splitlines()]
        assert len(rows) == count
        assert {int(k): v for k, v in read["labels"].items()} == {int(r[0]): float(r[1]) for r in rows}
        assert read["in_order"] == [float(r[1]) for r in rows]
        # Python 3.8, numpy 1.19 and Pillow 9.5 write the very bytes that the main environment writes
        for name in (f"{channel}.rec", f"{channel}.idx", f"{channel}.lst"):
            assert (folder / name).read_bytes() == (tmp_path / "main" / channel / name).read_bytes()


# -- the training job, through the script-mode entry ---------------------------------------------


def tar_members(archive: bytes) -> Dict[str, bytes]:
    """The files of a .tar.gz, by name."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.mxnet
def test_a_workflow_trains_for_real_through_the_script_mode_entry(templates: Templates) -> None:
    """folders dataset -> Pack job -> the training job from its resolved request, started as the
    MXNet framework image starts it (the toolkit's ``train``, which unpacks the code channel's
    <hash>.gz and runs sagemaker_program) -> the gate on its real evaluation -> register -> deploy."""
    with WorkflowHarness(templates).running() as harness:
        harness.training_outcomes = [TrainingOutcome(script_mode=True)]
        payload = upload_dataset(harness)
        payload["hyperparameters"]["num_layers"] = "20"  # a CIFAR ResNet: seconds on a CPU
        execution = harness.start("training", payload, name="flowers-v1-script-mode")
        result = harness.wait(execution, timeout=300)
        (request,) = harness.training_requests
        name = request["TrainingJobName"]
        log = harness.training_logs.get(name, "the training job did not run")
        assert result["status"] == "SUCCEEDED", harness.explain(execution) + "\n" + log
        assert "Deploy" in harness.states_entered(execution)

        # the toolkit ran the program of the archive it unpacked from the code channel
        code = json.loads(request["HyperParameters"]["sagemaker_submit_directory"])
        assert code.startswith("/opt/ml/input/data/code/") and code.endswith(".gz"), code
        assert f"SM_MODULE_DIR={code}" in log and "SM_FRAMEWORK_MODULE=sagemaker_mxnet_container.training:main" in log
        assert "train_mxnet.py --epochs 2 --image_shape 3,32,32 --mini_batch_size 4" in log, log
        assert "Training ResNet-20 on cpu(0)" in log and "Reporting training SUCCESS" in log, log
        description = harness.jobs[name]
        assert description["TrainingJobStatus"] == "Completed" and "FailureReason" not in description

        s3 = boto3.client("s3", region_name=REGION)
        model_uri = description["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, _, key = model_uri[5:].partition("/")
        assert key == f"training-jobs/{name}/output/model.tar.gz"
        model = tar_members(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert {
            "image-classification-symbol.json",
            "model-info.json",
            "model-shapes.json",
            "code/inference.py",
            "code/image_training/mxnet_inference.py",
        } <= set(model), sorted(model)
        info = json.loads(model["model-info.json"])
        assert info["labels"] == ["daisy", "rose"] and info["params"] in model
        output = tar_members(
            s3.get_object(Bucket=bucket, Key=key.replace("model.tar.gz", "output.tar.gz"))["Body"].read()
        )
        evaluation = json.loads(output["evaluation.json"])

        # the gate read that evaluation: its copy, the package's accuracy, the approval
        copy = s3.get_object(Bucket=bucket, Key=f"evaluations/{name}/evaluation.json")["Body"].read()
        assert json.loads(copy) == evaluation and evaluation["accuracy"] >= 0.8, evaluation
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        (summary,) = sagemaker.list_model_packages(ModelPackageGroupName="imgclf-dev-models")["ModelPackageSummaryList"]
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        assert package["ModelApprovalStatus"] == "Approved"
        assert package["CustomerMetadataProperties"]["accuracy"] == f"{evaluation['accuracy']:.4f}"
        assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_uri

        # the checkpoints the job left in /opt/ml/checkpoints are in CheckpointConfig.S3Uri
        checkpoints = request["CheckpointConfig"]["S3Uri"]
        saved = {k[len(checkpoints[5:].partition("/")[2]) :].lstrip("/") for k in harness.keys_under(checkpoints)}
        assert {"checkpoint-state.json", "last.params", "best.params"} <= saved, saved

        # a job whose program fails: the reason it wrote to /opt/ml/output/failure, no artifacts
        harness.training_outcomes = [TrainingOutcome(script_mode=True)]
        hyperparameters = {**request["HyperParameters"], "num_training_samples": "13"}
        bad = harness.run_training_job(
            {**request, "TrainingJobName": name + "-bad", "HyperParameters": hyperparameters}
        )
        assert bad["TrainingJobStatus"] == "Failed" and "ModelArtifacts" not in bad, bad
        assert bad["FailureReason"].startswith("ClientError: hyperparameter num_training_samples: 13"), bad
        assert harness.keys_under(f"s3://{bucket}/training-jobs/{name}-bad/") == []
