"""Where a dataset's files live. Paths are POSIX paths relative to the dataset root.

``LocalStore`` reads a directory; the validator Lambda supplies an S3 store with the same
methods (ranged GETs), so the format code never knows where the bytes come from.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Optional


class Store:
    """Read-only access to the files of one dataset."""

    def size(self, path: str) -> int:
        raise NotImplementedError

    def read_at(self, path: str, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def read(self, path: str) -> bytes:
        return self.read_at(path, 0, self.size(path))

    def read_many(self, paths: List[str]) -> List[bytes]:
        """Whole files, in order (a remote store fetches them concurrently)."""
        return [self.read(p) for p in paths]

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def is_dir(self, path: str) -> bool:
        raise NotImplementedError

    def list_dir(self, path: str) -> List[str]:
        """Names of the entries directly inside ``path`` (files and folders), sorted."""
        raise NotImplementedError

    def walk_files(self, path: str) -> Iterator[str]:
        """Every file below ``path``, as paths relative to the store root, sorted per folder."""
        raise NotImplementedError

    def local_path(self, path: str) -> Optional[str]:
        """A filesystem path for ``path`` when the store is local, so workers can open it."""
        return None

    def describe(self, path: str) -> str:
        return path


def join(*parts: str) -> str:
    """Join store paths, ignoring empty parts."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class LocalStore(Store):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _abs(self, path: str) -> str:
        return os.path.join(self.root, *path.split("/")) if path else self.root

    def size(self, path: str) -> int:
        return os.path.getsize(self._abs(path))

    def read_at(self, path: str, offset: int, length: int) -> bytes:
        with open(self._abs(path), "rb") as f:
            f.seek(offset)
            return f.read(length)

    def exists(self, path: str) -> bool:
        return os.path.exists(self._abs(path))

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(self._abs(path))

    def list_dir(self, path: str) -> List[str]:
        return sorted(os.listdir(self._abs(path)))

    def walk_files(self, path: str) -> Iterator[str]:
        base = self._abs(path)
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in sorted(filenames):
                yield name if rel_dir == "." else rel_dir + "/" + name

    def local_path(self, path: str) -> Optional[str]:
        return self._abs(path)

    def describe(self, path: str) -> str:
        return self._abs(path)
