"""``BatchProcessor`` made on its own (an embedded worker's parts): its hooks default to no-ops."""

from __future__ import annotations

from typing import Any

from writebehind.core.keys import KeySpace
from writebehind.settings import Settings
from writebehind.worker.counters import WorkerCounters
from writebehind.worker.processor import BatchProcessor


def test_the_progress_and_attempt_hooks_exist_before_anyone_sets_them() -> None:
    nothing: Any = None  # __init__ only keeps its collaborators
    processor = BatchProcessor(nothing, nothing, Settings(), WorkerCounters(), KeySpace("wb", 4))
    processor.on_progress(0)
    processor.on_attempt(0, None, 0)  # was assigned after a return, never run
