"""The SDK's own Prometheus counters, in the application's default registry.

Kept apart from the worker's metrics: importing the SDK must not import the worker.
"""

from __future__ import annotations

from prometheus_client import Counter

SDK_READS = Counter(
    "writebehind_sdk_reads",
    "SDK get() calls by level (redis, mongodb) and outcome (hit, miss, deleted).",
    ["collection", "level", "outcome"],
)
