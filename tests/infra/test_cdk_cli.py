"""What the real CDK CLI (`npx aws-cdk@2 synth`, the first step of `cdk deploy`) reports about the
app: no warning or error annotation anywhere in the cloud assembly, and every feature flag that
the installed aws-cdk-lib recommends for a new project set in cdk.json."""

from __future__ import annotations

import importlib.metadata
import json
import tarfile
from pathlib import Path
from typing import Any, Dict, List

import aws_cdk as cdk
from aws_cdk import cx_api

from .conftest import ROOT

# Flags deliberately kept away from the recommended value, each with the reason.
NOT_RECOMMENDED: Dict[str, str] = {
    "@aws-cdk/core:target-partitions": "the app targets the commercial partition only (kept from before)",
    "@aws-cdk/core:enablePartitionLiterals": (
        "true renders ARNs as arn:aws:... instead of arn:<AWS::Partition>:...; every ARN of the app "
        "takes the stack's partition (infra/arns.py, tests/infra/test_one_core.py), so the templates "
        "deploy to any partition"
    ),
    "@aws-cdk/core:defaultCrossStackReferences": (
        "strong, set explicitly (docs/ARCHITECTURE.md, 'Feature flags and cross-stack references'); "
        "weak renders Fn::GetStackOutput, which tests/infra/asl_harness.py does not resolve yet"
    ),
}
PROBLEMS = (cx_api.SynthesisMessageLevel.WARNING, cx_api.SynthesisMessageLevel.ERROR)


def annotations(assembly: cx_api.CloudAssembly) -> List[str]:
    """Every warning and error annotation of the assembly (nested assemblies included), as
    ``LEVEL /construct/path: message``."""
    found = [
        f"{message.level.value} {message.id}: {message.entry.data}"
        for artifact in assembly.artifacts
        for message in artifact.messages
        if message.level in PROBLEMS
    ]
    for nested in assembly.nested_assemblies:  # a Stage's stacks
        found += annotations(assembly.get_nested_assembly(nested.id))
    return found


def recommended_flags() -> Dict[str, Any]:
    """recommended-feature-flags.json of the installed aws-cdk-lib (what `cdk init` writes)."""
    import aws_cdk._jsii as bundled

    version = importlib.metadata.version("aws-cdk-lib")
    tarball = Path(bundled.__file__).parent / f"aws-cdk-lib@{version}.jsii.tgz"
    with tarfile.open(tarball, "r|gz") as archive:  # stream: stop at the member, no full index
        for member in archive:
            if member.name == "package/recommended-feature-flags.json":
                data = archive.extractfile(member)
                assert data is not None
                return dict(json.load(data))
    raise AssertionError(f"no recommended-feature-flags.json in {tarball}")


def test_the_walk_sees_annotations_in_stacks_and_stages(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Probe")
    cdk.Annotations.of(stack).add_warning_v2("probe:warning", "a probe warning")
    cdk.Annotations.of(stack).add_info("an info is not a problem")
    nested = cdk.Stack(cdk.Stage(app, "Stage"), "Inner")
    cdk.Annotations.of(nested).add_error("a probe error")
    for scope in (stack, nested):  # an empty template would be a finding of its own
        cdk.CfnWaitConditionHandle(scope, "Handle")
    found = annotations(app.synth())
    assert len(found) == 2, found
    assert found[0].startswith("WARNING /Probe: a probe warning"), found
    assert found[1] == "ERROR /Stage/Inner: a probe error", found


def test_the_assembly_carries_no_warning_or_error(templates: Dict[str, Any], cdk_out: Path) -> None:
    """The session's synth (cdk.json's context, bundling skipped) as the CLI reads it."""
    found = annotations(cx_api.CloudAssembly(str(cdk_out)))
    assert not found, "\n".join(found)


def test_every_recommended_feature_flag_is_set() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    recommended = recommended_flags()
    missing = {flag: value for flag, value in recommended.items() if flag not in context}
    assert not missing, "add to cdk.json's context (recommended values):\n" + "\n".join(
        f'    "{flag}": {json.dumps(value)},' for flag, value in missing.items()
    )
    different = {flag for flag in recommended if context[flag] != recommended[flag]}
    assert different == set(NOT_RECOMMENDED), (
        f"not the recommended value and not in NOT_RECOMMENDED: {sorted(different - set(NOT_RECOMMENDED))}; "
        f"recommended now, drop from NOT_RECOMMENDED: {sorted(set(NOT_RECOMMENDED) - different)}"
    )
