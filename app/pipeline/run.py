"""One pipeline run on this machine, with the steps of the cloud workflow and its idempotency:
the execution name comes from the dataset version and the configuration, so a second run on
the same data reuses the registered model instead of training again."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from app.local_sagemaker import LocalTrainingJob, collect
from app.local_serving import Capture, content_type_of, invoke
from image_dataset.descriptor import Descriptor
from image_dataset.layout import RECORDIO
from image_dataset.pack import pack_channels
from image_dataset.validate import ValidationOptions, load_index
from image_training.data import held_out
from image_training.errors import ClientError
from imgclf_core.backends import REGISTRY, backend
from imgclf_core.gate import APPROVED, REJECTED, decide
from imgclf_core.plan import (
    DATA_DERIVED,
    FROM_DATA,
    OVERRIDE,
    HyperparameterValues,
    RunPlan,
    check_settable,
    plan_run,
    split_ratio,
    stage_identity,
)

from .dataset_files import _records, dataset_version, spread
from .endpoint import LocalEndpoint
from .registry import ModelRegistry, job_baseline
from .report import write_report
from .watch import watch

EXIT_DEPLOYED, EXIT_FAILED, EXIT_REJECTED = 0, 1, 3
# how the run names the source of an override (the cloud's is the descriptor)
SOURCE_LABELS = {OVERRIDE: "--hp"}
WATCHED_IMAGES = 200  # held-out images per monitored window (the monitor's checks need 100)
# where the local pipeline trains: this machine, each backend's environment (stage_identity)
LOCAL_TRAINING = {"where": "local"}


def defaults_help() -> str:
    """What ``pipeline run`` uses unless told otherwise, per backend, for ``--help``."""
    lines = ["hyperparameters (--hp KEY=VALUE overrides any of them):"]
    for record in REGISTRY.values():
        params = record.schema().params
        derived = [name for name in DATA_DERIVED if name in params]
        lines.append("  {}: {}".format(record.name, " ".join(f"{k}={v}" for k, v in record.local_defaults.items())))
        lines.append("    from the data: {}".format(", ".join(derived)))
        if record.split_ratio:
            ratio = f"{record.split_ratio}={params[record.split_ratio].default}"
            lines.append(f"    no validation channel: the training job holds out {ratio} of train")
        else:
            lines.append("    no validation channel: refused (the backend's training job needs one)")
    lines.append("The run prints each value and where it comes from, and report.html and summary.json keep them.")
    return "\n".join(lines)


class Model(NamedTuple):
    """A run's registered model version (None where training failed) and its job's log."""

    package: Optional[Dict[str, Any]]
    evaluation: Optional[Dict[str, Any]]
    log: str


class RunResult(NamedTuple):
    exit_code: int
    execution: str
    report: Optional[Path]
    endpoint: Optional[LocalEndpoint]
    summary: Dict[str, Any]


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
        descriptor: Optional[Dict[str, str]] = None,
        watch: bool = False,
    ) -> None:
        self.dataset = Path(dataset).resolve()
        self.work = Path(work_dir).resolve()
        self.backend = backend
        # the rule of the cloud's dataset.json: known names, values that parse, none from the data
        self.overrides = check_settable(backend, dict(hyperparameters or {}))
        # how to read the dataset, as a dataset.json says it in the cloud: format, label_attribute
        self.descriptor = {k: v for k, v in (descriptor or {}).items() if v}
        # the upload's dataset.json that this run stands for: how to read the data, and --hp
        self.upload = Descriptor(
            format=self.descriptor.get("format"),
            label_attribute=self.descriptor.get("label_attribute"),
            hyperparameters=self.overrides,
        )
        self.threshold = threshold
        self.max_regression = max_regression  # how much worse than the approved model may pass
        self.progress = progress or (lambda what, done, total: None)  # (what, done, total)
        self.port = port
        self.log = log
        self.say = say
        self.steps: List[Dict[str, str]] = []
        self.registry = ModelRegistry(str(self.work / "registry"), "image-classification")
        # watch production: capture the endpoint's traffic and monitor it against the baseline
        self.watch = watch

    def _step(self, name: str, status: str, detail: str) -> None:
        self.steps.append({"step": name, "status": status, "detail": detail})
        self.say(f"{name:<9} {status:<8} {detail}")

    def plan(self, version: str, report: Optional[Dict[str, Any]] = None) -> RunPlan:
        """The run's plan, as the cloud workflow's trigger, validate and plan steps make it."""
        stage = stage_identity(self.backend, LOCAL_TRAINING, self.threshold, self.max_regression)
        defaults = backend(self.backend).local_defaults
        return plan_run(self.dataset.name, version, self.upload, self.backend, defaults, stage, report)

    def effective(self) -> Dict[str, str]:
        """The defaults, then the caller's overrides: what the job gets before the data are read."""
        return {**backend(self.backend).local_defaults, **self.overrides}

    @staticmethod
    def settings(plan: RunPlan) -> List[Dict[str, str]]:
        """Every hyperparameter the run sets, with its source: the defaults, the caller's
        overrides and, once validated, what the data decide."""
        return [{"name": n, "value": v, "source": SOURCE_LABELS.get(s, s)} for n, v, s in plan.settings()]

    def epochs(self) -> int:
        """The number of epochs the job will train, read as the job reads it ("20", "20.0")."""
        return int(HyperparameterValues(self.backend, self.effective())["epochs"])

    def _say_settings(self, settings: Sequence[Dict[str, str]]) -> None:
        by_source: Dict[str, List[str]] = {}
        for s in settings:
            by_source.setdefault(s["source"], []).append("{}={}".format(s["name"], s["value"]))
        for source, values in by_source.items():
            self.say("{:<9} {}: {}".format("settings", source, ", ".join(values)))

    def _say_input(self, report: Dict[str, Any], options: ValidationOptions) -> str:
        """The image sizes found and the size the network sees."""
        sizes = [c["image_size"] for c in report["channels"].values() if c.get("image_size")]
        shape = options.image_shape
        seen = f"{shape[2]}x{shape[1]}" if shape else "as stored"
        if not sizes:
            text = f"the network sees {seen} images"
        else:
            text = "images of {}x{} to {}x{} pixels; the network sees {} (resize {})".format(
                min(s["min_width"] for s in sizes),
                min(s["min_height"] for s in sizes),
                max(s["max_width"] for s in sizes),
                max(s["max_height"] for s in sizes),
                seen,
                options.resize or "none",
            )
        self.say("{:<9} {}: {}".format("input", FROM_DATA, text))
        return text

    def run(self) -> RunResult:
        version = dataset_version(self.dataset)
        self.say(f"dataset   {self.dataset} ({self.backend} backend)")
        plan = self.plan(version[:12])
        self._say_settings(self.settings(plan))
        index = load_index(str(self.dataset), plan.validation)
        report = index.report
        summary: Dict[str, Any] = {
            "dataset": str(self.dataset),
            "dataset_version": version[:12],
            "backend": self.backend,
            "validation": report,
            "settings": self.settings(plan),
            "steps": self.steps,
        }
        if self.descriptor:
            summary["descriptor"] = self.descriptor
        if not self._validated(report):
            summary["execution"] = "invalid-" + version[:12]
            return self._finish(EXIT_FAILED, summary, "", None)
        channels = report["channels"]
        plan = plan.with_report(report)
        settings = self.settings(plan)
        self._say_settings([s for s in settings if s["source"] == FROM_DATA])
        summary.update(settings=settings, input=self._say_input(report, plan.validation))
        summary.update(execution=plan.execution, hyperparameters=plan.hyperparameters)
        held: Optional[Set[int]] = None
        if "validation" not in channels:
            held = self._split(channels["train"]["samples"], plan)
            if held is None:
                return self._finish(EXIT_FAILED, summary, "", None)
            summary["held_out"] = len(held)
        model = self._model(plan, index, channels, version)
        if model.package is None:
            return self._finish(EXIT_FAILED, summary, model.log, None)
        summary.update(evaluation=model.evaluation, model_version=model.package["version"])
        if model.package["status"] != APPROVED:
            return self._finish(EXIT_REJECTED, summary, model.log, None)
        held_images = self._held_out(index, 8, held, plan.execution, channels)
        endpoint = self._deploy(model.package, held_images[0][1:3])
        if endpoint is None:
            return self._finish(EXIT_FAILED, summary, model.log, None)
        summary["endpoint"] = endpoint.url
        samples = self._classify(endpoint, held_images)
        if self.watch:
            self._watch(endpoint, model.package, index, held, plan.execution, channels, summary)
        return self._finish(EXIT_DEPLOYED, summary, model.log, endpoint, samples)

    def _watch(
        self,
        endpoint: LocalEndpoint,
        package: Dict[str, Any],
        index: Any,
        held: Optional[Set[int]],
        execution: str,
        channels: Dict[str, Any],
        summary: Dict[str, Any],
    ) -> None:
        """The monitor step: held-out images, then the same inverted, through the endpoint with
        capture on, each window against the model's baseline (app/pipeline/watch.py)."""
        images = self._held_out(index, WATCHED_IMAGES, held, execution, channels)
        out = self.work / "runs" / execution / "monitor"
        try:
            seen = watch(endpoint.url, package["model"], images, self.work / "captures", out)
        except (RuntimeError, OSError, ValueError) as err:
            self._step("monitor", "failed", str(err))
            return
        summary["monitor"] = {"drift": seen.drift, "significant": seen.findings, "reports": seen.reports}
        said = [
            "{} {} images: {}".format(
                len(images), window, "drift in " + ", ".join(seen.findings[window]) if drift else "no drift"
            )
            for window, drift in seen.drift.items()
        ]
        self._step("monitor", "ok", "; ".join(said) + f" (reports in {out})")

    def _validated(self, report: Dict[str, Any]) -> bool:
        """The validate step: ok, or failed with the first errors."""
        if report["valid"]:
            channels = report["channels"]
            self._step("validate", "ok", ", ".join(f"{n} {c['samples']} {c['format']}" for n, c in channels.items()))
            return True
        errors = report["errors"]
        self._step(
            "validate",
            "failed",
            "{} errors, e.g. {}".format(
                sum(n for c, n in report["counts"].items() if any(e["code"] == c for e in errors)),
                "; ".join("{} {}".format(e["code"], e["location"]) for e in errors[:3]),
            ),
        )
        return False

    def _model(self, plan: RunPlan, index: Any, channels: Dict[str, Any], version: str) -> Model:
        """This run's registered model: an earlier run's with the same execution name, or one
        trained, gated and registered now (no package where training failed)."""
        job_dir = self.work / "jobs" / plan.execution
        package = self.registry.find(plan.execution)
        if package is None:
            return self._train(plan, index, channels, version, job_dir)
        evaluation = json.loads((Path(package["model"]).parent / "evaluation.json").read_text())
        self._step(
            "train",
            "reused",
            "dataset version and configuration unchanged: model version {}".format(package["version"]),
        )
        log_path = job_dir / "job.log"
        return Model(package, evaluation, log_path.read_text() if log_path.exists() else "")

    def _train(self, plan: RunPlan, index: Any, channels: Dict[str, Any], version: str, job_dir: Path) -> Model:
        """pack -> train -> gate -> register."""
        data = self._pack(index, channels, plan.execution)
        result = LocalTrainingJob(self.backend, str(job_dir), data, plan.hyperparameters).run(echo=self.log)
        log_text = result.log.read_text()
        collect(result, str(job_dir / "results"))
        if result.exit_code != 0 or result.model_tar is None or result.evaluation is None:
            self._step("train", "failed", result.failure or "the job failed")
            return Model(None, None, log_text)
        evaluation = result.evaluation
        best = "validation accuracy {:.4f} (best epoch {})".format(evaluation["accuracy"], evaluation.get("best_epoch"))
        self._step("train", "ok", best)
        current = self.registry.approved()
        decision = decide(evaluation, self.threshold, current["metrics"] if current else None, self.max_regression)
        self._step("gate", "ok" if decision.approved else "rejected", decision.reason)
        lineage = {
            "dataset": str(self.dataset),
            "dataset_version": version,
            "execution": plan.execution,
            "validation_report": str(job_dir / "results" / "output.tar.gz"),
            "job": str(job_dir),
        }
        status = APPROVED if decision.approved else REJECTED
        baseline = job_baseline(result.output_tar)
        package = self.registry.register(
            result.model_tar, evaluation, status, plan.execution, lineage, decision.reason, baseline
        )
        drift = "" if baseline is not None else ", without a drift baseline"
        self._step("register", "ok", "model version {} {}{}".format(package["version"], package["status"], drift))
        return Model(package, evaluation, log_text)

    def _split(self, samples: int, plan: RunPlan) -> Optional[Set[int]]:
        """No validation channel: the record numbers of train that the training job will hold
        out (None, with the step failed, where the backend's job would refuse the dataset)."""
        parameter = backend(self.backend).split_ratio
        ratio = split_ratio(self.backend, plan.effective)
        if not ratio:
            why = f"{parameter} is 0" if parameter else f"the {self.backend} backend does not split train"
            others = " or ".join(
                f"--backend {b.name}, which holds out {b.split_ratio} of train"
                for b in REGISTRY.values()
                if b.split_ratio
            )
            self._step(
                "split",
                "failed",
                f"there is no validation channel and {why}: its training job would stop with a ClientError, as "
                f"in the cloud workflow. Add a validation/ channel, or use {others}",
            )
            return None
        try:
            held = held_out(samples, ratio)
        except ClientError as err:
            self._step("split", "failed", str(err))
            return None
        self._step(
            "split",
            "ok",
            f"no validation channel: the training job holds out {len(held)} of {samples} train records "
            f"({parameter}={ratio:g}) as validation, as in the cloud workflow",
        )
        return held

    def _recordio_source(self, channel: Dict[str, Any]) -> str:
        """Where a RecordIO channel is: the dataset file, or the folder of its .rec files."""
        if self.dataset.is_file():
            return str(self.dataset)
        return str(self.dataset / posixpath.dirname(channel["files"][0]))

    def _rec_files(self, channel: Dict[str, Any]) -> List[Path]:
        """A RecordIO channel's files in the order the training job joins them."""
        root = self.dataset.parent if self.dataset.is_file() else self.dataset
        return [root / name for name in sorted(channel["files"])]

    def _pack(self, index: Any, channels: Dict[str, Any], execution: str) -> Dict[str, str]:
        """Image channels become RecordIO channel folders (with their class names), as the cloud
        workflow's Pack step makes them; RecordIO channels are used where they are."""
        output = self.work / "packed" / execution
        packed = pack_channels(
            index, str(output), lambda name, done, total: self.progress("packing " + name, done, total)
        )
        data = {name: str(output / name) for name in packed}
        for name, channel in channels.items():
            if channel["format"] == RECORDIO:
                data[name] = self._recordio_source(channel)
        self._step(
            "pack",
            "ok",
            "image channels packed into RecordIO: {}".format(", ".join(sorted(packed)))
            if packed
            else "nothing to pack: the channels are RecordIO",
        )
        return data

    def _deploy(self, package: Dict[str, Any], canary_image: Tuple[bytes, str]) -> Optional[LocalEndpoint]:
        canary, canary_type = canary_image
        capture = Capture(str(self.work / "captures"), 100.0, "imgclf-demo") if self.watch else None
        endpoint = LocalEndpoint(self.port, capture=capture)
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

    def _held_out(
        self, index: Any, count: int, held: Optional[Set[int]], execution: str, channels: Dict[str, Any]
    ) -> List[tuple]:
        """(name, image bytes, content type, true label) of images the model did not train on:
        the validation channel's, or without one, the train records that the job held out; spread
        over the channel, whose samples are often grouped by class."""
        labels = index.label_names
        if "validation" in index.channels:
            found: List[tuple] = []
            root = Path(index.store.local_path(""))
            samples = index.channels["validation"][1]
            for sample in (samples[i] for i in spread(len(samples), count)):
                truth = labels[int(sample.labels[0])] if labels and len(sample.labels) == 1 else None
                found.append((sample.path, (root / sample.path).read_bytes(), content_type_of(sample.path), truth))
            return found
        if "validation" in channels:
            chosen = set(spread(channels["validation"]["samples"], count))
            return list(_records(self._rec_files(channels["validation"]), chosen, count, labels))
        # the job splits the train channel it gets: the packed one, or the RecordIO as it is
        if channels["train"]["format"] == RECORDIO:
            files = self._rec_files(channels["train"])
        else:
            packed = self.work / "packed" / execution / "train"
            if not (packed / "train.rec").exists():  # a reused model whose packed data were removed
                self._pack(index, channels, execution)
            files = [packed / "train.rec"]
        return list(_records(files, held, count, labels))

    def _classify(self, endpoint: LocalEndpoint, held_images: List[tuple]) -> List[Dict[str, Any]]:
        """Held-out images through the endpoint, in the API's request/response format."""
        samples = []
        for name, image, content_type, truth in held_images:
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
