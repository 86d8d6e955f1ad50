"""``imgclf doctor --stage NAME``: read-only preflight of the AWS account for one stage, before
``cdk deploy`` and before the first upload (see app/doctor.py for the checks)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, TextIO, Tuple

from .dataset import UsageError

if TYPE_CHECKING:  # infra.config imports sagemaker-core: loaded only when the command runs
    from app.doctor import Check
    from infra.config import StageConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def add_doctor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="preflight a stage's AWS account: credentials, region, CDK bootstrap, quotas, images, alerts, API",
        description="Read-only checks for one stage of cdk.json, to run before cdk deploy and before the first "
        "upload. Exit 0 ready (warnings allowed), 1 a check failed, 2 usage error.",
    )
    p.add_argument("--stage", help="the stage in cdk.json's imgclf:stages (default: the only one)")
    p.add_argument("--cdk-json", help="the cdk.json to read (default: ./cdk.json, else the repository's)")
    p.add_argument("--assembly", help="the synthesized cloud assembly (default: cdk.out beside cdk.json)")
    p.add_argument("--profile", help="the AWS profile (default: the AWS CLI's: AWS_PROFILE, then default)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(run=run_doctor)


def _cdk_json(path: Optional[str]) -> Path:
    if path:
        return Path(path)
    here = Path.cwd() / "cdk.json"
    return here if here.is_file() else REPO_ROOT / "cdk.json"


def load_stage(name: Optional[str], cdk_json: Path) -> StageConfig:
    """The stage ``name`` of cdk.json's ``imgclf:stages`` context (the only stage when ``name``
    is None), validated as synth validates it; a UsageError otherwise."""
    from infra.config import CONTEXT_KEY, ConfigError, parse_stage

    try:
        document = json.loads(cdk_json.read_text())
    except OSError as err:
        raise UsageError(f"cannot read {cdk_json}: {err.strerror}") from None
    except ValueError as err:
        raise UsageError(f"{cdk_json} is not JSON: {err}") from None
    context = document.get("context", {}) if isinstance(document, dict) else {}
    stages = context.get(CONTEXT_KEY) if isinstance(context, dict) else None
    if not isinstance(stages, dict) or not stages:
        raise UsageError(f"{cdk_json} has no {CONTEXT_KEY} context (see docs/deploy.md)")
    if name is None:
        if len(stages) > 1:
            raise UsageError("--stage is required: cdk.json has stages " + ", ".join(sorted(stages)))
        name = next(iter(stages))
    if name not in stages:
        raise UsageError(f"no stage {name!r} in {cdk_json} (stages: {', '.join(sorted(stages))})")
    try:
        return parse_stage(name, stages[name])
    except ConfigError as err:
        raise UsageError(f"cdk.json context {err}") from None


def _session(profile: Optional[str]) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile)
    except ProfileNotFound as err:
        raise UsageError(str(err)) from None


def print_checks(stage: StageConfig, checks: Sequence[Check], out: Optional[TextIO] = None) -> None:
    """The table: rich in a terminal, aligned plain text otherwise."""
    from app.doctor import FAIL, WARN

    out = out or sys.stdout
    title = f"imgclf doctor: stage {stage.name} (account {stage.account}, region {stage.region})"
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    if failed:
        verdict = f"{failed} FAIL, {warned} warn: fix the FAIL lines first"
    else:
        verdict = "ready" + (f" ({warned} warn)" if warned else "")
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        styles = {"ok": "green", "FAIL": "bold red", "warn": "yellow", "skip": "dim"}
        table = Table(title=title)
        for column in ("check", "status", "detail", "fix"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row(c.name, f"[{styles.get(c.status, '')}]{c.status}[/]", c.detail, c.fix)
        console = Console(file=out)
        console.print(table)
        console.print(verdict)
        return
    width = max([len(c.name) for c in checks] + [5])
    out.write(title + "\n")
    for c in checks:
        out.write(f"{c.status:<4}  {c.name:<{width}}  {c.detail}\n")
        if c.fix:
            out.write(f"{'':<4}  {'':<{width}}  fix: {c.fix}\n")
    out.write(verdict + "\n")


def prepare(args: argparse.Namespace) -> Tuple[StageConfig, Path]:
    """The stage and the cloud assembly folder the arguments name."""
    cdk_json = _cdk_json(args.cdk_json)
    stage = load_stage(args.stage, cdk_json)
    output = "cdk.out"
    with contextlib.suppress(OSError, ValueError, AttributeError):  # load_stage has read it already
        output = str(json.loads(cdk_json.read_text()).get("output") or output)
    assembly = Path(args.assembly) if args.assembly else cdk_json.parent / output
    return stage, assembly


def run_doctor(args: argparse.Namespace) -> int:
    from app.doctor import bootstrap_requirement, exit_code, report, run_checks

    stage, assembly = prepare(args)
    session = _session(args.profile)
    checks = run_checks(session, stage, bootstrap_requirement(assembly, stage))
    if args.json:
        document: Dict[str, Any] = report(stage, checks)
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_checks(stage, checks)
    return exit_code(checks)
