"""What the workflows created outside CloudFormation (the endpoint, its auto-scaling target,
endpoint configs and models, all named ``<prefix>-...``, and the versions in the stage's Model
Package Group), removed when the stack is deleted."""

from __future__ import annotations

from typing import Any, Dict, List


def _paged(call: Any, key: str, **kwargs: Any) -> List[Dict[str, Any]]:
    items: List[Dict[str, Any]] = []
    token = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        items += page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return items


def remove_deployments(
    sagemaker: Any, autoscaling: Any, endpoint: str, prefix: str, *, group: str
) -> Dict[str, List[str]]:
    """Delete the endpoint, then every endpoint config and model of ``prefix``, then the versions
    in model package ``group`` (CloudFormation cannot delete a group that holds any). Returns the
    names and ARNs."""
    removed: Dict[str, List[str]] = {"endpoints": [], "endpoint_configs": [], "models": [], "model_packages": []}
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    if targets.get("ScalableTargets"):
        autoscaling.deregister_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )
    names = [e["EndpointName"] for e in _paged(sagemaker.list_endpoints, "Endpoints", NameContains=prefix)]
    if endpoint in names:
        sagemaker.delete_endpoint(EndpointName=endpoint)
        removed["endpoints"].append(endpoint)
    for config in _paged(sagemaker.list_endpoint_configs, "EndpointConfigs", NameContains=prefix):
        if config["EndpointConfigName"].startswith(prefix + "-"):
            sagemaker.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
            removed["endpoint_configs"].append(config["EndpointConfigName"])
    for model in _paged(sagemaker.list_models, "Models", NameContains=prefix):
        if model["ModelName"].startswith(prefix + "-"):
            sagemaker.delete_model(ModelName=model["ModelName"])
            removed["models"].append(model["ModelName"])
    for package in _paged(sagemaker.list_model_packages, "ModelPackageSummaryList", ModelPackageGroupName=group):
        sagemaker.delete_model_package(ModelPackageName=package["ModelPackageArn"])
        removed["model_packages"].append(package["ModelPackageArn"])
    return removed
