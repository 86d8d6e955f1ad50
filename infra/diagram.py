"""Mermaid diagrams generated from the synthesized app: the stacks with their main resources,
and each state machine's states and transitions (Catch edges dashed). ``make diagrams``
writes docs/workflows.md; a test keeps it in step with the code."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "workflows.md"
SHOWN = {
    "AWS::S3::Bucket": "bucket",
    "AWS::KMS::Key": "KMS key",
    "AWS::SNS::Topic": "SNS topic",
    "AWS::Lambda::Function": "Lambda",
    "AWS::StepFunctions::StateMachine": "state machine",
    "AWS::SageMaker::ModelPackageGroup": "model package group",
    "AWS::ApiGateway::RestApi": "REST API",
    "AWS::Events::Rule": "EventBridge rule",
    "AWS::CloudWatch::Alarm": "alarm",
    "AWS::Cognito::UserPool": "user pool",
}


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def asl_definition(machine: Dict[str, Any]) -> Dict[str, Any]:
    """A synthesized state machine's ASL, with CloudFormation tokens as the text TOKEN."""
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return dict(json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts)))


def state_machine_diagram(definition: Dict[str, Any]) -> List[str]:
    lines = ["flowchart TD", f"  start(( )) --> {_id(definition['StartAt'])}"]
    for name, state in definition["States"].items():
        kind = state["Type"]
        shape = {"Choice": ("{", "}"), "Fail": ("[[", "]]"), "Succeed": ("([", "])")}.get(kind, ("[", "]"))
        label = name if kind not in ("Task",) else f"{name}<br/><small>{state['Resource'].split(':::')[-1]}</small>"
        lines.append(f'  {_id(name)}{shape[0]}"{label}"{shape[1]}')
        if "Next" in state:
            lines.append(f"  {_id(name)} --> {_id(state['Next'])}")
        for choice in state.get("Choices", []):
            lines.append(f"  {_id(name)} -->|rule| {_id(choice['Next'])}")
        if "Default" in state:
            lines.append(f"  {_id(name)} -->|otherwise| {_id(state['Default'])}")
        for catch in state.get("Catch", []):
            lines.append(f"  {_id(name)} -.->|{'/'.join(catch['ErrorEquals'])}| {_id(catch['Next'])}")
    return lines


def stacks_diagram(templates: Dict[str, Dict[str, Any]]) -> List[str]:
    lines = ["flowchart LR"]
    for stack, template in templates.items():
        lines.append(f'  subgraph {_id(stack)}["{stack}"]')
        for logical, resource in template["Resources"].items():
            kind = resource["Type"]
            if kind in SHOWN and not logical.startswith(("BucketNotificationsHandler", "AWS")):
                lines.append(f'    {_id(stack + logical)}["{logical}<br/><small>{SHOWN[kind]}</small>"]')
        lines.append("  end")
    return lines


def render(templates: Dict[str, Dict[str, Any]]) -> str:
    out = [
        "# Generated diagrams",
        "",
        "Written by `make diagrams` from the synthesized app (stage `dev` of cdk.json); do not edit.",
        "",
        "## Stacks",
        "",
        "```mermaid",
        *stacks_diagram(templates),
        "```",
    ]
    for template in templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                name = resource["Properties"]["StateMachineName"]
                out += [
                    "",
                    f"## State machine `{name}`",
                    "",
                    "```mermaid",
                    *state_machine_diagram(asl_definition(resource)),
                    "```",
                ]
    return "\n".join(out) + "\n"


def synthesized_templates() -> Dict[str, Dict[str, Any]]:
    from infra.app import cdk_json_context, synthesize

    context = dict(cdk_json_context() or {})
    context["imgclf:stages"] = {"dev": context["imgclf:stages"]["dev"]}
    context["aws:cdk:bundling-stacks"] = []
    with tempfile.TemporaryDirectory() as outdir:
        return synthesize(context, outdir)


def main() -> int:
    OUTPUT.write_text(render(synthesized_templates()))
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
