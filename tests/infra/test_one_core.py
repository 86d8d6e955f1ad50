"""The rules of issue 14 for infra/ (import direction and sizes: tests/unit/test_import_direction.py):
every S3 prefix comes from imgclf_core.s3_layout, every ARN is built with the stack's
partition (infra.arns), the DLC registry account comes from the image URI, and synth writes
nothing into the source tree."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

from imgclf_core import s3_layout

from .conftest import stage_context

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
# modules that read templates or resolved values (they name intrinsics to take them apart)
TEMPLATE_READERS = {"nag.py", "diagram.py"}
Templates = Dict[str, Dict[str, Any]]


def _modules(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _strings(path: Path) -> Iterator[Tuple[int, str]]:
    """The string constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_the_cdk_app_and_its_config_live_in_infra() -> None:
    assert json.loads((ROOT / "cdk.json").read_text())["app"].endswith("-m infra.app")
    assert not (ROOT / "app" / "cdk_app.py").exists() and not (ROOT / "app" / "config.py").exists()


def test_infra_names_no_s3_prefix_of_its_own() -> None:
    """Grants, lifecycle rules and acknowledgements take their prefixes from s3_layout."""
    prefixes = [s3_layout.DATASETS, s3_layout.TRAINING_JOBS, s3_layout.CHECKPOINTS, s3_layout.PACKED]
    prefixes += [s3_layout.VALIDATION, s3_layout.EVALUATIONS]
    offenders = [
        f"{path.name}:{line}: {text!r}"
        for path in _modules(INFRA)
        for line, text in _strings(path)
        if any(text.startswith(prefix) or text == prefix.rstrip("/") + "/*" for prefix in prefixes)
    ]
    assert not offenders


def test_infra_assembles_no_arn_or_intrinsic_by_hand() -> None:
    """ARNs come from infra.arns (Stack.format_arn); no string spells a partition, a Ref or an Fn::."""
    offenders = [
        f"{path.name}:{line}: {text!r}"
        for path in _modules(INFRA)
        if path.name not in TEMPLATE_READERS
        for line, text in _strings(path)
        if text.startswith("arn:") or any(s in text for s in ("arn:aws", "${", "Fn::", "AWS::Partition", '"Ref"'))
    ]
    assert not offenders


def _arn_strings(value: Any, where: str) -> Iterator[Tuple[str, Any]]:
    """Every ARN of a template value: plain strings, and joins that start one."""
    if isinstance(value, str):
        if "arn:aws" in value or value.startswith("arn:"):
            yield where, value
    elif isinstance(value, dict):
        if "Fn::Join" in value:
            _, parts = value["Fn::Join"]
            for i, part in enumerate(parts):
                if isinstance(part, str) and part.endswith("arn:"):
                    following = parts[i + 1] if i + 1 < len(parts) else None
                    if following != {"Ref": "AWS::Partition"}:
                        yield where, value
                elif isinstance(part, str) and "arn:aws" in part:
                    yield where, value
                else:
                    yield from _arn_strings(part, where)
        else:
            for key, item in value.items():
                yield from _arn_strings(item, f"{where}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _arn_strings(item, f"{where}[{i}]")


def test_every_arn_in_the_templates_uses_the_partition(templates: Templates) -> None:
    literal: List[str] = []
    for stack, template in templates.items():
        for logical, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::CDK::Metadata":
                continue
            literal += [f"{stack}/{logical}{where}: {json.dumps(v)[:200]}" for where, v in _arn_strings(resource, "")]
    assert not literal


def test_the_ecr_grant_names_the_registry_account_of_the_image_uri() -> None:
    """The DLC registry account differs by region: the grant takes it from the URI."""
    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Match, Template

    from infra.arns import ImageUri
    from infra.sagemaker_roles import training_role

    uri = "626614931356.dkr.ecr.af-south-1.amazonaws.com/mxnet-training:1.9.0-gpu-py38-cu112-ubuntu20.04"
    assert ImageUri.parse(uri) == ImageUri("626614931356", "af-south-1", "mxnet-training", "1.9.0-gpu-py38-cu112-ubuntu20.04")
    with pytest.raises(ValueError):
        ImageUri.parse("docker.io/library/python:3.11")
    app = cdk.App()
    stack = cdk.Stack(app, "S", env=cdk.Environment(account="111111111111", region="af-south-1"))
    key = kms.Key(stack, "Key")
    buckets = {name: s3.Bucket.from_bucket_name(stack, name, f"b-{name.lower()}") for name in ("datasets", "artifacts")}
    training_role(stack, "Role", key=key, image_uri=uri, vpc=False, **buckets)  # type: ignore[arg-type]
    ecr = {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ecr:af-south-1:626614931356:repository/mxnet-training"]]
    }
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": Match.array_with(["ecr:BatchGetImage"]), "Resource": ecr})]
                )
            }
        },
    )


def test_the_dev_stage_pulls_from_the_account_of_its_images(templates: Templates) -> None:
    from infra.arns import ImageUri
    from infra.config import parse_stage

    stage = parse_stage("dev", stage_context()["imgclf:stages"]["dev"])
    text = json.dumps(templates["Imgclf-dev-Training"])
    for scope in ("training", "processing"):
        image = ImageUri.parse(stage.image_uri(scope))
        assert f":ecr:{image.region}:{image.account}:repository/{image.repository}" in text


def _untracked(root: Path) -> Set[str]:
    """Untracked and ignored paths of the working tree, caches and environments left out."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    skipped = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".venv", ".mutate")
    paths = {line[3:] for line in done.stdout.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if not any(part in skipped or part.startswith(".venv") for part in Path(p).parts)}


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_synth_writes_nothing_into_the_source_tree(tmp_path: Path) -> None:
    """The training code archive goes into the cloud assembly's folder, which CDK stages."""
    from infra.app import synthesize

    before = _untracked(ROOT)
    synthesize(stage_context(), str(tmp_path / "cdk.out"))
    after = _untracked(ROOT)
    assert after - before == set()
    assert list((tmp_path / "cdk.out").glob("imgclf-sourcedir/*/sourcedir.tar.gz"))


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_make_clean_deletes_no_tracked_file() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nclean:\n", 1)[1].split("\n\n", 1)[0]
    variables = dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":=") for line in makefile.splitlines() if ":=" in line)
    )
    variables.update(VENV=".venv", DEMO_DIR=".demo")
    paths = []
    for line in recipe.splitlines():
        words = line.split()
        if words[:2] == ["rm", "-rf"]:
            for word in words[2:]:
                for name, value in variables.items():
                    word = word.replace(f"$({name})", value)
                paths.append(word)
    assert paths and not any("$(" in p for p in paths)
    tracked = subprocess.run(
        ["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""
