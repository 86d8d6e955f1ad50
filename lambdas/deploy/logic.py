"""Names and the path of one deployment: a new model and endpoint config per model package
version and deployment run, create or blue/green update, or nothing when the endpoint already
serves that version (a manual approval of a package the workflow deployed, a repeated event)."""

from __future__ import annotations

import hashlib
from typing import Any, Dict, Mapping, Optional

MAX_NAME = 63


def resource_name(prefix: str, version: int, run_id: str) -> str:
    """``<prefix>-v<version>-<8 hex>``: unique per deployment run, at most 63 characters."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{prefix}-v{version}-{digest}"[:MAX_NAME]


def version_of(config_name: Optional[str], prefix: str) -> Optional[int]:
    """The package version an endpoint config of ours was made for."""
    if not config_name or not config_name.startswith(prefix + "-v"):
        return None
    number = config_name[len(prefix) + 2 :].split("-", 1)[0]
    return int(number) if number.isdigit() else None


def deployment_plan(
    package: Mapping[str, Any], endpoint: Optional[Mapping[str, Any]], prefix: str, run_id: str
) -> Dict[str, Any]:
    """``package``: DescribeModelPackage; ``endpoint``: DescribeEndpoint, or None if none exists."""
    version = int(package["ModelPackageVersion"])
    name = resource_name(prefix, version, run_id)
    current = version_of(endpoint.get("EndpointConfigName"), prefix) if endpoint else None
    status = endpoint.get("EndpointStatus") if endpoint else None
    if package.get("ModelApprovalStatus") != "Approved":
        action = "skip"
        reason = f"model package version {version} is {package.get('ModelApprovalStatus')}, not Approved"
    elif endpoint and current == version and status == "InService":
        action, reason = "skip", f"the endpoint already serves model package version {version}"
    elif endpoint and status not in ("InService", "Failed"):
        action, reason = "busy", f"the endpoint is {status}; a deployment is in progress"
    elif endpoint and status == "InService":
        action, reason = "update", f"blue/green update from version {current} to {version}"
    else:
        action, reason = "create", f"new endpoint with version {version}"
    return {
        "action": action,
        "reason": reason,
        "version": version,
        "model_package_arn": package["ModelPackageArn"],
        "model_name": name,
        "endpoint_config_name": name,
        "previous_endpoint_config_name": endpoint.get("EndpointConfigName") if endpoint else None,
    }
