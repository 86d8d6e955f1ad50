"""Container image URIs of Amazon ECR: ``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:<tag>|@<digest>]``.
The registry's account differs by region for the AWS Deep Learning Containers, so grants and
checks take it from the URI."""

from __future__ import annotations

from typing import NamedTuple


class ImageUri(NamedTuple):
    account: str
    region: str
    repository: str
    tag: str = "latest"  # the tag, or the digest after "@"

    @classmethod
    def parse(cls, uri: str) -> ImageUri:
        """ValueError for a URI that is not an ECR image's."""
        registry, _, path = uri.partition("/")
        labels = registry.split(".")
        if len(labels) < 6 or labels[1:3] != ["dkr", "ecr"] or labels[4:6] != ["amazonaws", "com"] or not path:
            raise ValueError(f"{uri!r} is not an ECR image URI")
        if not labels[0].isdigit() or len(labels[0]) != 12:
            raise ValueError(f"{uri!r}: the registry {labels[0]!r} is not a 12-digit account")
        name, at, digest = path.partition("@")
        repository, colon, tag = name.partition(":")
        if not repository:
            raise ValueError(f"{uri!r} names no repository")
        return cls(labels[0], labels[3], repository, digest if at else (tag if colon else "latest"))
