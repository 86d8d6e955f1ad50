"""The app is synthesized once per test session, without asset bundling (tests/infra/
test_bundling.py bundles for real)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from .iam_model import PolicyModel, World

ROOT = Path(__file__).resolve().parents[2]


def stage_context(**overrides: Any) -> Dict[str, Any]:
    """cdk.json's context with the dev stage changed by ``overrides`` and bundling skipped."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["imgclf:stages"]["dev"].update(overrides)
    context["aws:cdk:bundling-stacks"] = []
    return context


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the session's cloud assembly (written when ``templates`` synthesizes)."""
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def templates(cdk_out: Path) -> Dict[str, Dict[str, Any]]:
    from infra.app import synthesize

    return synthesize(stage_context(), str(cdk_out))


@pytest.fixture(scope="session")
def assembly_dir(templates: Dict[str, Dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("templates")
    for name, template in templates.items():
        (folder / f"{name}.template.json").write_text(json.dumps(template))
    return folder


@pytest.fixture(scope="module")
def world(templates: Dict[str, Dict[str, Any]]) -> World:
    """The synthesized app's resources with their physical names (tests.infra.iam_model)."""
    return World(templates)


@pytest.fixture(scope="module")
def model(world: World) -> PolicyModel:
    """The IAM and key policies of the synthesized app, to authorize calls against."""
    return PolicyModel(world)
