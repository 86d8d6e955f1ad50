"""The optional input channels both backends read: ``pretrained`` (ImageNet weights) and
``model`` (an earlier model.tar.gz of this product, for incremental training)."""

from __future__ import annotations

import os
import tarfile
import tempfile
from typing import Tuple

from .errors import ClientError


def single_file(folder: str, suffixes: Tuple[str, ...], what: str) -> str:
    """The one file of a channel whose name ends with one of ``suffixes``."""
    found = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder, followlinks=True)
        for name in names
        if name.endswith(suffixes)
    )
    if len(found) != 1:
        raise ClientError(
            "the {} channel must hold one {} file, found {}".format(what, " or ".join(suffixes), len(found))
        )
    return found[0]


def earlier_model(channel: str) -> str:
    """The folder of the model in the model channel (a model.tar.gz, or its contents)."""
    if os.path.exists(os.path.join(channel, "model-info.json")):
        return channel
    archive = single_file(channel, (".tar.gz",), "model")
    target = tempfile.mkdtemp(prefix="imgclf-model-")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(
                target,
                members=[
                    m
                    for m in tar.getmembers()
                    if (m.isfile() or m.isdir()) and not m.name.startswith("/") and ".." not in m.name.split("/")
                ],
            )
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ClientError(f"the model channel's {os.path.basename(archive)} cannot be read: {err}") from None
    if not os.path.exists(os.path.join(target, "model-info.json")):
        raise ClientError(
            f"the model channel's {os.path.basename(archive)} is not a model trained by imgclf (no model-info.json)"
        )
    return target
