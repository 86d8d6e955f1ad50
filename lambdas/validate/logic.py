"""Validate one uploaded dataset with the shared format core, as the training job will, and
sum up what the workflow needs: valid or not, where the report is, and the hyperparameters the
data decide (``num_classes``, ``num_training_samples``)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from image_dataset.descriptor import FILE_NAME
from image_dataset.shards import (
    IMAGES,
    Plan,
    ShardResult,
    merge,
    needs_shards,
    plan,
    records_from_bytes,
    records_to_bytes,
    run_shard,
)
from image_dataset.store import Store
from image_dataset.validate import ValidationOptions, Validator
from imgclf_core.plan import data_hyperparameters, validation_options

from .s3_store import WorkArea

REPORT_NAME = "validation-report.json"
IGNORED = (FILE_NAME, REPORT_NAME)  # files of the workflow, not of the dataset


def summary(report: Mapping[str, Any], backend: str, report_uri: str) -> Dict[str, Any]:
    """The validation step's output: small (Step Functions states carry at most 256 KB)."""
    errors: List[Mapping[str, Any]] = report["errors"]
    return {
        "valid": report["valid"],
        "report_uri": report_uri,
        "error_count": len(errors),
        "warning_count": len(report["warnings"]),
        "first_errors": [f"{e['location']}: {e['code']}: {e['message']}" for e in errors[:5]],
        "channels": {name: {"format": c["format"], "samples": c["samples"]} for name, c in report["channels"].items()},
        "num_classes": report["num_classes"],
        "hyperparameters": data_hyperparameters(backend, report),
    }


class WithoutWorkflowFiles(Store):
    """The dataset as the uploader made it: the descriptor and our report are not part of it."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def size(self, path: str) -> int:
        return self.inner.size(path)

    def read_at(self, path: str, offset: int, length: int) -> bytes:
        return self.inner.read_at(path, offset, length)

    def read_many(self, paths: List[str]) -> List[bytes]:
        return self.inner.read_many(paths)

    def exists(self, path: str) -> bool:
        return path not in IGNORED and self.inner.exists(path)

    def is_dir(self, path: str) -> bool:
        return self.inner.is_dir(path)

    def list_dir(self, path: str) -> List[str]:
        names = self.inner.list_dir(path)
        return [n for n in names if n not in IGNORED] if not path.strip("/") else names

    def walk_files(self, path: str) -> Any:
        return (p for p in self.inner.walk_files(path) if p not in IGNORED)

    def local_path(self, path: str) -> Optional[str]:
        return self.inner.local_path(path)

    def describe(self, path: str) -> str:
        return self.inner.describe(path)


def dataset_reader(store: Store, request: Mapping[str, Any]) -> Tuple[Store, ValidationOptions]:
    """The dataset without the workflow's files, and how to read it; ``request`` is the
    step's event: ``backend``, ``hyperparameters`` and the ``dataset``'s ``descriptor``."""
    descriptor = request.get("dataset", {}).get("descriptor", {})
    options = validation_options(request["backend"], request["hyperparameters"], descriptor)
    bucket = getattr(store, "bucket", None)  # manifests may reference s3:// objects of the dataset bucket
    options.allowed_buckets = (bucket,) if bucket else ()
    return WithoutWorkflowFiles(store), options


def validate(
    store: Store, backend: str, hyperparameters: Mapping[str, str], descriptor: Mapping[str, Any]
) -> Dict[str, Any]:
    """The full validation report of the dataset in ``store``, in this process."""
    request = {"backend": backend, "hyperparameters": hyperparameters, "dataset": {"descriptor": descriptor}}
    dataset, options = dataset_reader(store, request)
    return Validator(dataset, options, display_name=store.describe("")).run()


# -- the fan-out for datasets above one shard (image_dataset.shards) ------------------------
PLAN_FILE = "plan.json"  # the validator's state after the plan step
SHARDS_FILE = "shards.json"  # the Distributed Map's items, which the merge reads too


def _shard_file(index: int, what: str) -> str:
    """The name of shard ``index``'s image list (``images.json``) or result (``result.json``,
    ``records.npz``) in the work area."""
    return f"shard-{index:06d}-{what}"


class ShardLimits(NamedTuple):
    shard_bytes: int
    shard_images: int


def plan_fan_out(store: Store, work: WorkArea, request: Mapping[str, Any], limits: ShardLimits) -> Optional[Dict]:
    """For a dataset that is more than one shard's work: check what one step can, write the
    plan and the shard list to ``work``, and return the Map's input (None: validate at once)."""
    dataset, options = dataset_reader(store, request)
    if not needs_shards(dataset, limits.shard_bytes, limits.shard_images):
        return None
    planned = plan(dataset, options, limits.shard_bytes, limits.shard_images, store.describe(""))
    for index, files in planned.images.items():
        work.put_json(_shard_file(index, "images.json"), files)
    work.put_json(PLAN_FILE, planned.state)
    items_key = work.put_json(SHARDS_FILE, planned.shards)
    return {"shards": len(planned.shards), "work": {"bucket": work.bucket, "prefix": work.prefix, "items": items_key}}


def check_shard(store: Store, work: WorkArea, request: Mapping[str, Any], shard: Mapping[str, Any]) -> Dict:
    """Check one shard and leave its result in ``work``."""
    dataset, options = dataset_reader(store, request)
    index = shard["index"]
    images = None
    if shard["kind"] == IMAGES:
        images = [(where, path) for where, path in work.get_json(_shard_file(index, "images.json"))]
    result = run_shard(dataset, options, shard, images)
    if result.records is not None:
        work.put(_shard_file(index, "records.npz"), records_to_bytes(result.records))
    work.put_json(_shard_file(index, "result.json"), result.partial)
    return {"index": index}


def merge_shards(store: Store, work: WorkArea, request: Mapping[str, Any]) -> Dict[str, Any]:
    """The report of a fanned-out validation, from the plan and every shard's result."""
    dataset, options = dataset_reader(store, request)
    planned = Plan(work.get_json(PLAN_FILE), work.get_json(SHARDS_FILE), {})
    kinds = {shard["index"]: shard["kind"] for shard in planned.shards}

    def result(index: int) -> ShardResult:
        partial = work.get_json(_shard_file(index, "result.json"))
        if kinds[index] == IMAGES:
            return ShardResult(partial, None)
        return ShardResult(partial, records_from_bytes(work.get(_shard_file(index, "records.npz"))))

    return merge(dataset, options, planned, result)
