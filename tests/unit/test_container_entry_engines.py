"""The local container start-up (app/container_entry.py) spells each framework container's
distribution key itself, as the container does; the planner sets the key the backend registry
names. The two must be the same key, for every backend."""

from __future__ import annotations

import ast
from pathlib import Path

from imgclf_core.backends import REGISTRY

ENTRY = Path(__file__).resolve().parents[2] / "app" / "container_entry.py"


def test_the_container_start_up_reads_the_key_the_planner_sets() -> None:
    tree = ast.parse(ENTRY.read_text())
    engines = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ENGINES" for t in node.targets)
    )
    assert isinstance(engines, ast.Dict)
    keys = {ast.literal_eval(k): ast.literal_eval(v.elts[0]) for k, v in zip(engines.keys, engines.values)}  # type: ignore[arg-type, attr-defined]
    assert keys == {name: record.distribution_flag for name, record in REGISTRY.items()}
