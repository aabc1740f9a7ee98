"""Refreshing the per-partition gauges from Redis (pending, lag, oldest pending, dead letters)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from ..keys import KeySpace
from ..version import Version
from .metrics import WorkerMetrics


async def refresh_partition_gauges(
    metrics: WorkerMetrics, redis: Redis, keys: KeySpace, group: str
) -> None:
    now_ms = time.time() * 1000
    for partition in range(keys.partitions):
        label = str(partition)
        stream = keys.stream(partition)
        pending = lag = 0
        oldest_age = 0.0
        if await redis.exists(stream):
            for info in await redis.xinfo_groups(stream):
                name = info["name"]
                if (name.decode() if isinstance(name, bytes) else name) != group:
                    continue
                pending = int(info["pending"])
                lag = int(info["lag"]) if info.get("lag") is not None else 0
                if pending:
                    summary = await redis.xpending(stream, group)
                    oldest = summary.get("min")
                    if oldest:
                        ms = Version.parse(oldest).ms
                        oldest_age = max(0.0, (now_ms - ms) / 1000)
        metrics.pending.labels(label).set(pending)
        metrics.lag.labels(label).set(lag)
        metrics.oldest_pending_age.labels(label).set(oldest_age)
        metrics.dead_letters.labels(label).set(await redis.xlen(keys.dead_letters(partition)))
