"""The SDK's own Prometheus metrics, in the application's default registry.

Kept apart from the worker's metrics: importing the SDK must not import the worker.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SDK_READS = Counter(
    "writebehind_sdk_reads",
    "SDK reads and read-side events by collection, level and outcome. Each get() (and "
    "each id of get_many) counts once where its answer came from: level redis (hit, "
    "deleted, negative_hit), mongodb (hit, miss) or degraded (hit, miss: Redis was "
    "unavailable). Events: fill (filled, renewed, skip_<reason>), lease (acquired, wait, "
    "woken, timeout), early_refresh (started, done, failed), breaker (opened, closed).",
    ["collection", "level", "outcome"],
)

SDK_BREAKER_OPEN = Gauge(
    "writebehind_sdk_redis_breaker_open",
    "1 while the SDK's Redis circuit breaker is open (reads go to MongoDB, writes fail fast).",
    ["prefix"],
)
