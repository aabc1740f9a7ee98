"""Per-partition gauges from Redis: the same numbers `writebehind stats` shows."""

from __future__ import annotations

from redis.asyncio import Redis

from writebehind.core.keys import KeySpace
from writebehind.observability.metrics import WorkerMetrics
from writebehind.tools.stream_stats import collect


async def refresh_partition_gauges(
    metrics: WorkerMetrics, redis: Redis, keys: KeySpace, group: str
) -> None:
    stats = await collect(redis, keys, group)
    for p in stats.partitions:
        label = str(p.partition)
        metrics.pending.labels(label).set(p.pending)
        metrics.lag.labels(label).set(p.lag)
        metrics.oldest_pending_age.labels(label).set(p.oldest_pending_age or 0.0)
        metrics.dead_letters.labels(label).set(p.dead_letters)
