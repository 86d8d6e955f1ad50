"""What moto 5.2.5 lacks and the offline tests need, added the way the real service behaves."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator
from unittest import mock


@contextlib.contextmanager
def model_package_deletes() -> Iterator[None]:
    """DeleteModelPackage and DeleteModelPackageGroup, with SageMaker's rule that a group still
    holding versions cannot be deleted (ConflictException), which is what fails CloudFormation's
    deletion of AWS::SageMaker::ModelPackageGroup."""
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ConflictException, ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def delete_package(backend: Any, name: str) -> None:
        arn = backend.model_package_name_mapping.get(name, name)
        if backend.model_packages.pop(arn, None) is None:
            raise ValidationError(f"Model package {name} not found")
        for key in [k for k, v in backend.model_package_name_mapping.items() if v == arn]:
            del backend.model_package_name_mapping[key]

    def delete_group(backend: Any, name: str) -> None:
        if name not in backend.model_package_groups:
            raise ValidationError(f"Model package group {name} not found")
        if any(p.model_package_group_name == name for p in backend.model_packages.values()):
            raise ConflictException(f"Model package group {name} still has model packages")
        del backend.model_package_groups[name]

    def package_action(self: Any) -> Any:
        self.sagemaker_backend.delete_model_package(self._get_param("ModelPackageName"))
        return EmptyResult()

    def group_action(self: Any) -> Any:
        self.sagemaker_backend.delete_model_package_group(self._get_param("ModelPackageGroupName"))
        return EmptyResult()

    with contextlib.ExitStack() as stack:
        for target, name, value in (
            (SageMakerModelBackend, "delete_model_package", delete_package),
            (SageMakerModelBackend, "delete_model_package_group", delete_group),
            (SageMakerResponse, "delete_model_package", package_action),
            (SageMakerResponse, "delete_model_package_group", group_action),
        ):
            stack.enter_context(mock.patch.object(target, name, value, create=True))
        yield
