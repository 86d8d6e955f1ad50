"""Shared fixtures: run the CLI in-process and parse its JSON report."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Tuple

import pytest

from app.cli.main import main


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Tuple[int, str, str]]:
    """Run ``imgclf ARGS``; returns (exit code, stdout, stderr). Usage errors exit via SystemExit."""

    def run(*args: str) -> Tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def validate_json(cli: Callable[..., Tuple[int, str, str]]) -> Callable[..., Tuple[int, Dict[str, Any]]]:
    """Run ``imgclf validate --json PATH ARGS``; returns (exit code, report)."""

    def run(path: str, *args: str) -> Tuple[int, Dict[str, Any]]:
        code, out, err = cli("validate", str(path), "--json", "--workers", "1", *args)
        assert "Traceback" not in err, err
        return code, json.loads(out)

    return run


def codes(report: Dict[str, Any], kind: str = "errors") -> List[str]:
    return [issue["code"] for issue in report[kind]]


def find(report: Dict[str, Any], code: str) -> Dict[str, str]:
    for issue in report["errors"] + report["warnings"]:
        if issue["code"] == code:
            return issue
    raise AssertionError("no {} in {}".format(code, report["errors"] + report["warnings"]))
