"""One pipeline run on this machine, with the steps of the cloud workflow and its idempotency:
the execution name comes from the dataset version and the configuration, so a second run on
the same data reuses the registered model instead of training again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, NamedTuple, Optional

from app.local_sagemaker import LocalTrainingJob, collect
from app.local_serving import content_type_of, invoke
from image_dataset.layout import RECORDIO
from image_dataset.pack import pack_channels
from image_dataset.recordio import RecordIOReader, unpack
from image_dataset.validate import ValidationOptions, load_index
from lambdas.gate.logic import decide
from lambdas.trigger.logic import execution_name

from .endpoint import LocalEndpoint
from .registry import APPROVED, REJECTED, ModelRegistry
from .report import write_report

EXIT_DEPLOYED, EXIT_FAILED, EXIT_REJECTED = 0, 1, 3
# a small CIFAR-style network for the CPU; --hp overrides any of them
DEFAULT_HYPERPARAMETERS = {
    "mxnet": {
        "num_layers": "20",
        "image_shape": "3,32,32",
        "resize": "32",
        "epochs": "20",
        "mini_batch_size": "32",
        "learning_rate": "0.05",
        "lr_scheduler_step": "12,17",
    },
    # MobileNetV2 from scratch at 32x32 (no ImageNet download needed)
    "tensorflow": {
        "model_name": "mobilenet_v2",
        "use_pretrained_model": "0",
        "image_size": "32",
        "epochs": "15",
        "batch_size": "32",
    },
}


class RunResult(NamedTuple):
    exit_code: int
    execution: str
    report: Optional[Path]
    endpoint: Optional[LocalEndpoint]
    summary: Dict[str, Any]


def dataset_version(root: Path) -> str:
    """A fingerprint of the dataset's files (paths, sizes, modification times)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class PipelineRun:
    """validate -> pack -> train -> gate -> register -> deploy (blue/green) -> classify -> report."""

    def __init__(
        self,
        dataset: str,
        work_dir: str,
        backend: str = "mxnet",
        hyperparameters: Optional[Dict[str, str]] = None,
        threshold: float = 0.9,
        port: int = 0,
        log: Optional[IO[str]] = None,
        say: Callable[[str], None] = print,
        max_regression: float = 0.0,
        progress: Optional[Callable[[str, int, int], None]] = None,
    ) -> None:
        self.dataset = Path(dataset).resolve()
        self.work = Path(work_dir).resolve()
        self.backend = backend
        self.overrides = dict(hyperparameters or {})
        self.threshold = threshold
        self.max_regression = max_regression  # how much worse than the approved model may pass
        self.progress = progress or (lambda what, done, total: None)  # (what, done, total)
        self.port = port
        self.log = log
        self.say = say
        self.steps: List[Dict[str, str]] = []
        self.registry = ModelRegistry(str(self.work / "registry"), "image-classification")

    def _step(self, name: str, status: str, detail: str) -> None:
        self.steps.append({"step": name, "status": status, "detail": detail})
        self.say(f"{name:<9} {status:<8} {detail}")

    def hyperparameters(self, report: Dict[str, Any]) -> Dict[str, str]:
        """Defaults, then the caller's overrides, then what the validation report fills in."""
        hps = dict(DEFAULT_HYPERPARAMETERS.get(self.backend, {}))
        hps.update(self.overrides)
        hps.setdefault("num_classes", str(report["num_classes"]))
        if self.backend == "mxnet":
            hps["num_training_samples"] = str(report["channels"]["train"]["samples"])
        return hps

    def run(self) -> RunResult:
        version = dataset_version(self.dataset)
        defaults = dict(DEFAULT_HYPERPARAMETERS.get(self.backend, {}), **self.overrides)
        if "image_size" in defaults:  # TensorFlow: every image is resized to image_size
            shape = [3, int(defaults["image_size"]), int(defaults["image_size"])]
            resize: Optional[int] = shape[1]
        else:
            shape = [int(v) for v in defaults.get("image_shape", "3,224,224").split(",")]
            resize = int(defaults["resize"]) if "resize" in defaults else None
        options = ValidationOptions(
            image_shape=tuple(shape),  # type: ignore[arg-type]
            resize=resize,
            mini_batch_size=int(defaults.get("mini_batch_size", defaults.get("batch_size", 32))),
        )
        index = load_index(str(self.dataset), options)
        report = index.report
        summary: Dict[str, Any] = {
            "dataset": str(self.dataset),
            "dataset_version": version[:12],
            "backend": self.backend,
            "validation": report,
            "steps": self.steps,
        }
        if not report["valid"]:
            self._step(
                "validate",
                "failed",
                "{} errors, e.g. {}".format(
                    sum(n for c, n in report["counts"].items() if any(e["code"] == c for e in report["errors"])),
                    "; ".join("{} {}".format(e["code"], e["location"]) for e in report["errors"][:3]),
                ),
            )
            summary["execution"] = "invalid-" + version[:12]
            return self._finish(EXIT_FAILED, summary, "", None)
        channels = report["channels"]
        self._step(
            "validate", "ok", ", ".join("{} {} {}".format(n, c["samples"], c["format"]) for n, c in channels.items())
        )
        hps = self.hyperparameters(report)
        execution = execution_name(
            self.dataset.name,
            version[:12],
            {
                "backend": self.backend,
                "hyperparameters": hps,
                "threshold": self.threshold,
                "max_regression": self.max_regression,
            },
        )
        summary.update(execution=execution, hyperparameters=hps)
        job_dir = self.work / "jobs" / execution
        package = self.registry.find(execution)
        log_text = ""
        if package is not None:
            evaluation = json.loads((Path(package["model"]).parent / "evaluation.json").read_text())
            self._step(
                "train",
                "reused",
                "dataset version and configuration unchanged: model version {}".format(package["version"]),
            )
            log_path = job_dir / "job.log"
            log_text = log_path.read_text() if log_path.exists() else ""
        else:
            data = self._pack(index, channels, execution)
            job = LocalTrainingJob(self.backend, str(job_dir), data, hps)
            result = job.run(echo=self.log)
            log_text = result.log.read_text()
            collect(result, str(job_dir / "results"))
            if result.exit_code != 0 or result.model_tar is None or result.evaluation is None:
                self._step("train", "failed", result.failure or "the job failed")
                return self._finish(EXIT_FAILED, summary, log_text, None)
            evaluation = result.evaluation
            self._step(
                "train",
                "ok",
                "validation accuracy {:.4f} (best epoch {})".format(
                    evaluation["accuracy"], evaluation.get("best_epoch")
                ),
            )
            current = self.registry.approved()
            decision = decide(evaluation, self.threshold, current["metrics"] if current else None, self.max_regression)
            self._step("gate", "ok" if decision.approved else "rejected", decision.reason)
            lineage = {
                "dataset": str(self.dataset),
                "dataset_version": version,
                "execution": execution,
                "validation_report": str(job_dir / "results" / "output.tar.gz"),
                "job": str(job_dir),
            }
            package = self.registry.register(
                result.model_tar,
                evaluation,
                APPROVED if decision.approved else REJECTED,
                execution,
                lineage,
                decision.reason,
            )
            self._step("register", "ok", "model version {} {}".format(package["version"], package["status"]))
        summary.update(evaluation=evaluation, model_version=package["version"])
        if package["status"] != APPROVED:
            return self._finish(EXIT_REJECTED, summary, log_text, None)
        endpoint = self._deploy(package, index)
        if endpoint is None:
            return self._finish(EXIT_FAILED, summary, log_text, None)
        summary["endpoint"] = endpoint.url
        return self._finish(EXIT_DEPLOYED, summary, log_text, endpoint, self._classify(endpoint, index))

    def _pack(self, index: Any, channels: Dict[str, Any], execution: str) -> Dict[str, str]:
        """Image channels become RecordIO channel folders (with their class names), as the cloud
        workflow's Pack step makes them; RecordIO channels are used where they are."""
        output = self.work / "packed" / execution
        packed = pack_channels(
            index, str(output), lambda name, done, total: self.progress("packing " + name, done, total)
        )
        data = {name: str(output / name) for name in packed}
        for name in ("train", "validation"):
            if channels[name]["format"] == RECORDIO:
                data[name] = str(self.dataset / name)
        self._step("pack", "ok", "image channels packed into RecordIO")
        return data

    def _deploy(self, package: Dict[str, Any], index: Any) -> Optional[LocalEndpoint]:
        canary, canary_type = self._held_out(index, 1)[0][1:3]
        endpoint = LocalEndpoint(self.port)
        blue = self.registry.deployed()
        if blue is not None and blue["version"] != package["version"]:
            restored = endpoint.deploy(blue["model"], blue["version"], canary, canary_type)
            if not restored.switched:
                self._step(
                    "deploy",
                    "warning",
                    "the previously deployed version {} did not start: {}".format(blue["version"], restored.reason),
                )
        outcome = endpoint.deploy(package["model"], package["version"], canary, canary_type)
        if not outcome.switched:
            if endpoint.live is not None:
                self._step(
                    "deploy", "failed", f"{outcome.reason}; rolled back: version {endpoint.live_version} keeps serving"
                )
            else:
                self._step("deploy", "failed", outcome.reason)
            endpoint.stop()
            return None
        self.registry.set_deployed(package["version"])
        via = (
            "blue/green from version {}".format(blue["version"])
            if blue is not None and blue["version"] != package["version"]
            else "first deployment"
        )
        self._step("deploy", "ok", "version {} live at {} ({})".format(package["version"], endpoint.url, via))
        return endpoint

    def _held_out(self, index: Any, count: int) -> List[tuple]:
        """(name, image bytes, content type, true label) of validation images."""
        labels = index.label_names
        found: List[tuple] = []
        if "validation" in index.channels:
            root = Path(index.store.local_path(""))
            samples = index.channels["validation"][1]
            step = max(1, len(samples) // count)
            for sample in samples[::step][:count]:
                truth = labels[int(sample.labels[0])] if labels and len(sample.labels) == 1 else None
                found.append((sample.path, (root / sample.path).read_bytes(), content_type_of(sample.path), truth))
            return found
        rec = next(iter(sorted((self.dataset / "validation").glob("*.rec"))))
        with open(rec, "rb") as f:
            for number, (_, record) in enumerate(RecordIOReader(f)):
                if number >= count:
                    break
                header, image = unpack(record)
                label = header.label if isinstance(header.label, float) else None
                truth = (
                    labels[int(label)]
                    if labels and label is not None
                    else (str(int(label)) if label is not None else None)
                )
                found.append((f"{rec.name}#{number}", image, "application/x-image", truth))
        return found

    def _classify(self, endpoint: LocalEndpoint, index: Any) -> List[Dict[str, Any]]:
        """Held-out images through the endpoint, in the API's request/response format."""
        samples = []
        for name, image, content_type, truth in self._held_out(index, 8):
            status, _, body = invoke(endpoint.url, image, content_type, "application/json;verbose")
            if status != 200:
                continue
            answer = json.loads(body)
            samples.append(
                {
                    "name": name,
                    "image": image,
                    "content_type": content_type if content_type != "application/x-image" else "image/jpeg",
                    "predicted": answer["predicted_label"],
                    "probability": answer["top_k"][0]["probability"],
                    "truth": truth,
                }
            )
        right = sum(1 for s in samples if s["truth"] == s["predicted"])
        self._step("classify", "ok", f"{len(samples)} held-out images through {endpoint.url}: {right} right")
        return samples

    def _finish(
        self,
        code: int,
        summary: Dict[str, Any],
        log: str,
        endpoint: Optional[LocalEndpoint],
        samples: Optional[List[Dict[str, Any]]] = None,
    ) -> RunResult:
        folder = self.work / "runs" / summary["execution"]
        report = write_report(folder, summary, log, samples or [])
        (folder / "summary.json").write_text(
            json.dumps({k: v for k, v in summary.items() if k != "validation"}, indent=2, default=str)
        )
        return RunResult(code, summary["execution"], report, endpoint, summary)
