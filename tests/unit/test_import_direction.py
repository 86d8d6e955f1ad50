"""Imports point one way (docs/ARCHITECTURE.md, "Layout"): app and lambdas -> core; infra ->
core; nothing imports app but app itself; infra imports no Lambda's code; no Lambda imports
another; the core imports neither AWS SDKs nor CDK nor any adapter. And the sizes that keep modules readable: no file over about
500 lines, no function over about 80."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"app": ROOT / "app", "infra": ROOT / "infra", "lambdas": ROOT / "lambdas"}
PACKAGES.update({p.name: p for p in (ROOT / "training_code").iterdir() if (p / "__init__.py").exists()})
MAX_FILE_LINES, MAX_FUNCTION_LINES = 520, 85  # "about" 500 and 80


def modules() -> Iterator[Tuple[str, Path]]:
    """(dotted name, path) of every module of every package."""
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            yield ".".join((package, *parts)).removesuffix(".__init__"), path


def imported(name: str, path: Path) -> Iterator[str]:
    """The absolute names a module imports (relative imports resolved)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: -node.level + (path.name == "__init__.py") or None]
                yield ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.module


def violations(found_modules: Iterable[Tuple[str, Path]]) -> List[str]:
    found = []
    for name, path in found_modules:
        package = name.split(".")[0]
        for target in imported(name, path):
            top = target.split(".")[0]
            if top == "app" and package != "app":
                found.append(f"{name} imports {target}: nothing outside app/ imports app")
            if package == "infra" and top == "lambdas":
                found.append(f"{name} imports {target}: infra takes shared facts from the core, not from a Lambda")
            if package == "lambdas" and top == "lambdas":
                own, other = name.split(".")[:2], target.split(".")[:2]
                if len(other) > 1 and other != own and (ROOT / "lambdas" / other[1]).is_dir():
                    found.append(f"{name} imports {target}: a Lambda imports no other Lambda")
            if package == "imgclf_core" and top in ("app", "infra", "lambdas", "boto3", "botocore", "aws_cdk"):
                found.append(f"{name} imports {target}: the core imports no adapter, SDK or CDK")
            if package in ("image_dataset", "image_training") and top in ("app", "infra", "lambdas"):
                found.append(f"{name} imports {target}: the training code imports no adapter")
    return found


def test_imports_point_one_way() -> None:
    found = violations(modules())
    assert not found, "\n".join(found)


def test_the_rule_sees_each_kind_of_violation(tmp_path: Path) -> None:
    """The checker itself, on modules written for it: relative imports resolve."""
    cases = {
        "lambdas.gate.handler": "from ..trigger import logic\nfrom .logic import decide\nfrom ..s3_events import x\n",
        "infra.stacks": "from app.config import StageConfig\n",
        "imgclf_core.plan": "import boto3\n",
        "image_dataset.pack": "from lambdas.validate.logic import summary\n",
        "infra.classify_api": "from lambdas.classify.logic import MAX_BODY_BYTES\n",
    }
    written = []
    for name, code in cases.items():
        path = tmp_path / (name.replace(".", "_") + ".py")
        path.write_text(code)
        written.append((name, path))
    found = violations(written)
    assert len(found) == 5 and "lambdas.trigger" in found[0], found
    assert "imgclf_core.plan" in dict(modules()) and "lambdas.validate.s3_store" in dict(modules())


@pytest.mark.parametrize("name", [n for n, _ in modules()])
def test_modules_and_functions_stay_small(name: str) -> None:
    path = dict(modules())[name]
    source = path.read_text()
    lines = source.count("\n")
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines"
