"""The workflow harness gives each Lambda invocation its own environment, as Lambda gives each
function's process its own: concurrent invocations (a Distributed Map's) and the test's own AWS
calls never see another's variables, nor a moment without the test's."""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List
from unittest import mock

import boto3

from .asl_harness import ACCOUNT, REGION, WorkflowHarness

HANDLER = "lambdas.trigger.handler.handler"


def test_invocations_and_the_test_each_see_their_own_environment(templates: Dict[str, Dict[str, Any]]) -> None:
    import lambdas.trigger.handler as module

    harness = WorkflowHarness(templates)
    inside = threading.Barrier(3, timeout=30)
    leave = threading.Event()
    seen: Dict[str, Dict[str, str]] = {}
    failures: List[BaseException] = []

    def handler(event: Dict[str, Any], context: Any) -> None:
        os.environ["WHO"] = event["who"]  # a write stays in the invocation's own environment
        inside.wait()
        assert leave.wait(30)
        seen[event["who"]] = dict(os.environ)

    def invoke(who: str) -> None:
        try:
            harness.invoke(HANDLER, {"who": who})
        except BaseException as error:  # reported by the test's thread
            failures.append(error)

    with harness.running(), mock.patch.object(module, "handler", handler):
        (name,) = (n for n, spec in harness.functions.items() if spec["handler"] == HANDLER)
        function_env = harness.functions[name]["environment"]
        own = set(function_env) - set(os.environ)
        assert own, "the trigger function has variables of its own to tell apart"
        threads = [threading.Thread(target=invoke, args=(who,)) for who in ("a", "b")]
        for thread in threads:
            thread.start()
        inside.wait()  # both invocations are running
        assert os.environ["MOTO_ACCOUNT_ID"] == ACCOUNT
        assert "WHO" not in os.environ and not own & set(os.environ)
        assert boto3.client("sts", region_name=REGION).get_caller_identity()["Account"] == ACCOUNT
        leave.set()
        for thread in threads:
            thread.join(30)
        assert "WHO" not in os.environ
    assert not failures, failures
    for who in ("a", "b"):
        assert seen[who]["WHO"] == who
        assert all(seen[who][k] == v for k, v in function_env.items())
        assert seen[who]["MOTO_ACCOUNT_ID"] == ACCOUNT
