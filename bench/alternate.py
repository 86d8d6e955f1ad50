"""Alternated runs for the benchmarks: the project's run and its peer take turns (A, B, A, B, ...)
in the same process, so that the noise of a shared machine hits both alike; the verdict is the
ratio of the two medians."""

from __future__ import annotations

import statistics
from typing import Callable, Dict, List, Sequence

RUNS = 5  # the default number of runs of each side (at least 5: the median of 5 tolerates 2 outliers)


def alternate(sides: Dict[str, Callable[[], float]], runs: int = RUNS, warm: bool = True) -> Dict[str, List[float]]:
    """Call each side in turn, ``runs`` rounds; returns each side's figures in order. ``warm``
    first calls every side once, untimed (page cache, traces, pools)."""
    if warm:
        for run in sides.values():
            run()
    figures: Dict[str, List[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, run in sides.items():
            figures[name].append(run())
    return figures


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    """Every run's figure, for the record of the noise."""
    return "[" + " ".join(fmt.format(v) for v in values) + "]"


def verdict(label: str, ratio: float, target: float, above: bool = True) -> str:
    """One line: the ratio of the medians against its target (``above``: at least, else at most)."""
    met = ratio >= target if above else ratio <= target
    sign = ">=" if above else "<="
    return "{:<58} {:6.2f}x  (target {} {}x: {})".format(label, ratio, sign, target, "met" if met else "NOT MET")
