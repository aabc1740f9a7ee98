"""The measuring tools beside `make bench` run against this tree's scripts.

`benchmarks/hot_paths.py` and `benchmarks/script_cost.py` call the write script
directly, so a change of its KEYS (the seeded key of issue 17, the fill lease)
broke them silently: nothing ran them. Each runs here at its smallest size on a
real redis-server; the figures are not checked, only that each finishes and
prints its result.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import REPO_ROOT

PROFILED = "Recorded:"  # the head of a pyinstrument profile

TOOLS = [
    (["benchmarks.hot_paths", "--steps", "40"], '"sdk get"'),
    (["benchmarks.script_cost", "--blocks", "1"], "write, no limit"),
    (["benchmarks.profile_set", "--calls", "100"], PROFILED),
    (["benchmarks.profile_set", "--calls", "100", "--get"], PROFILED),
    (["benchmarks.profile_set", "--calls", "40", "--many"], PROFILED),
    (["benchmarks.profile_worker", "--records", "300"], PROFILED),
]


@pytest.mark.parametrize(("argv", "expected"), TOOLS, ids=[" ".join(a) for a, _ in TOOLS])
def test_tool_runs_on_this_tree(argv: list[str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout + done.stderr
