"""Helpers for tests of cached computations: a counting, blockable function and metrics."""

from __future__ import annotations

from typing import Any

import anyio
from prometheus_client import REGISTRY


class Gate:
    """What a cached function under test does: counts runs, reads ``state``, and, when
    ``hold`` is set, signals ``started`` and waits for ``release`` before returning."""

    def __init__(self, state: Any = "S1") -> None:
        self.state = state
        self.runs = 0
        self.hold = False
        self.started = anyio.Event()
        self.release = anyio.Event()

    async def run(self, *parts: Any) -> Any:
        self.runs += 1
        seen = self.state
        if self.hold:
            self.started.set()
            await self.release.wait()
        return seen if not parts else {"state": seen, "args": list(parts)}

    def block(self) -> None:
        self.hold = True
        self.started = anyio.Event()
        self.release = anyio.Event()


def computed_count(function: str, outcome: str, namespace: str | None = None) -> float:
    """``writebehind_sdk_computed_total`` for a function (all namespaces unless given)."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name != "writebehind_sdk_computed":
            continue
        for sample in metric.samples:
            labels = sample.labels
            if not sample.name.endswith("_total"):
                continue
            if labels.get("function") != function or labels.get("outcome") != outcome:
                continue
            if namespace is not None and labels.get("namespace") != namespace:
                continue
            total += sample.value
    return total
