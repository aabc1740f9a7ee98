"""scripts/bench_write.py's method (issue 11, item 7): baseline and subjects interleaved call
by call in shuffled orders, each subject divided by the baseline's call of the same step.
The script takes both from ``benchmarks.writes`` (written once, as `make bench` uses them)."""

from __future__ import annotations

import importlib.util
import random
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from benchmarks import writes

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bench_write.py"


def bench_write() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_write", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_every_step_calls_each_kind_once_in_a_shuffled_order() -> None:
    made: list[tuple[str, int]] = []

    def kind(name: str) -> Any:
        async def call(step: int) -> None:
            made.append((name, step))

        return call

    kinds = ("ping", "hset", "sdk set")
    samples = await bench_write().interleaved(
        {name: kind(name) for name in kinds}, 60, random.Random(1)
    )
    measured = made[60 * len(kinds) :]  # after the warm-up (as many steps, up to 200)
    assert {name: len(times) for name, times in samples.items()} == dict.fromkeys(kinds, 60)
    steps = [measured[i : i + len(kinds)] for i in range(0, len(measured), len(kinds))]
    assert len(steps) == 60
    for n, step in enumerate(steps):
        assert sorted(name for name, _ in step) == sorted(kinds)
        assert {i for _, i in step} == {n}
    orders = Counter(tuple(name for name, _ in step) for step in steps)
    assert len(orders) > 1, orders  # not always the baseline first
    assert Counter(step[0][0] for step in steps)["ping"] < 60


def test_ratios_pair_each_call_with_the_baseline_of_its_step() -> None:
    # Per step 3, 1, 3: median 3. Dividing the medians (3 / 2 = 1.5) would let a load spike
    # that hit the baseline's calls and the subject's at different times decide the figure.
    samples = {"ping": [1.0, 2.0, 3.0], "sdk set": [3.0, 2.0, 9.0]}
    assert bench_write().paired(samples, "ping") == {"ping": 1.0, "sdk set": 3.0}


def test_the_script_uses_the_benchmarks_method() -> None:
    module = bench_write()
    assert module.interleaved is writes.interleaved
    assert module.paired is writes.paired
