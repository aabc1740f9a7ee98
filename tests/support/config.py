"""The test deployment's prefix and partition count, and worker settings scaled down for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.processes import WorkerProcess, refuse_legacy_names
from writebehind.worker.settings import WorkerSettings

TEST_PREFIX = "t"
TEST_PARTITIONS = 4

SpawnWorker = Callable[..., WorkerProcess]
"""The ``spawn_worker`` fixture: starts a ``writebehind worker`` subprocess."""


def fast_settings(**overrides: Any) -> WorkerSettings:
    """Worker settings scaled down so recovery paths run within a test's patience.

    Durations in seconds. An old millisecond name (``claim_idle_ms``) raises
    ``TypeError``: the seconds name given here would beat it, so it would be
    silently ignored.
    """
    refuse_legacy_names(overrides)
    values: dict[str, Any] = {
        "prefix": TEST_PREFIX,
        "partitions": TEST_PARTITIONS,
        "batch_size": 100,
        "linger": 0.002,
        "read_block": 0.1,
        "drain_timeout": 10.0,
        "claim_idle": 1.0,
        "claim_interval": 0.3,
        "trim_interval": 3600.0,
        "backoff_base": 0.02,
        "backoff_cap": 0.5,
        "metrics_address": None,
    }
    values.update(overrides)
    return WorkerSettings(**values)
