"""Facts about SageMaker instance types that the requests depend on."""

from __future__ import annotations

INSTANCE_STORE_ONLY = ("g5", "g4dn", "p3dn", "p4d", "p5")


def instance_store_only(instance_type: str) -> bool:
    """Instance types with NVMe instance storage only, which take no volume KMS key."""
    return instance_type.split(".")[1] in INSTANCE_STORE_ONLY
