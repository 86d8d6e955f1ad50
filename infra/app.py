"""The CDK app that cdk.json runs: every stage of the ``imgclf:stages`` context, with cdk-nag's
AwsSolutions checks. A bad config stops synth with the key and the reason, no traceback."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from .config import CONTEXT_KEY, ConfigError, parse_stages
from .stacks import add_stage


def build_app(context: Optional[Dict[str, Any]] = None, outdir: Optional[str] = None) -> cdk.App:
    app = cdk.App(context=context, outdir=outdir)
    stages = parse_stages(app.node.try_get_context(CONTEXT_KEY))
    for stage in stages:
        add_stage(app, stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def synthesize(context: Dict[str, Any], outdir: str) -> Dict[str, Dict[str, Any]]:
    """Every stack's template by stack name (for tests and the generated diagrams)."""
    assembly = build_app(context, outdir).synth()
    return {stack.stack_name: stack.template for stack in assembly.stacks}


def cdk_json_context() -> Optional[Dict[str, Any]]:
    """cdk.json's context when the app runs without the CDK CLI (``make synth``); the CLI
    passes it (and -c overrides) itself."""
    if "CDK_CONTEXT_JSON" in os.environ:
        return None
    path = Path(__file__).resolve().parents[1] / "cdk.json"
    return dict(json.loads(path.read_text()).get("context", {}))


def main() -> None:
    try:
        app = build_app(cdk_json_context())
    except ConfigError as err:
        sys.exit(f"cdk.json context {err}")
    app.synth()


if __name__ == "__main__":
    main()
