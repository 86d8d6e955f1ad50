"""Where a dataset's files live. Paths are POSIX paths relative to the dataset root.

``LocalStore`` reads a directory; the validator Lambda supplies an S3 store with the same
methods (ranged GETs), so the format code never knows where the bytes come from.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO, Iterator, List, Optional, Set, Tuple

_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


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
        """Every file below ``path``, as paths relative to the store root, sorted per folder.
        A folder that cannot be listed raises OSError (never skipped in silence)."""
        raise NotImplementedError

    def local_path(self, path: str) -> Optional[str]:
        """A filesystem path for ``path`` when the store is local, so workers can open it."""
        return None

    def describe(self, path: str) -> str:
        return path

    def error_path(self, err: OSError, path: str) -> str:
        """The store path an OSError raised while reading ``path`` is about (for a walk: the
        folder below ``path`` that failed)."""
        return path


def access_problem(err: OSError, what: str = "file") -> Tuple[str, str]:
    """The issue code and message for an OSError met on a dataset's ``what`` (file or folder):
    FILE_MISSING when it is not there (deleted while it was read, a broken symbolic link),
    FILE_UNREADABLE otherwise (permissions, I/O errors, a folder that cannot be listed)."""
    reason = err.strerror or str(err) or type(err).__name__
    if isinstance(err, FileNotFoundError) or err.errno == errno.ENOENT:
        return "FILE_MISSING", f"the {what} does not exist (deleted while it was read, or a broken symbolic link)"
    if err.errno == errno.ELOOP:
        return "FILE_UNREADABLE", f"the {what} is a loop of symbolic links"
    verb = "list" if what == "folder" else "read"
    return "FILE_UNREADABLE", f"cannot {verb} the {what}: {reason}"


def _refuse_special(mode: int, path: str) -> None:
    for test, kind in _SPECIAL_FILES:
        if test(mode):
            raise OSError(errno.EINVAL, f"it is {kind}, not a file", path)


def open_fd(path: str) -> int:
    """``os.open(path, O_RDONLY)`` for a file of a dataset, refusing (OSError, with what it is)
    anything but a regular file: a named pipe would wait for a writer forever, a device would
    never end. The non-blocking open only makes a named pipe's open return at once."""
    _refuse_special(os.stat(path).st_mode, path)  # a socket cannot even be opened
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:  # again: it may have been replaced since
        _refuse_special(os.fstat(fd).st_mode, path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(path: str) -> BinaryIO:
    """``open(path, "rb")`` for a file of a dataset, refusing what ``open_fd`` refuses."""
    return os.fdopen(open_fd(path), "rb")


def join(*parts: str) -> str:
    """Join store paths, ignoring empty parts."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class LocalStore(Store):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _abs(self, path: str) -> str:
        return os.path.join(self.root, *path.split("/")) if path else self.root

    def size(self, path: str) -> int:
        """The size of a file; OSError for what ``open_fd`` refuses (a named pipe has size 0)."""
        found = os.stat(self._abs(path))
        _refuse_special(found.st_mode, self._abs(path))
        return found.st_size

    def read_at(self, path: str, offset: int, length: int) -> bytes:
        with open_file(self._abs(path)) as f:
            f.seek(offset)
            return f.read(length)

    def exists(self, path: str) -> bool:
        return os.path.exists(self._abs(path))

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(self._abs(path))

    def list_dir(self, path: str) -> List[str]:
        return sorted(os.listdir(self._abs(path)))

    def walk_files(self, path: str) -> Iterator[str]:
        """As im2rec lists images: symbolic links to folders are followed (each real folder
        once, so a link loop ends); a folder that cannot be listed raises its OSError."""

        def fail(err: OSError) -> None:
            raise err

        base = self._abs(path)
        seen: Set[str] = set()
        for dirpath, dirnames, filenames in os.walk(base, onerror=fail, followlinks=True):
            seen.add(os.path.realpath(dirpath))
            dirnames[:] = sorted(d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in seen)
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in sorted(filenames):
                yield name if rel_dir == "." else rel_dir + "/" + name

    def local_path(self, path: str) -> Optional[str]:
        return self._abs(path)

    def describe(self, path: str) -> str:
        return self._abs(path)

    def error_path(self, err: OSError, path: str) -> str:
        name = err.filename if isinstance(err.filename, str) else None
        if name is None:
            return path
        rel = os.path.relpath(os.path.abspath(name), self.root)
        if rel == os.curdir:
            return ""
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return path
        return rel.replace(os.sep, "/")
