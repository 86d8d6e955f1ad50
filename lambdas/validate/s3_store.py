"""A dataset :class:`~image_dataset.store.Store` over one S3 prefix: one listing, then ranged
GETs through a small aligned block cache, so sequential scans of a .rec cost one request per
block and memory stays bounded whatever the dataset's size."""

from __future__ import annotations

import json
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator, List, Set, Tuple

from image_dataset.store import Store

BLOCK = 8 << 20
CACHE_BYTES = 32 << 20  # what a scan revisits: the chunk being scanned and the images in it
FETCH_THREADS = 16  # concurrent GETs of image files (boto3 clients are thread-safe)


class S3Store(Store):
    def __init__(self, client: Any, bucket: str, prefix: str, block: int = BLOCK) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.block = block
        self.sizes: Dict[str, int] = {}
        self.dirs: Set[str] = {""}
        self._cache: OrderedDict[Tuple[str, int], bytes] = OrderedDict()
        self.requests = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                rel = item["Key"][len(self.prefix) :]
                if not rel or rel.endswith("/"):  # folder placeholders made by consoles
                    self._add_dirs(rel.rstrip("/"))
                    continue
                self.sizes[rel] = int(item["Size"])
                self._add_dirs(rel.rsplit("/", 1)[0] if "/" in rel else "")

    def _add_dirs(self, folder: str) -> None:
        while folder and folder not in self.dirs:
            self.dirs.add(folder)
            folder = folder.rsplit("/", 1)[0] if "/" in folder else ""

    def size(self, path: str) -> int:
        if path not in self.sizes:
            raise FileNotFoundError(self.describe(path))
        return self.sizes[path]

    def _block(self, path: str, number: int) -> bytes:
        key = (path, number)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        start = number * self.block
        end = min(start + self.block, self.size(path)) - 1
        self.requests += 1
        body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + path, Range=f"bytes={start}-{end}")
        data = body["Body"].read()
        self._cache[key] = data
        while len(self._cache) > max(3, CACHE_BYTES // self.block):
            self._cache.popitem(last=False)
        return data

    def read_at(self, path: str, offset: int, length: int) -> bytes:
        size = self.size(path)
        end = min(offset + length, size)
        if offset >= end:
            return b""
        parts: List[bytes] = []
        pos = offset
        while pos < end:
            number = pos // self.block
            data = self._block(path, number)
            start = pos - number * self.block
            take = min(end - pos, len(data) - start)
            parts.append(data[start : start + take])
            pos += take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_many(self, paths: List[str]) -> List[bytes]:
        """Whole objects (image files) by concurrent GETs, past the block cache: each is read
        once, and waiting for them one by one would dominate a list dataset's validation."""
        for path in paths:
            self.size(path)  # FileNotFoundError before any request

        def get(path: str) -> bytes:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + path)["Body"].read()
            return data

        with ThreadPoolExecutor(FETCH_THREADS) as pool:
            blobs = list(pool.map(get, paths))
        self.requests += len(paths)
        return blobs

    def exists(self, path: str) -> bool:
        return path in self.sizes or path.rstrip("/") in self.dirs

    def is_dir(self, path: str) -> bool:
        return path.rstrip("/") in self.dirs

    def list_dir(self, path: str) -> List[str]:
        folder = path.strip("/")
        if folder not in self.dirs:
            raise FileNotFoundError(self.describe(path))
        base = folder + "/" if folder else ""
        names = {
            p[len(base) :].split("/", 1)[0] for p in list(self.sizes) + list(self.dirs) if p and p.startswith(base)
        }
        names.discard("")
        return sorted(names)

    def walk_files(self, path: str) -> Iterator[str]:
        base = path.strip("/") + "/" if path.strip("/") else ""
        yield from sorted(p for p in self.sizes if p.startswith(base))

    def describe(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{path}"


class WorkArea:
    """A prefix in the artifact bucket where the steps of a fanned-out validation leave their
    results for each other (JSON documents and the shards' record tables)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"

    def put(self, name: str, body: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body)
        return self.prefix + name

    def get(self, name: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        return data

    def put_json(self, name: str, value: Any) -> str:
        return self.put(name, json.dumps(value, separators=(",", ":")).encode())

    def get_json(self, name: str) -> Any:
        return json.loads(self.get(name))
